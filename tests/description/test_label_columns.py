"""Labels that mean one thing are one term: a numeric label column that is a function of a named
one (ESC-50's ``target`` of ``category``) is never an evidence term nor caption text; decided
over the whole probe set, in the captions stage and in the Python API."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from dissect import artifacts
from dissect.config import AudioConfig, CaptionConfig
from dissect.datasets import Clip
from dissect.description.captioners import LabelCaptioner
from dissect.description.captioners.combine import fit_probe_set
from dissect.description.captioners.labels import label_terms, redundant_label_columns

# ESC-50-like: target is the class index of category; fold (two folds per category) and a
# measured level are numbers that are no function of any named column
ROWS = [("dog", 0, 1, 0.31), ("dog", 0, 2, 0.52), ("rain", 10, 1, 0.12),
        ("rain", 10, 3, 0.77), ("crying_baby", 20, 2, 0.05), ("crying_baby", 20, 3, 0.64)]


def esc50_like() -> list[Clip]:
    return [Clip(id=f"c{i}", path=Path(f"c{i}.wav"),
                 labels={"category": cat, "target": t, "fold": f, "level": lv})
            for i, (cat, t, f, lv) in enumerate(ROWS)]


def test_redundant_columns_of_an_esc50_like_set():
    assert redundant_label_columns(esc50_like()) == {"target": "category"}
    # clips.jsonl rows work the same, and number strings are numbers
    rows = [{"labels": {"category": c, "target": str(t), "fold": f}} for c, t, f, _ in ROWS]
    assert redundant_label_columns(rows) == {"target": "category"}


def test_columns_that_are_kept():
    # a spoken digit beside its speaker: each speaker says several digits
    digits = [{"labels": {"digit": d, "speaker": s}} for s in ("ana", "bo") for d in (1, 2, 3)]
    assert redundant_label_columns(digits) == {}
    # one clip per name: every column is trivially a function of it, which says nothing
    assert redundant_label_columns(
        [{"labels": {"category": c, "target": i}} for i, c in enumerate("abc")]) == {}
    # one name only
    assert redundant_label_columns(
        [{"labels": {"category": "dog", "target": 0}} for _ in range(3)]) == {}
    # a measured (non-integral) value, even when constant per category, is no class index
    measured = [{"labels": {"category": c, "level": v}}
                for c, v in [("a", 0.5), ("a", 0.5), ("b", 0.25)]]
    assert redundant_label_columns(measured) == {}
    # a clip with the number but without the name: the name cannot stand in for it there
    partial = [{"labels": {"category": "a", "target": 0}}, {"labels": {"category": "a",
                                                                       "target": 0}},
               {"labels": {"category": "b", "target": 1}}, {"labels": {"target": 2}}]
    assert redundant_label_columns(partial) == {}


def test_label_captioner_drops_target_from_text_and_terms():
    clips = esc50_like()
    cap = LabelCaptioner()
    assert "drop_columns" not in cap.config()  # sets with nothing dropped keep their keys
    assert cap.caption(clips[4]) == ("Labels: category crying_baby; target 20; fold 2; "
                                     "level 0.05.")
    assert cap.fit_probe_set(clips) == {"target": "category"}
    assert cap.config()["drop_columns"] == ["target"]
    ann = cap.annotate(clips[4])
    assert ann.text == "Labels: category crying_baby; fold 2; level 0.05."
    assert ann.terms == ["category=crying_baby", "fold=2", "level=0.05"]
    assert label_terms(clips[4]) == ["category=crying_baby", "target=20", "fold=2",
                                     "level=0.05"]
    # explicit fields are written as given
    fixed = LabelCaptioner(fields=["labels.target"])
    assert fixed.fit_probe_set(clips) == {}
    assert fixed.caption(clips[4]) == "Labels: target 20."


def test_captions_stage_drops_and_reports_the_column(tmp_path, capsys):
    from dissect.stages.caption import write_captions

    rows = [{"id": c.id, "path": str(c.path), "sha256": c.id, "labels": dict(c.labels),
             "concepts": {}, "metadata": {}} for c in esc50_like()]
    artifacts.write_jsonl(tmp_path / artifacts.CLIPS, rows)
    info = write_captions(tmp_path, CaptionConfig(captioners=["labels"]), AudioConfig(),
                          progress=False)
    assert info["dropped_label_columns"] == {"target": "numeric, a function of 'category'"}
    assert "label column 'target' dropped" in capsys.readouterr().err
    caps = artifacts.read_jsonl(tmp_path / artifacts.CAPTIONS)
    assert len(caps) == 6
    assert not any("target" in r["text"] or "20" in r["text"] for r in caps)
    assert not any(t.startswith("target=") for r in caps for t in r["terms"])
    assert caps[0]["terms"] == ["category=dog", "fold=1", "level=0.31"]


def test_python_api_caption_drops_the_column(capsys):
    import dissect

    rec = dissect.Recording({}, [{"id": c.id, "path": str(c.path), "labels": dict(c.labels),
                                  "concepts": {}, "metadata": {}} for c in esc50_like()])
    out = dissect.caption(rec, captioners=("labels",), progress=False)
    assert out["c4"] == "labels: Labels: category crying_baby; fold 2; level 0.05"
    assert out.terms["c4"] == ["category=crying_baby", "fold=2", "level=0.05"]
    assert "'target'" in capsys.readouterr().err


def test_fit_probe_set_skips_captioners_without_it():
    plain = SimpleNamespace(name="acoustic")
    labels = LabelCaptioner()
    assert fit_probe_set([plain, labels], esc50_like(), log=False) == {
        "labels": {"target": "category"}}
