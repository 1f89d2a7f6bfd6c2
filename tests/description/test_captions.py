"""A run's caption terms read back by source: the dataset label terms."""

from dissect import artifacts
from dissect.description.captioners.labels import LabelCaptioner
from dissect.description.captions import LABELS_CAPTIONER, label_terms, terms_by_clip


def test_label_terms_are_the_labels_captioners_terms_only(tmp_path):
    assert LABELS_CAPTIONER == LabelCaptioner.name
    artifacts.write_jsonl(tmp_path / artifacts.CAPTIONS, [
        {"clip": "a", "captioner": "labels", "text": "digit 5", "terms": ["digit=5"],
         "error": None},
        {"clip": "a", "captioner": "transcript", "text": "Bye!", "terms": ["word=bye",
                                                                          "phone=/aɪ/"],
         "error": None},
        {"clip": "b", "captioner": "labels", "text": "Digit 9", "terms": ["Digit=9"],
         "error": None},
        {"clip": "c", "captioner": "labels", "text": None, "terms": ["digit=7"],
         "error": "failed"},
    ])
    assert label_terms(tmp_path) == {"digit=5", "digit=9"}
    assert terms_by_clip(tmp_path)["a"] == ["digit=5", "word=bye", "phone=/aɪ/"]
