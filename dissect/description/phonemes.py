"""Phonemes of transcript words, as evidence terms: a neuron that fires for "five", "nine" and
"bye" can then be described by the sound they share (``phone=/aɪ/``), and that description scored
like any other.

Words are phonemised by espeak-ng's own phonemiser (``espeak-ng -q --ipa --sep=_ -v VOICE WORD``,
the program the ``espeak_digits`` probe set already uses), one word at a time (cached), so each
word's phonemes never depend on its neighbours. Stress marks are dropped from the phones; the
phone after the primary stress mark is the word's stressed nucleus. Without espeak-ng there are
no phoneme terms (said once on stderr, and recorded in the captioner's config).

Terms per word (:func:`phone_terms`): ``phone=/p/`` for every distinct phone (``five`` ->
``phone=/f/``, ``phone=/aɪ/``, ``phone=/v/``) and ``nucleus=/v/`` for its stressed vowel
(``nucleus=/aɪ/``). The slashes (IPA's phoneme brackets) keep a one-letter phone such as /i/
from matching the word "I" in a description or caption.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from functools import lru_cache

from dissect.datasets.espeak import espeak_version, find_espeak

#: Stress and syllable marks espeak-ng writes between phones (not phones themselves).
_MARKS = "ˈˌ.‿"
DEFAULT_VOICE = "en-us"


@lru_cache(maxsize=1)
def phonemiser() -> str | None:
    """``espeak-ng <version>`` when espeak-ng is installed (the phonemiser of :func:`phones`),
    else None (said once on stderr)."""
    exe = find_espeak()
    if exe is None:
        print("[phonemes] espeak-ng is not installed: transcripts give no phoneme terms "
              "(apt-get install espeak-ng)", file=sys.stderr)
        return None
    return f"espeak-ng {espeak_version(exe)}"


@lru_cache(maxsize=4096)
def phones(word: str, voice: str = DEFAULT_VOICE) -> tuple[tuple[str, ...], str | None]:
    """``(phones, stressed nucleus)`` of one word in IPA, e.g. ``five`` -> ``(("f", "aɪ", "v"),
    "aɪ")``; ``((), None)`` for an empty word or without espeak-ng.

    Raises:
        RuntimeError: espeak-ng failed on the word (named in the message).
    """
    word = word.strip()
    exe = find_espeak()
    if not word or exe is None:
        return (), None
    try:
        out = subprocess.run([exe, "-q", "--ipa", "--sep=_", "-v", voice, word], check=True,
                             capture_output=True, text=True, timeout=60).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise RuntimeError(f"espeak-ng could not phonemise {word!r}: {exc}") from None
    seq: list[str] = []
    nucleus = None
    for chunk in out.split():
        for raw in chunk.split("_"):
            stressed = "ˈ" in raw
            p = "".join(ch for ch in raw if ch not in _MARKS)
            if not p:
                continue
            seq.append(p)
            if stressed and nucleus is None:
                nucleus = _vowel_part(p)
    return tuple(seq), nucleus


_VOWELS = set("aeiouyæɑɒɐəɘɚɛɜɝɞɤɨɪʉʊʌʏøœɔɯɵɶ")


def _vowel_part(phone: str) -> str | None:
    """``phone`` when it is a vowel (its first letter is a vowel symbol), else None."""
    return phone if phone and phone[0] in _VOWELS else None


def phone_terms(words: Iterable[str], voice: str = DEFAULT_VOICE) -> list[str]:
    """``phone=/p/`` for every distinct phone of ``words``, then ``nucleus=/v/`` for each
    word's stressed vowel, in first-seen order (no espeak-ng: empty)."""
    from dissect.description.captioners.base import term

    if phonemiser() is None:
        return []
    out: dict[str, None] = {}
    nuclei: dict[str, None] = {}
    for w in words:
        seq, nucleus = phones(w, voice)
        out.update((term("phone", f"/{p}/"), None) for p in seq)
        if nucleus:
            nuclei[term("nucleus", f"/{nucleus}/")] = None
    return list(out) + list(nuclei)
