"""Descriptions from evidence: term matrix, templates, pitch centre, the exemplar sampler, and
the check of the LLM's phrasing."""

import numpy as np
import pytest

from dissect.description.captioners.base import pitch_terms
from dissect.explain.candidates import (
    LABEL_SHARE,
    NO_CLEAR_CONCEPT,
    clean_phrase,
    labels_first,
    pitch_centre,
    render_term,
    sample_exemplars,
    template,
    term_matrix,
)
from dissect.explain.evidence import Evidence
from dissect.explain.matcher import check_phrasing


def ev(term, auroc=0.95, lift=2.0, effect=2.0, support=10):
    return Evidence(term, auroc, effect, 1e-6, support, lift)


def test_term_matrix_merges_case_and_keeps_order():
    terms, X = term_matrix(["a", "b", "c"], {"a": ["pitch=E4", "kind=note"],
                                             "b": ["pitch=e4"], "c": []})
    assert terms == ["pitch=E4", "kind=note"]
    assert X.tolist() == [[True, True], [True, False], [False, False]]


def test_render_and_template():
    assert render_term("digit=3") == "spoken digit three"
    assert render_term("pitch=e4") == "pitch near E4"
    assert render_term("speaker=lucas") == "speaker lucas"
    assert render_term("fold=2") == "fold 2"
    text, used = template([ev("digit=3", 0.97), ev("word=three", 0.96),
                           ev("speaker=lucas", 0.8)])
    assert text == "spoken digit three; weaker for speaker lucas"  # word=three: same family
    assert used == ["digit=3", "speaker=lucas"]
    text, used = template([ev("digit=3"), ev("speaker=lucas", 0.7)])
    assert text == "spoken digit three" and used == ["digit=3"]  # weaker term below 0.75
    assert template([]) == (NO_CLEAR_CONCEPT, [])


def test_pitch_terms_band_and_centre():
    assert pitch_terms(440.0) == ["pitch=G#4", "pitch=A4", "pitch=A#4"]
    assert pitch_terms(440.0, "f0") == ["f0=G#4", "f0=A4", "f0=A#4"]
    assert pitch_terms(None) == [] and pitch_terms(float("nan")) == []
    # the peak: the strongest band, moved by the parabola through it and its neighbours
    bands = [ev("pitch=A#0", lift=2.9), ev("pitch=B0", lift=2.8), ev("pitch=C1", lift=2.5)]
    band, est = pitch_centre(bands)  # A#0 (MIDI 22) has no lower neighbour: lift 0 there
    assert band.term == "pitch=A#0"
    assert est == pytest.approx(22 + 0.5 * (0 - 2.8) / (0 - 2 * 2.9 + 2.8))  # equal spacing
    from dissect.explain.candidates import _parabola_peak

    # unequal spacing: y = -(x - 1.3)^2 through x = 0, 1, 3
    assert _parabola_peak([(0, -1.69), (1, -0.09), (3, -2.89)]) == pytest.approx(1.3)
    inner = [ev("pitch=D#5", lift=1.4), ev("pitch=E5", lift=1.7), ev("pitch=F5", lift=1.2)]
    band, est = pitch_centre(inner)
    assert band.term == "pitch=E5"
    assert est == pytest.approx(76 + 0.5 * (1.4 - 1.2) / (1.4 - 3.4 + 1.2))
    # an octave confusion does not pull the estimate, and is named as the octave partner
    octave = [ev("pitch=F#5", lift=1.7), ev("pitch=G5", lift=1.6), ev("pitch=F#6", lift=1.6)]
    assert pitch_centre(octave)[0].term in ("pitch=F#5", "pitch=G5")
    text, used = template(octave)
    assert text in ("pitch near F#5, and near F#6 (an octave up)",
                    "pitch near G5, and near F#6 (an octave up)")
    assert used[-1] == "pitch=F#6"
    # a partner below PITCH_SHARE of the strongest lift is not named
    weak = [ev("pitch=F#5", lift=1.7), ev("pitch=F#6", lift=1.0)]
    assert template(weak) == ("pitch near F#5", ["pitch=F#5"])
    # measured (f0) and label (pitch) bands are not mixed; the label is preferred when it is
    # nearly as strong (pYIN reads the lowest notes flat), else the measured bands
    mixed = [ev("f0=A#0", lift=3.0), ev("pitch=C1", lift=2.9), ev("f0=B0", lift=2.0)]
    assert pitch_centre(mixed)[0].term == "pitch=C1"
    assert pitch_centre(mixed, attribute="f0")[0].term == "f0=A#0"
    weak_label = [ev("f0=A#0", lift=3.0), ev("pitch=C1", lift=2.0)]
    assert pitch_centre(weak_label)[0].term == "f0=A#0"
    assert template([ev("f0=E4")])[0] == "measured pitch near E4"


def test_band_centres_at_the_edge_of_the_range():
    """A set whose lowest note is C1: the B0 band holds only C1 clips, so it measures C1."""
    from dissect.explain.candidates import band_centres

    notes = [24, 24, 25, 26, 26, 26]  # C1, C1, C#1, D1 x3
    clip_terms = {f"c{i}": pitch_terms(440.0 * 2 ** ((m - 69) / 12)) for i, m in
                  enumerate(notes)}
    terms, X = term_matrix(list(clip_terms), clip_terms)
    c = band_centres(terms, X)
    assert c["pitch=B0"] == pytest.approx(24.0)  # only the two C1 clips
    assert c["pitch=C1"] == pytest.approx((24 + 24 + 25) / 3)
    assert c["pitch=C#1"] == pytest.approx(np.mean(notes))
    assert c["pitch=D#1"] == pytest.approx(26.0)
    # with the centres, the edge band's neuron is named at C1, not B0
    edge = [ev("pitch=B0", lift=2.8), ev("pitch=C1", lift=2.7), ev("pitch=C#1", lift=2.0)]
    assert template(edge)[0] == "pitch near B0"
    assert template(edge, c)[0] == "pitch near C1"


def test_sampler_is_deterministic_disjoint_and_respects_exclude():
    rng = np.random.default_rng(0)
    v = rng.normal(size=300)
    a = sample_exemplars(v, n_top=20, n_random=10, n_bottom=10, seed=3, exclude=range(50))
    b = sample_exemplars(v, n_top=20, n_random=10, n_bottom=10, seed=3, exclude=range(50))
    c = sample_exemplars(v, n_top=20, n_random=10, n_bottom=10, seed=4, exclude=range(50))
    assert a == b and a.random != c.random and a.top == c.top
    allowed = np.arange(50, 300)
    assert a.top == [int(i) for i in allowed[np.argsort(-v[allowed], kind="stable")][:20]]
    assert a.bottom == [int(i) for i in allowed[np.argsort(v[allowed], kind="stable")][:10]]
    drawn = a.top + a.quantiles + a.random + a.bottom
    assert len(drawn) == len(set(drawn)) == 20 + 8 + 10 + 10
    assert min(drawn) >= 50
    # quantile clips lie near their quantile
    q50 = np.quantile(v[allowed], 0.5)
    assert all(abs(v[i] - q50) < 0.2 for i in a.quantiles[2:4])


VOCAB = ["digit=3", "digit=5", "speaker=lucas", "speaker=nicolas", "word=three",
         "loudness=quiet", "pitched=no"]


def test_phrasing_check_rejects_a_dropped_top_term_and_an_added_label():
    evidence = [ev("digit=3"), ev("speaker=lucas", 0.8)]
    ok, why = check_phrasing("This neuron responds to speech by lucas.", evidence, VOCAB)
    assert not ok and why == "drops the top term 'digit=3'"
    ok, why = check_phrasing("This neuron responds to the digit 3 and the digit 5.", evidence,
                             VOCAB)
    assert not ok and why == "adds 'digit=5', which is not in the evidence"
    ok, why = check_phrasing("This neuron responds to nicolas saying three.", evidence, VOCAB)
    assert not ok and "speaker=nicolas" in why
    ok, why = check_phrasing("This neuron responds to the spoken digit three, mostly from lucas,"
                             " in quiet recordings.", evidence, VOCAB)
    assert ok and why == ""
    assert check_phrasing("", evidence, VOCAB) == (False, "empty reply")
    # a pitch band is "within a semitone of" its note: a neighbour names it, two away does not
    bands = [ev("f0=B0"), ev("pitch=C1", 0.9)]
    vocab = ["f0=B0", "pitch=C1", "pitch=D1"]
    assert check_phrasing("This neuron responds to low notes near C1.", bands, vocab) == (
        True, "")
    ok, why = check_phrasing("This neuron responds to low notes near D1.", bands, vocab)
    assert not ok and why == "drops the top term 'f0=B0'"


def test_clean_phrase():
    assert clean_phrase("the digit three\nmore text") == "This neuron responds to the digit three."
    assert clean_phrase('"This neuron fires on noise."') == "This neuron fires on noise."
    assert clean_phrase("") == ""


@pytest.mark.parametrize("text,term,hit", [
    ("pitch near E4", "pitch=E4", True), ("pitch near E4", "pitch=E", False),
    ("E#4 and e4", "pitch=E4", True), ("sharp D#4", "pitch=D4", False)])
def test_mentions(text, term, hit):
    from dissect.explain.matcher import mentions

    assert mentions(text, term) is hit


def test_class_label_terms_read_as_the_class():
    from dissect.description.llm.rules import terms
    from dissect.explain.candidates import render_term

    assert render_term("category=water_drops") == "water drops"
    assert render_term("audioset=Snare drum") == "Snare drum"
    # the label captioner's column names are not sound words ("audioset drip" was a top term)
    got = terms("Labels: audioset Drip; category water_drops.")
    assert "drip" in got and not any("audioset" in t or "category" in t for t in got)


def test_template_does_not_repeat_the_same_class_as_weaker():
    from dissect.explain.candidates import template
    from dissect.explain.evidence import Evidence

    def mk(term, auroc):
        return Evidence(term, auroc, effect=1.0, p=1e-4, support=10)

    text, used = template([mk("audioset=Synthesizer", 0.88), mk("category=synthesizer", 0.88),
                           mk("bandwidth=narrow", 0.8)])
    assert text == "Synthesizer; weaker for narrow bandwidth"  # was "...; weaker for synthesizer"
    assert used == ["audioset=Synthesizer", "bandwidth=narrow"]
    text, _ = template([mk("audioset=Marimba, xylophone", 0.96), mk("category=xylophone", 0.95)])
    assert text == "Marimba, xylophone"  # two label columns of one clip are one claim


def test_label_term_leads_a_transcript_word_of_nearly_equal_lift():
    """word=bye (Whisper's mishearing of "five") has a slightly higher lift than the label
    digit=5: the label leads and the word follows as "weaker for"."""
    evidence = [ev("word=bye", lift=2.0), ev("digit=5", lift=1.9), ev("speaker=lucas", 0.8)]
    labels = {"digit=5", "Speaker=lucas"}
    text, used = template(evidence, labels=labels)
    assert text == "spoken digit five; weaker for the word 'bye'"
    assert used == ["digit=5", "word=bye"]
    assert [e.term for e in labels_first(evidence, labels)] == [
        "digit=5", "word=bye", "speaker=lucas"]
    # a phoneme of the transcript is a transcript term too
    text, _ = template([ev("phone=/aɪ/", lift=2.0), ev("nucleus=/aɪ/", lift=2.0),
                        ev("digit=5", lift=1.7)], labels=labels)
    assert text.startswith("spoken digit five; weaker for phone /aɪ/")


def test_transcript_word_stays_first_when_the_label_is_below_the_share():
    evidence = [ev("word=bye", lift=2.0), ev("digit=5", lift=2.0 * LABEL_SHARE - 0.05)]
    text, used = template(evidence, labels={"digit=5"})
    assert text == "the word 'bye'; weaker for spoken digit five"
    assert used == ["word=bye", "digit=5"]


def test_without_label_terms_or_transcript_lead_the_template_is_unchanged():
    evidence = [ev("word=bye", lift=2.0), ev("digit=5", lift=1.9)]
    assert template(evidence, labels=()) == template(evidence)
    assert template(evidence)[0] == "the word 'bye'; weaker for spoken digit five"
    # the strongest term is no transcript term: no reordering
    acoustic = [ev("register=low", lift=2.0), ev("digit=5", lift=1.9)]
    assert template(acoustic, labels={"digit=5"}) == template(acoustic)
    # a label column named "word" is a label, not Whisper's transcript
    own = [ev("word=bye", lift=2.0), ev("digit=5", lift=1.9)]
    assert template(own, labels={"word=bye", "digit=5"}) == template(own)
