"""Phoneme evidence terms of transcript words (:mod:`dissect.description.phonemes`)."""

import shutil

import pytest

from dissect.description.phonemes import phone_terms, phones

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed")


@pytest.mark.parametrize("word, seq, nucleus", [
    ("five", ("f", "aɪ", "v"), "aɪ"),
    ("nine", ("n", "aɪ", "n"), "aɪ"),
    ("bye", ("b", "aɪ"), "aɪ"),
    ("three", ("θ", "ɹ", "iː"), "iː"),
    ("eight", ("eɪ", "t"), "eɪ"),
    ("zero", ("z", "iə", "ɹ", "oʊ"), "iə"),
])
def test_espeak_phones_of_known_words(word, seq, nucleus):
    assert phones(word) == (seq, nucleus)


def test_five_nine_and_bye_share_their_vowel():
    """The point of phoneme terms: three words Whisper confuses share /aɪ/."""
    per_word = {w: set(phone_terms([w])) for w in ("five", "nine", "bye")}
    shared = set.intersection(*per_word.values())
    assert shared == {"phone=/aɪ/", "nucleus=/aɪ/"}
    assert phone_terms(["five", "nine"]) == ["phone=/f/", "phone=/aɪ/", "phone=/v/",
                                             "phone=/n/", "nucleus=/aɪ/"]
    assert phone_terms([]) == [] and phones("") == ((), None)


def test_transcript_terms_add_phonemes_of_confident_words_only():
    from dissect.description.captioners.transcript import WhisperTranscript

    cap = WhisperTranscript()
    ok = {"text": " Five.", "no_speech_prob": 0.01, "avg_logprob": -0.2}
    assert cap.word_terms(ok) == ["word=five", "phone=/f/", "phone=/aɪ/", "phone=/v/",
                                  "nucleus=/aɪ/"]
    assert cap.word_terms({**ok, "avg_logprob": -1.5}) == []  # not confident: nothing
    assert WhisperTranscript(phonemes=False).word_terms(ok) == ["word=five"]
    assert cap.config()["terms"]["phonemes"].startswith("espeak-ng ")
    assert WhisperTranscript(phonemes=False).config()["terms"]["phonemes"] is None
