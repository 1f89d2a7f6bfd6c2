"""Guidance from trusted descriptions: only confirmed units, matched on their description or
evidence, ranked by held-out correlation; top-variance units; the task label words."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dissect.ensemble.guided import confirmed_units, select_for_labels, top_variance_units
from dissect.hear.guided import label_terms
from dissect.recording.store import activations_path
from dissect.util import csv_text

HEADER = ["layer", "unit", "description", "kind", "status", "why", "test_correlation"]


def _run(tmp_path, name, rows, evidence=None, acts=None):
    run = tmp_path / name
    run.mkdir()
    (run / "descriptions.csv").write_text(csv_text(HEADER, rows))
    if evidence is not None:
        (run / "evidence.jsonl").write_text("".join(
            json.dumps({"layer": la, "unit": u, "evidence": [{"term": t} for t in ts]}) + "\n"
            for (la, u), ts in evidence.items()))
    for layer, a in (acts or {}).items():
        p = activations_path(run, layer)
        p.parent.mkdir(parents=True, exist_ok=True)
        save_file({"values": torch.tensor(a, dtype=torch.float32)}, str(p))
    return run


def test_only_confirmed_units_that_name_a_label_are_kept_best_held_out_first(tmp_path):
    a = _run(tmp_path, "a", [
        ["l1", 0, "the word 'seven'", "evidence", "confirmed", "", "0.40"],
        ["l1", 1, "the word 'seven'", "evidence", "unconfirmed", "", "0.90"],  # not trusted
        ["l1", 2, "loud; least to: the word 'three'", "evidence", "confirmed", "", "0.80"],
        ["l2", 0, "bright", "evidence", "confirmed", "", "0.70"],  # evidence names 'three'
        ["l2", 1, "sevenfold", "evidence", "confirmed", "", "0.95"],  # not a whole word
    ], evidence={("l2", 0): ["bright", "three"]})
    b = _run(tmp_path, "b", [
        ["x", 5, "Seven, spoken", "evidence", "confirmed", "", "0.60"],
        ["x", 6, "seven", "evidence", "confirmed", "", ""],  # no held-out score: last
    ])
    assert set(confirmed_units(a)) == {("l1", 0), ("l1", 2), ("l2", 0), ("l2", 1)}
    assert confirmed_units(a)[("l1", 2)]["description"] == "loud"  # the high side only
    picked, info = select_for_labels([a, b], ["seven", "three"], size=10)
    assert picked == [(0, "l2", 0), (1, "x", 5), (0, "l1", 0), (1, "x", 6)]
    assert info["matched"] == 4 and info["per_run"] == [2, 2]
    assert info["units"]["0:l2:0"] == {"terms": ["three"], "test_correlation": 0.7}
    top2, info2 = select_for_labels([a, b], ["seven", "three"], size=2)
    assert top2 == picked[:2] and info2["matched"] == 4  # never padded, never more than asked
    with pytest.raises(ValueError):
        select_for_labels([a], ["seven"], size=0)
    with pytest.raises(FileNotFoundError, match="descriptions.csv"):
        confirmed_units(tmp_path)


def test_top_variance_ranks_units_by_their_activation_variance(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)) * np.array([1.0, 3.0, 0.5])
    y = rng.normal(size=(50, 2)) * np.array([2.0, 0.1])
    run = _run(tmp_path, "r", [], acts={"x": x, "y": y})
    got = top_variance_units(run, ["x", "y"])
    want = sorted([("x", u, float(np.var(x[:, u].astype(np.float32), ddof=1)))
                   for u in range(3)] +
                  [("y", u, float(np.var(y[:, u].astype(np.float32), ddof=1)))
                   for u in range(2)], key=lambda t: -t[2])
    assert [(la, u) for la, u, _ in got] == [(la, u) for la, u, _ in want]
    assert [v for *_, v in got] == pytest.approx([v for *_, v in want], rel=1e-5)


def test_label_terms_name_notes_digits_and_classes():
    assert label_terms(["60", "61", "69"], ["pitch_acc", "chroma_acc"]) == {
        "60": ["C4"], "61": ["C#4"], "69": ["A4"]}
    assert label_terms(["0", "7"], ["top1_acc"]) == {"0": ["zero"], "7": ["seven"]}
    assert label_terms(["bass_drum", "en"]) == {"bass_drum": ["bass drum"], "en": ["en"]}
