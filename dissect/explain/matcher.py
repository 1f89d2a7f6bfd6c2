"""Which caption terms a description names: the one matcher behind every candidate's prediction.

Every candidate description (the evidence template, an LLM phrasing, AND's summary, a
closed-set label) is scored by the same rule: the clips it predicts are the clips that carry
the terms its text names (:func:`claims`). The LLM check (:func:`check_phrasing`) uses the
same matcher to decide whether a phrasing names its evidence and nothing else.

A text names a term when

* a pitch band (``pitch=E4``, ``f0=E4``): it names that note (``E4``);
* any term: it contains the term's plain-word rendering (``bright timbre``, ``low register``,
  ``spoken digit three``, ``pitch near E4``);
* a descriptive attribute (loudness, register, brightness, ...): it names the value ("loud");
* a label-like term: it names the value as a whole word (a digit also as its word;
  ``water_drops`` also as "water drops"), unless the value is an everyday word
  (:data:`COMMON`: "low", "note", "one" ...: a label ``kind=note`` is not named by "note");

and no negation ("no", "not", "without", ..., :data:`~dissect.description.keywords.NEGATIONS`)
stands among the ``negation_window`` words before the mention in its clause. Terms named at the
same place (``pitch=E4`` and ``f0=E4`` by "E4"; ``digit=3`` and ``word=three`` by "three") are
one *claim*: a clip matches the claim when it carries any of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from dissect.description.keywords import NEGATION_WINDOW, NEGATIONS
from dissect.explain.candidates import (
    _NUMBER_WORDS,
    PITCH_ATTRIBUTES,
    _midi,
    render_term,
    split_term,
)
from dissect.explain.evidence import Evidence

#: Attributes whose values are everyday describing words: named only by their rendering.
DESCRIPTIVE = frozenset(("loudness", "register", "brightness", "tonality", "rhythm",
                         "bandwidth", "pitched"))

#: Values too common in English to count as naming a term by the bare word.
COMMON = frozenset(("yes", "no", "low", "high", "middle", "loud", "quiet", "steady", "tonal",
                    "noisy", "medium", "wide", "narrow", "bright", "dark", "warm", "note",
                    "tone", "a", "i", "one", "true", "false"))

_NOTE = re.compile(r"(?<![\w#])([A-Ga-g]#?-?\d)(?![\w#])")
_CLAUSE = re.compile(r"[.;:!?]")
_WORD = re.compile(r"[\w'#]+")


def _forms(term: str) -> list[str]:
    """The phrases that name ``term`` in a text (lowercased), longest first."""
    attr, value = split_term(term)
    if attr in PITCH_ATTRIBUTES:
        return []  # named by the note (its place in the text: see positions)
    forms = {render_term(term).lower()}
    v = value.lower()
    if attr.lower() in DESCRIPTIVE:
        forms.add(v.replace("_", " "))  # "loud" says loudness=loud
    elif attr not in PITCH_ATTRIBUTES:
        for f in {v, v.replace("_", " ")}:
            if f and f not in COMMON and (len(f) >= 2 or f.isdigit()):
                forms.add(f)
        if attr == "digit" and value.isdigit() and int(value) < 10:
            forms.add(_NUMBER_WORDS[int(value)])
    return sorted((f for f in forms if f), key=len, reverse=True)


def _negated(text: str, start: int, window: int) -> bool:
    """Is there a negation among the ``window`` words before ``start`` in its clause?"""
    clause_start = max((m.end() for m in _CLAUSE.finditer(text, 0, start)), default=0)
    words = _WORD.findall(text[clause_start:start].lower())[-window:] if window > 0 else []
    return any(w in NEGATIONS or w.endswith("n't") for w in words)


def positions(text: str, term: str, negation_window: int = NEGATION_WINDOW) -> list[int]:
    """Character offsets where ``text`` names ``term`` (not negated), in order: the offset of
    each naming's end, so that "spoken digit three" names ``digit=3`` and ``word=three`` at one
    place."""
    low = (text or "").lower()
    out: list[int] = []
    attr, value = split_term(term)
    if attr in PITCH_ATTRIBUTES:
        m = _midi(value)
        if m is not None:
            out += [(x.start(), x.end()) for x in _NOTE.finditer(text or "")
                    if _midi(x.group(1)) == m]
    for f in _forms(term):
        out += [(x.start(), x.end())
                for x in re.finditer(rf"(?<![\w#]){re.escape(f)}(?![\w#])", low)]
    return sorted({e for s, e in out if not _negated(low, s, negation_window)})


def mentions(text: str, term: str, negation_window: int = NEGATION_WINDOW) -> bool:
    """Does ``text`` name ``term`` (see the module docstring)?"""
    return bool(positions(text, term, negation_window))


@lru_cache(maxsize=65536)
def _claims(text: str, vocabulary: tuple[str, ...], negation_window: int
            ) -> tuple[tuple[str, ...], ...]:
    first: dict[str, int] = {}
    for t in vocabulary:
        pos = positions(text, t, negation_window)
        if pos:
            first[t] = pos[0]
    at: dict[int, list[str]] = {}
    for t, p in first.items():
        at.setdefault(p, []).append(t)
    # a term named inside a longer naming at an earlier place belongs to that claim's place
    return tuple(tuple(sorted(at[p])) for p in sorted(at))


def claims(text: str, vocabulary: Sequence[str], negation_window: int = NEGATION_WINDOW
           ) -> list[list[str]]:
    """The terms of ``vocabulary`` that ``text`` names, grouped into claims by where they are
    first named, in text order: ``"pitch near E4; weaker for bright timbre"`` ->
    ``[["f0=E4", "pitch=E4"], ["brightness=bright"]]``. An empty list: the text names no term
    (its prediction is constant, so no split can test it)."""
    if not text or not str(text).strip():
        return []
    return [list(c) for c in _claims(str(text), tuple(vocabulary), int(negation_window))]


def check_phrasing(text: str, evidence: Sequence[Evidence], vocabulary: Sequence[str]
                   ) -> tuple[bool, str]:
    """Accept an LLM phrasing only if it names the strongest evidence term (a pitch band: a
    note within its semitone) and names no label-like term of ``vocabulary`` (every term of the
    layer) that is not in the neuron's evidence.

    Returns:
        ``(ok, reason)``; ``reason`` says what was wrong ("" when accepted).
    """
    if not text.strip():
        return False, "empty reply"
    if not evidence:
        return False, "no evidence to phrase"
    if not (mentions(text, evidence[0].term) or _names_band(text, evidence[0].term)):
        return False, f"drops the top term {evidence[0].term!r}"
    own = {e.term.lower() for e in evidence}
    own_values = set()
    for e in evidence:  # each evidence value and its other spellings (3 <-> "three")
        attr, value = split_term(e.term)
        own_values.add(value.lower())
        if value.isdigit() and int(value) < 10:
            own_values.add(_NUMBER_WORDS[int(value)])
        if value.lower() in _NUMBER_WORDS:
            own_values.add(str(_NUMBER_WORDS.index(value.lower())))
    for t in vocabulary:
        attr, value = split_term(t)
        v = value.lower()
        if t.lower() in own or v in own_values or v in COMMON or (len(v) < 2 and not v.isdigit()):
            continue
        if attr in DESCRIPTIVE or attr == "kind":
            continue  # descriptive words, not labels
        if mentions(text, t):
            return False, f"adds {t!r}, which is not in the evidence"
    return True, ""


def _names_band(text: str, term: str) -> bool:
    """A pitch band ``pitch=B0`` means "within a semitone of B0": a text naming B0, A#0 or C1
    names it (the LLM check's tolerance; :func:`claims` needs the note itself)."""
    attr, value = split_term(term)
    m = _midi(value) if attr in PITCH_ATTRIBUTES else None
    if m is None:
        return False
    names = _NOTE.findall(text)
    return any(abs((_midi(n) or -99) - m) <= 1 for n in names)
