"""One matcher maps every candidate's text onto the terms it names."""

from dissect.explain.matcher import claims, mentions

VOCAB = ["pitch=E4", "f0=E4", "pitch=F4", "brightness=bright", "family=brass", "digit=3",
         "word=three", "kind=note", "category=water_drops", "target=20"]


def test_claims_group_terms_named_at_one_place_in_text_order():
    assert claims("pitch near E4; weaker for bright timbre", VOCAB) == [
        ["f0=E4", "pitch=E4"], ["brightness=bright"]]
    assert claims("spoken digit three", VOCAB) == [["digit=3", "word=three"]]
    assert claims("Water drops falling", VOCAB) == [["category=water_drops"]]
    assert claims("a note", VOCAB) == []  # everyday words do not name labels
    assert claims("", VOCAB) == []


def test_negated_mentions_are_not_claims():
    assert claims("bright sounds, not brass", VOCAB) == [["brightness=bright"]]
    assert claims("without any brass", VOCAB) == []
    assert not mentions("there is no E4 here", "pitch=E4")
    assert mentions("no noise; E4 here", "pitch=E4")  # another clause
