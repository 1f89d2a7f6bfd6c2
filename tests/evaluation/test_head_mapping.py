"""Table 2 for any head: head classes mapped onto the probe set's labels (exact, normalised,
MiniLM-nearest with a threshold), descriptions read as labels, accuracy over the mapped units
with enough clips; end to end through evaluate_run and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from eval_fakes import HashEmbedder
from safetensors.numpy import save_file

from dissect import artifacts
from dissect.evaluation.last_layer import (
    MAP_THRESHOLD,
    label_key,
    label_vocabulary,
    map_names,
    mapped_accuracy,
    name_alternatives,
    rank_labels,
)
from dissect.evaluation.scores import evaluate_run
from dissect.report.table2 import mapped_section

LABEL_DIMS = ("dog", "crying baby", "sea waves", "church bells", "rain", "hand saw")


def _vec(**weights: float) -> np.ndarray:
    """A unit vector over the label axes (LABEL_DIMS) plus one private axis per text, so that
    its cosine with label ``x`` is exactly ``weights[x]``."""
    v = np.zeros(len(LABEL_DIMS) + 1)
    for name, w in weights.items():
        v[LABEL_DIMS.index(name.replace("_", " "))] = w
    v[-1] = math.sqrt(max(0.0, 1.0 - float(np.sum(v ** 2))))
    return v


class TableEmbedder:
    """Texts with hand-set vectors (cosines to the labels chosen in the test); any other text
    raises, so a test also pins down what is embedded. Each text has its own private axis,
    so two table texts meet only on the label axes."""

    name = "table"

    def __init__(self, table: dict[str, np.ndarray], fallback=None):
        self.table = table
        self.fallback = fallback
        self.dim = len(LABEL_DIMS) + 1 + len(table)
        self.seen: list[str] = []

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim + (self.fallback.dim if self.fallback else 0)))
        keys = list(self.table)
        for i, t in enumerate(texts):
            self.seen.append(t)
            if t in self.table:
                v = self.table[t]
                out[i, : len(LABEL_DIMS)] = v[: len(LABEL_DIMS)]
                out[i, len(LABEL_DIMS) + 1 + keys.index(t)] = v[-1]
            elif self.fallback is not None:  # orthogonal to every table text
                out[i, self.dim:] = self.fallback.encode([t])[0]
            else:
                raise KeyError(f"unexpected text embedded: {t!r}")
        return out


LABELS = ["dog", "crying_baby", "sea_waves", "church_bells", "rain", "hand_saw"]
ONE_HOT = {lab.replace("_", " "): _vec(**{lab: 1.0}) for lab in LABELS}


def test_label_key_and_alternatives():
    assert label_key("church_bells") == label_key("Church bell") == "church bell"
    assert label_key("Hi-hat") == label_key("hi_hat") == "hi hat"
    assert label_key("glass") == "glass" and label_key("Bus") == "bus"  # -ss, short words kept
    assert name_alternatives("Crying, sobbing") == ["crying, sobbing", "crying", "sobbing"]
    assert name_alternatives("Ambulance (siren)") == ["ambulance (siren)", "ambulance"]
    assert name_alternatives("Dog") == ["dog"]


def test_map_names_rules_threshold_and_taken_labels():
    emb = TableEmbedder({
        **ONE_HOT,
        # Crying, sobbing: best alternative "crying" at 0.80 -> crying_baby
        "crying, sobbing": _vec(crying_baby=0.30), "crying": _vec(crying_baby=0.80),
        "sobbing": _vec(crying_baby=0.50),
        # Waves, surf: the whole name 0.75 -> sea_waves
        "waves, surf": _vec(sea_waves=0.75), "waves": _vec(sea_waves=0.72),
        "surf": _vec(sea_waves=0.20),
        # Animal: nearest dog at 0.90, but dog has its own class (Dog): not mapped
        "animal": _vec(dog=0.90),
        # Sawing: 0.69 < 0.70 -> not mapped (mapped at a 0.65 threshold)
        "sawing": _vec(hand_saw=0.69),
        # Speech: nearest rain at 0.30 -> not mapped
        "speech": _vec(rain=0.30),
    })
    classes = ["Dog", "rain", "Canidae, dogs, wolves", "Church bell", "Crying, sobbing",
               "Waves, surf", "Animal", "Sawing", "Speech"]
    got = map_names(classes, LABELS, emb)
    assert MAP_THRESHOLD == 0.70
    assert [None if g is None else (g["label"], g["how"]) for g in got] == [
        ("dog", "normalised"), ("rain", "exact"), ("dog", "normalised"),
        ("church_bells", "normalised"), ("crying_baby", "embedding"),
        ("sea_waves", "embedding"), None, None, None]
    assert got[4]["cos"] == pytest.approx(0.80) and got[5]["cos"] == pytest.approx(0.75)
    assert got[0]["cos"] is None
    # only the names without an exact / normalised match are embedded, with their alternatives
    assert set(emb.seen) == set(ONE_HOT) | {
        "crying, sobbing", "crying", "sobbing", "waves, surf", "waves", "surf", "animal",
        "sawing", "speech"}
    low = map_names(classes, LABELS, emb, threshold=0.65)
    assert low[7] == {"label": "hand_saw", "how": "embedding", "cos": pytest.approx(0.69)}
    assert low[6] is None  # dog is still taken by Dog
    assert map_names(["Dog"], [], emb) == [None]


def test_rank_labels_names_first_then_nearest():
    emb = TableEmbedder({**ONE_HOT,
                         "waves crashing": _vec(sea_waves=0.6, rain=0.5, hand_saw=0.1),
                         "Crying Baby": _vec(rain=0.9)})
    got = rank_labels(["Crying Baby", "waves crashing", "", "waves crashing"], LABELS, emb,
                      k=3)
    # "Crying Baby" is the label crying_baby by name, although its vector is nearest rain
    assert got[0] == ["crying_baby", "rain", "dog"]
    assert got[1] == ["sea_waves", "rain", "hand_saw"] and got[3] == got[1]
    assert got[2] == []
    assert rank_labels(["x"], [], emb) == [[]]


def test_mapped_accuracy_denominator_and_top_k():
    m = {"label": "dog", "how": "exact", "cos": None}
    r = {"label": "rain", "how": "normalised", "cos": None}
    c = {"label": "crying_baby", "how": "embedding", "cos": 0.8}
    mapping = [m, None, r, c, c, m]
    counts = {"dog": 6, "rain": 2, "crying baby": 5}  # rain has too few clips
    preds = [["dog", "rain"], ["dog"], ["rain"], ["rain", "crying_baby"], [None, "Crying baby"],
             []]
    out = mapped_accuracy(preds, ["Dog", "Speech", "Rain", "Crying", "Baby cry", "Bark"],
                          mapping, counts, min_clips=5)
    # scored: units 0 (right), 3 (wrong; 2nd), 4 (wrong: unmapped top-1), 5 (no prediction)
    assert out["n_classes"] == 6 and out["n_mapped"] == 5 and out["n_units"] == 4
    assert out["right"] == 1 and out["top1"] == 25.0
    assert out["top5"] is None  # 2 predictions at most: no top-5
    assert [(r["unit"], r["scored"], r["right"], r["clips"]) for r in out["mapping"]] == [
        (0, True, True, 6), (2, False, True, 2), (3, True, False, 5), (4, True, False, 5),
        (5, True, False, 6)]
    five = mapped_accuracy(preds, ["a"] * 6, mapping, counts, min_clips=5, n_predicted=5)
    assert five["top5"] == 75.0  # units 0, 3, 4 have their label in the first five
    with pytest.raises(ValueError, match="one each per head unit"):
        mapped_accuracy(preds[:2], ["a"] * 6, mapping, counts, 5)


def test_label_vocabulary_skips_the_redundant_numeric_column():
    clips = [{"labels": {"category": cat, "target": t, "tags": ["x", "Y_z"]}}
             for cat, t in [("dog", 0), ("dog", 0), ("rain", 10), ("Church_Bells", 4)]]
    labels, counts, cols = label_vocabulary(clips)
    assert cols == ["category", "tags"]  # target is a function of category: left out
    assert labels == ["dog", "x", "Y_z", "rain", "Church_Bells"]
    assert counts == {"dog": 2, "x": 4, "y z": 4, "rain": 1, "church bell": 1}
    labels, counts, cols = label_vocabulary(clips, ["target"])
    assert labels == ["0", "10", "4"] and counts == {"0": 2, "10": 1, "4": 1}


# ------------------------------------------------------------------ end to end


def make_head_run(root):
    """A finished run whose head has AudioSet-like classes over ESC-50-like clips."""
    run = root / "run"
    cats = ["dog"] * 6 + ["crying_baby"] * 6 + ["rain"] * 3
    target = {"dog": 0, "crying_baby": 20, "rain": 10}
    clips = [{"id": f"c{i:02d}", "path": f"/nope/{i}.wav",
              "labels": {"category": c, "target": target[c]}} for i, c in enumerate(cats)]
    artifacts.write_jsonl(run / artifacts.CLIPS, clips)
    classes = ["Dog", "Crying, sobbing", "Speech", "Rain"]
    rng = np.random.default_rng(0)
    U = rng.standard_normal((len(clips), 4)).astype(np.float16)
    (run / "activations").mkdir(parents=True)
    save_file({"values": U}, str(run / "activations" / "head.safetensors"))
    artifacts.write_jsonl(run / artifacts.CAPTIONS, [
        {"clip": c["id"], "captioner": "labels", "error": None,
         "text": f"Labels: category {c['labels']['category']}."} for c in clips])
    artifacts.write_jsonl(run / artifacts.EXEMPLARS, [
        {"layer": "head", "unit": u, "top": [{"clip": "c00", "value": 1.0}]} for u in range(4)])
    and_text = ["dog barking", "a baby crying", "dog barking", "dog barking"]
    artifacts.write_jsonl(run / artifacts.SUMMARIES, [
        {"layer": "head", "unit": u, "calibrated": t, "llm": "test"}
        for u, t in enumerate(and_text)])
    closed = [[["Dog", 0.9], ["Speech", 0.1]], [["Speech", 0.9], ["Crying, sobbing", 0.5]],
              [["Speech", 0.9]], [["Rain", 0.9]]]
    artifacts.write_jsonl(run / artifacts.CONCEPTS, [
        {"layer": "head", "unit": u, "closed": {"db": c}, "keywords": {}}
        for u, c in enumerate(closed)])
    shown = [("dog; weaker for target 0", "evidence"), ("rain", "evidence"),
             ("no clear concept", "none"), ("rain", "evidence")]
    artifacts.write_jsonl(run / artifacts.EXPLANATIONS, [
        {"layer": "head", "unit": u, "description": t, "kind": k,
         "no_clear_concept": k == "none", "test": {}, "val": {}, "candidates": []}
        for u, (t, k) in enumerate(shown)])
    artifacts.write_jsonl(run / artifacts.EVIDENCE, [
        {"layer": "head", "unit": u, "evidence": [], "sample": {}} for u in range(4)])
    cset = root / "aset.txt"
    cset.write_text("".join(f"{c}\t\tm{i}\n" for i, c in enumerate(classes)))
    artifacts.write_text(run / artifacts.CONFIG,
                         f"describe:\n  concept_set: {cset}\n  similarity: cos_cubed\n")
    m = artifacts.Manifest(run)
    m.stages["record"] = {"status": "done",
                          "info": {"head_layer": "head", "class_names": classes}}
    m.save()
    return run


def test_evaluate_run_maps_an_audioset_like_head_onto_esc50_like_labels(tmp_path):
    run = make_head_run(tmp_path)
    emb = TableEmbedder({
        "dog": _vec(dog=1.0), "crying baby": _vec(crying_baby=1.0), "rain": _vec(rain=1.0),
        "crying, sobbing": _vec(crying_baby=0.4), "crying": _vec(crying_baby=0.8),
        "sobbing": _vec(crying_baby=0.3), "speech": _vec(rain=0.2),
        "dog barking": _vec(dog=0.9, rain=0.1), "a baby crying": _vec(crying_baby=0.9)},
        fallback=HashEmbedder())
    s = evaluate_run(run, holdout=0.5, embedder=emb, n_clusters=2, write=False)
    last = s["last_layer"]
    # the mapping: Dog -> dog (normalised), Crying, sobbing -> crying_baby (MiniLM stand-in
    # cosine 0.8), Speech -> none (0.2), Rain -> rain (normalised) with 3 < 5 clips: unscored
    d = last["description"]["mapped"]
    assert d["columns"] == ["category"] and d["threshold"] == 0.7 and d["n_labels"] == 3
    assert [(r["class"], r["label"], r["how"], r["cos"], r["clips"], r["scored"])
            for r in d["mapping"]] == [
        ("Dog", "dog", "normalised", None, 6, True),
        ("Crying, sobbing", "crying_baby", "embedding", 0.8, 6, True),
        ("Rain", "rain", "normalised", None, 3, False)]
    assert d["n_classes"] == 4 and d["n_mapped"] == 3 and d["n_units"] == 2
    assert d["chance_top1"] == pytest.approx(100 / 3, abs=1e-4)
    # shown description: unit 0 "dog" right (the template's first claim), unit 1 "rain" wrong
    assert d["top1"] == 50.0 and d["right"] == 1
    assert [r["predicted"] for r in d["mapping"]] == ["dog", "rain", "rain"]
    # AND's summaries: "dog barking" -> dog, "a baby crying" -> crying_baby: both right
    assert last["and_summary"]["mapped"]["top1"] == 100.0
    # DB: unit 0's top concept Dog -> dog (right); unit 1's is Speech, which maps onto no
    # label: wrong, although its second concept would be right
    assert last["db"]["mapped"]["top1"] == 50.0 and last["db"]["mapped"]["right"] == 1
    # the blocks before stay as they were (AND's setting)
    assert last["db"]["n_units"] == 4 and "supported" in last["db"]
    html = mapped_section(s)
    assert "Crying, sobbing" in html and "crying_baby" in html and "embedding" in html
    assert "1 / 2" in html and "50 %" in html


def test_mapped_section_escapes_and_skips():
    assert mapped_section({}) == "" and mapped_section({"last_layer": {"db": {"top1": 1}}}) == ""
    hostile = "<script>alert(1)</script>"
    s = {"last_layer": {"db": {"mapped": {
        "columns": [hostile], "threshold": 0.7, "n_labels": 1, "min_clips": 5, "n_units": 1,
        "right": 1, "top1": 100.0, "mapping": [
            {"unit": 0, "class": hostile, "label": hostile, "how": "exact", "cos": None,
             "clips": 5, "scored": True, "predicted": hostile, "right": True}]}}}}
    html = mapped_section(s)
    assert "<script>" not in html and "&lt;script&gt;" in html
