"""ΔA / ΔR on a constructed toy classifier equal a hand computation; prune_run end to end."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
from prune_toys import TwoUnitAdapter, TwoUnitNet

from dissect import artifacts
from dissect.pruning.unlearn import (
    EvalSet,
    Evaluator,
    clip_measures,
    pitch_correct,
    prune_run,
    target_predicate,
    unlearning_report,
)

# clips x = (x0, x1); hidden = relu(x); logits = [2 h0, 0.5 h0 + h1 - 1]; ablating h0 -> h0 = 0
X = [(1, 0), (2, 1), (0, 3), (1, 1), (3, 0)]
CLASS = [0, 1, 1, 0, 0]
TARGET = [True, True, False, False, True]


def hand_logits(ablate_h0: bool) -> np.ndarray:
    out = []
    for x0, x1 in X:
        h0 = 0.0 if ablate_h0 else max(x0, 0)
        out.append([2 * h0, 0.5 * h0 + max(x1, 0) - 1])
    return np.array(out)


def softmax_true(logits, t):
    z = [math.exp(v) for v in logits]
    return z[t] / sum(z)


def evalset():
    return EvalSet([f"c{i}" for i in range(5)], [np.array(x, dtype=np.float32) for x in X],
                   np.array(CLASS), np.array(TARGET), ["a", "b", "b", "a", "a"])


def test_delta_a_and_delta_r_equal_hand_computation():
    ev = Evaluator(TwoUnitNet(), TwoUnitAdapter(), evalset())
    before, after = ev.measures(), ev.measures([("fc1", 0)])
    rep = unlearning_report(before, after, np.array(TARGET), ["a", "b", "b", "a", "a"])
    lb, la = hand_logits(False), hand_logits(True)
    tb = [lb[i, c] for i, c in enumerate(CLASS)]  # 2, 1, 2, 2, 6
    ta = [la[i, c] for i, c in enumerate(CLASS)]  # 0, 0, 2, 0, 0
    assert tb == [2, 1, 2, 2, 6] and ta == [0, 0, 2, 0, 0]
    lg = rep["measures"]["logit"]["clip_mean"]
    assert lg["target"]["before"] == pytest.approx(3.0) and lg["target"]["after"] == 0.0
    assert lg["delta_A"] == pytest.approx(-3.0)  # (0 + 0 + 0) / 3 - (2 + 1 + 6) / 3
    assert lg["delta_R"] == pytest.approx(-1.0)  # (2 + 0) / 2 - (2 + 2) / 2
    assert lg["forget_gap"] == pytest.approx(2.0)
    cm = rep["measures"]["logit"]["class_mean"]  # AND: mean over classes of class means
    assert cm["delta_A"] == pytest.approx(-2.5)  # class a: (2+6)/2 -> 0; class b: 1 -> 0
    assert cm["delta_R"] == pytest.approx(-1.0)  # class b: 2 -> 2; class a: 2 -> 0
    pb = [softmax_true(lb[i], c) for i, c in enumerate(CLASS)]
    pa = [softmax_true(la[i], c) for i, c in enumerate(CLASS)]
    pr = rep["measures"]["prob"]["clip_mean"]
    want_a = np.mean([pa[i] for i in (0, 1, 4)]) - np.mean([pb[i] for i in (0, 1, 4)])
    want_r = np.mean([pa[i] for i in (2, 3)]) - np.mean([pb[i] for i in (2, 3)])
    assert pr["delta_A"] == pytest.approx(want_a) and pr["delta_R"] == pytest.approx(want_r)
    acc = rep["measures"]["acc"]["clip_mean"]  # argmax: c1 wrong before and after (tie -> 0)
    assert acc["target"]["before"] == pytest.approx(2 / 3) and acc["delta_A"] == 0.0
    assert acc["rest"]["before"] == 1.0 and acc["delta_R"] == 0.0
    table = {r["class"]: r for r in rep["per_class"]}
    assert table["a"]["n"] == 3 and table["a"]["logit"]["before"] == pytest.approx(10 / 3)
    assert table["b"]["logit"]["after"] == pytest.approx(1.0)


def test_sigmoid_probability_and_pitch_correctness():
    logits = np.array([[0.0, 2.0], [1.0, -1.0]])
    m = clip_measures(logits, np.array([1, 1]), prob="sigmoid")
    assert m["prob"] == pytest.approx([1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))])
    bins = np.array([440.0, 466.16])
    ok = pitch_correct(logits, np.array([466.16 * 2 ** (40 / 1200), 440.0 * 2 ** (60 / 1200)]),
                       bins, 50.0)
    assert ok.tolist() == [True, False]


def test_target_expressions():
    clip = {"concepts": {"midi_note": 72, "family": "Brass"}, "labels": {"kind": "note"}}
    assert target_predicate("midi_note>=72")(clip) and not target_predicate("midi_note>72")(clip)
    assert target_predicate("family=brass")(clip) and target_predicate("kind=note")(clip)
    assert target_predicate("family:Brass")(clip) and not target_predicate("family:Reed")(clip)
    assert not target_predicate("midi_note<60")({"concepts": {"midi_note": None}})


def toy_clips(tmp_path):
    """The toy's clips as WAV files and clip rows (group x = the target clips)."""
    clips = []
    for i, (x, c, t) in enumerate(zip(X, CLASS, TARGET, strict=True)):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, np.array(x, dtype=np.float32), 16000, subtype="FLOAT")
        clips.append({"id": f"c{i}", "path": str(path), "labels": {"category": "ab"[c]},
                      "concepts": {"group": "x" if t else "y"}})
    return clips


def test_prune_run_end_to_end(tmp_path):
    run = tmp_path / "run"
    rows = [{"layer": "fc1", "unit": 0, "calibrated": "Loud dogs.", "llm": "x"},
            {"layer": "fc1", "unit": 1, "calibrated": "A quiet train.", "llm": "x"},
            {"layer": "head", "unit": 0, "calibrated": "Loud.", "llm": "x"}]
    artifacts.write_jsonl(run / artifacts.SUMMARIES, rows)
    clips = toy_clips(tmp_path)
    out = prune_run(run, "dog", "keyword", target="group=x", eval_clips=clips, seeds=(0, 1),
                    model=TwoUnitNet(), adapter=TwoUnitAdapter(), log=lambda s: None)
    assert out["selection"]["ranked"] == [["fc1", 0]]
    assert out["selection"]["candidate_layers"] == ["fc1"]  # the head is never a candidate
    lg = out["report"]["measures"]["logit"]["clip_mean"]
    assert lg["delta_A"] == pytest.approx(-3.0) and lg["delta_R"] == pytest.approx(-1.0)
    assert [p["n"] for p in out["curve"]] == [1]
    assert out["curve"][0]["logit_delta_A"] == pytest.approx(-3.0)
    # class means too (AND's Table 4 averages per class): the curve point equals the report's
    cm = out["report"]["measures"]["logit"]["class_mean"]
    assert out["curve"][0]["class_logit_delta_A"] == pytest.approx(cm["delta_A"])
    assert out["curve"][0]["class_logit_delta_R"] == pytest.approx(cm["delta_R"])
    assert out["curve"][0]["class_logit_delta_A"] != pytest.approx(lg["delta_A"])
    assert out["random"]["mean"][0]["class_logit_forget_gap"] is not None
    assert out["table4"]["report"]["logit_delta_A"]["lo"] is not None
    assert set(out["random"]["per_seed"]) == {"0", "1"}
    # before, the selection (= the curve's only point), 2 random draws of 1 of the 2 fc1 units;
    # measures are memoised per neuron set, so a draw equal to an earlier set costs no pass
    assert 2 <= out["passes"] <= 3
    saved = json.loads((run / "prune" / "dog.json").read_text())
    assert saved["report"] == out["report"]
    masks = json.loads((run / "prune" / "dog.masks.json").read_text())
    assert masks["layers"] == {"fc1": {"units": 2, "pruned": [0]}}
    assert (run / "prune" / "dog.masks.safetensors").is_file()


def test_evidence_selection_on_the_runs_held_out_clips(tmp_path):
    """method=evidence reads the shown description's terms (explanations.jsonl) with their
    evidence (evidence.jsonl); with heldout.jsonl present the evaluation uses exactly those
    clips (never the run's own clips.jsonl) and says so."""
    from dissect.evaluation.rundata import neuron_rows

    run = tmp_path / "run"
    artifacts.write_jsonl(run / artifacts.SUMMARIES, [
        {"layer": "fc1", "unit": u, "calibrated": "Sounds.", "llm": "x"} for u in (0, 1)])
    artifacts.write_jsonl(run / artifacts.EXPLANATIONS, [
        {"layer": "fc1", "unit": 0, "kind": "evidence", "description": "Dog; weaker for loud",
         "candidates": [{"kind": "and", "text": "Dogs.", "terms": None},
                        {"kind": "evidence", "text": "Dog; weaker for loud",
                         "terms": ["label=dog", "loudness=loud"]}]},
        {"layer": "fc1", "unit": 1, "kind": "evidence", "description": "Train",
         "candidates": [{"kind": "evidence", "text": "Train", "terms": ["label=train"]}]}])
    artifacts.write_jsonl(run / artifacts.EVIDENCE, [
        {"layer": "fc1", "unit": 0, "evidence": [
            {"term": "loudness=loud", "auroc": 0.7, "effect": 0.5, "p": 0.01, "support": 3},
            {"term": "label=dog", "auroc": 0.9, "effect": 2.0, "p": 0.001, "support": 2}]},
        {"layer": "fc1", "unit": 1, "evidence": [
            {"term": "label=train", "auroc": 0.8, "effect": 1.0, "p": 0.02, "support": 2}]}])
    rows = neuron_rows(run)
    assert rows[0]["shown"] == {"text": "Dog; weaker for loud", "kind": "evidence", "terms": [
        {"term": "label=dog", "auroc": 0.9, "effect": 2.0, "p": 0.001, "support": 2},
        {"term": "loudness=loud", "auroc": 0.7, "effect": 0.5, "p": 0.01, "support": 3}]}
    clips = toy_clips(tmp_path)
    artifacts.write_jsonl(run / artifacts.HELDOUT, clips)
    artifacts.write_jsonl(run / artifacts.CLIPS, [{"id": "seen", "path": "/nonexistent.wav",
                                                   "labels": {"category": "a"}}])
    out = prune_run(run, "dog", "evidence", target="group=x", seeds=(0, 1), write=False,
                    model=TwoUnitNet(), adapter=TwoUnitAdapter(), log=lambda s: None)
    assert out["selection"]["ranked"] == [["fc1", 0]]
    assert out["evaluation"]["source"] == "probe.holdout"
    assert out["evaluation"]["clip_ids"] == [f"c{i}" for i in range(5)]
    lg = out["report"]["measures"]["logit"]["clip_mean"]
    assert lg["delta_A"] == pytest.approx(-3.0) and lg["delta_R"] == pytest.approx(-1.0)
    assert out["evaluation"]["heldout"] is True
    assert [p["n"] for p in out["random"]["mean"]] == [1]
    assert set(out["random"]["per_seed"]) == {"0", "1"}
    # the Table 4 row: chosen on the select half, reported on the report half
    sel_ids = set(out["evaluation"]["select_ids"])
    assert sel_ids and sel_ids < set(out["evaluation"]["clip_ids"])
    assert out["table4"]["choice"]["n"] in (0, 1)
    assert set(out["table4"]["random"]["chosen_n"]) == {"0", "1"}


def test_best_point_largest_gap_within_the_retained_accuracy_budget():
    from dissect.pruning.unlearn import best_point

    curve = [{"n": 8, "class_logit_forget_gap": 0.3, "class_acc_delta_R": 0.01},
             {"n": 16, "class_logit_forget_gap": 1.2, "class_acc_delta_R": -0.02},
             {"n": 32, "class_logit_forget_gap": 1.2, "class_acc_delta_R": -0.01},
             {"n": 64, "class_logit_forget_gap": 4.9, "class_acc_delta_R": -0.023},
             {"n": 128, "class_logit_forget_gap": None, "class_acc_delta_R": 0.0}]
    assert best_point(curve)["n"] == 64
    assert best_point(curve, max_rest_acc_drop=0.02)["n"] == 16  # tie on the gap: fewer
    assert best_point(curve, max_rest_acc_drop=0.005)["n"] == 8
    assert best_point(curve[3:], max_rest_acc_drop=0.02) is None
