"""Last-layer accuracy, agreement, detection: exact values on constructed data."""

import numpy as np
import pytest
from eval_fakes import HashEmbedder
from sklearn.metrics import average_precision_score, roc_auc_score

from dissect.evaluation.agreement import (
    agreement_metrics,
    clip_has_concept,
    ground_truth_matrix,
    holdout_mask,
    layer_agreement,
)
from dissect.evaluation.detection import detection_auroc, detection_scores
from dissect.evaluation.last_layer import last_layer_accuracy, note_midi

# ------------------------------------------------------------------ last layer


def test_last_layer_accuracy_of_a_toy_head_is_exact():
    classes = ["dog", "chirping_birds", "rain", "train"]
    preds = [
        [("dog", 0.9), ("cat", 0.1)],  # top-1 right
        ["chirping birds"],  # right up to "_" vs " "
        ["train", "sea", "wind", "dog", "rain"],  # top-5 only (fifth)
        ["rain", "dog"],  # wrong
    ]
    emb = HashEmbedder()
    out = last_layer_accuracy(preds, classes, emb, concepts=["dog", "rain", "train", "cat"],
                              pitch=False)
    assert out["n_units"] == 4 and out["top1"] == 50.0 and out["top5"] == 75.0
    E = emb.encode(["dog", "chirping birds", "train", "rain"])
    cos_rain_train = float(E[2] @ E[3])
    assert out["cos"] == pytest.approx((1 + 1 + cos_rain_train + cos_rain_train) / 4, abs=1e-6)
    sc = out["scorable"]  # chirping_birds is not in the concept list
    assert sc["n_units"] == 3 and sc["top1"] == pytest.approx(100 / 3)
    assert sc["top5"] == pytest.approx(200 / 3)
    assert "top1_semitone" not in out


def test_pitch_head_within_one_semitone():
    assert note_midi("A4") == 69 and note_midi("C#2") == 37 and note_midi("Bb3") == 58
    assert note_midi("brass") is None
    classes = ["A4", "A4", "C#5", "E2"]
    preds = [["A4"], ["A#4"], ["D5", "C#5"], ["brass", "low pitch"]]
    out = last_layer_accuracy(preds, classes, embedder=False)
    assert out["cos"] is None
    assert out["top1"] == 25.0 and out["top1_semitone"] == 75.0
    # at most 2 predictions per unit: no top-5 (it would be top-2 under another name)
    assert out["n_predicted"] == 2 and out["top5"] is None and out["top5_semitone"] is None
    padded = [p + ["x1", "x2", "x3", "x4"] for p in preds]
    out5 = last_layer_accuracy(padded, classes, embedder=False)
    assert out5["top5"] == 50.0 and out5["top5_semitone"] == 75.0


def test_one_prediction_per_unit_has_no_top5():
    # ICL asks the LLM for one concept: top-5 used to equal top-1 under another name
    out = last_layer_accuracy([["dog"], ["cat"]], ["dog", "rain"], embedder=False)
    assert out["top1"] == 50.0 and out["top5"] is None and out["n_predicted"] == 1


def test_last_layer_length_mismatch():
    with pytest.raises(ValueError):
        last_layer_accuracy([["a"]], ["a", "b"], embedder=False)


# ------------------------------------------------------------------ agreement


def test_holdout_mask_is_deterministic_and_order_free():
    ids = [f"clip-{i}" for i in range(2000)]
    m = holdout_mask(ids, 0.3, seed=0)
    assert m.tolist() == holdout_mask(ids, 0.3, seed=0).tolist()
    rev = holdout_mask(ids[::-1], 0.3, seed=0)
    assert rev[::-1].tolist() == m.tolist()
    assert 0.27 < m.mean() < 0.33
    assert holdout_mask(ids, 0.3, seed=1).tolist() != m.tolist()
    assert not holdout_mask(ids, 0.0).any() and holdout_mask(ids, 1.0).all()


def test_agreement_metrics_match_sklearn_and_hand_computation():
    a = np.array([0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.05, 0.6, 0.4, 0.95])
    y = np.array([0, 1, 0, 1, 0, 0, 0, 1, 1, 0], dtype=float)
    m = agreement_metrics(a, y, quantile=0.7)
    assert m["pearson"] == pytest.approx(np.corrcoef(a, y)[0, 1])
    assert m["auprc"] == pytest.approx(average_precision_score(y, a))
    thr = np.quantile(a, 0.7)  # 0.77 -> on = {0.9, 0.8, 0.95}
    on = a >= thr
    assert on.sum() == 3 and m["threshold"] == pytest.approx(thr)
    tp = int((on & (y > 0)).sum())  # 0.9, 0.8 -> 2
    assert tp == 2
    assert m["f1"] == pytest.approx(2 * tp / (on.sum() + y.sum()))  # 4 / 7
    assert m["iou"] == pytest.approx(tp / int((on | (y > 0)).sum()))  # 2 / 5
    assert m["prevalence"] == pytest.approx(0.4) and m["n_pos"] == 4


def test_agreement_undefined_cases_and_probabilities():
    a = np.arange(5.0)
    m = agreement_metrics(a, np.zeros(5))
    assert m["auprc"] is None and m["pearson"] is None and m["f1"] is None
    assert agreement_metrics(np.ones(5), np.array([0, 1, 0, 1, 0.0]))["pearson"] is None
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.8])
    mp = agreement_metrics(a, p, quantile=0.6, y_binary=False)
    yb = p >= np.quantile(p, 0.6)  # top-2 probabilities -> clips 3, 4
    assert mp["auprc"] == pytest.approx(average_precision_score(yb, a)) and mp["n_pos"] == 2
    assert mp["pearson"] == pytest.approx(np.corrcoef(a, p)[0, 1])


def test_layer_agreement_uses_each_neurons_concept():
    rng = np.random.default_rng(0)
    Y = np.zeros((40, 3))
    Y[:10, 0] = Y[10:20, 1] = 1  # column 2 never present
    U = rng.standard_normal((40, 3))
    U[:, 0] += 3 * Y[:, 1]
    out = layer_agreement(U, [1, 0, 2], Y, known=[True, True, False], quantile=0.75)
    assert out["n_scored"] == 2 and out["per_neuron"][2] is None
    assert out["per_neuron"][0]["auprc"] == pytest.approx(average_precision_score(Y[:, 1],
                                                                                  U[:, 0]))
    assert out["per_neuron"][0]["auprc"] > 0.9
    assert out["mean"]["auprc"] == pytest.approx(np.mean(
        [out["per_neuron"][0]["auprc"], out["per_neuron"][1]["auprc"]]))


def test_ground_truth_from_synth_clip_rows():
    clips = [
        {"concepts": {"note": "A4", "family": "Brass", "f0_hz": 440.0, "kind": "note"},
         "labels": {"family": "Brass", "kind": "note"}},
        {"concepts": {"note": "C#6", "family": "Chromatic Percussion", "f0_hz": 1108.7,
                      "kind": "note"}, "labels": {}},
        {"concepts": {"note": None, "family": None, "f0_hz": None, "kind": "noise",
                      "noise_colour": "pink"}, "labels": {}},
    ]
    ids = ["note:A4", "family:Brass", "family:Chromatic Percussion", "register:high",
           "register:middle", "noise_colour:pink", "kind:speech"]
    Y, known = ground_truth_matrix(clips, ids)
    assert Y[:, 0].tolist() == [1, 0, 0] and Y[:, 1].tolist() == [1, 0, 0]
    assert Y[:, 2].tolist() == [0, 1, 0]
    assert Y[:, 3].tolist() == [0, 1, 0] and Y[:, 4].tolist() == [1, 0, 0]
    assert known.tolist() == [True, True, True, True, True, False, False]  # pink: not all rows
    assert clip_has_concept({"labels": {"category": "chirping_birds"}}, "chirping_birds")
    assert clip_has_concept({"labels": {"category": "dog"}}, "x_dog", "Dog")
    assert clip_has_concept({"labels": {}}, "dog") is None


# ------------------------------------------------------------------ detection


def test_detection_auroc_constructed():
    a = np.array([5.0, 4.0, 0.1, 0.2, 0.3, 0.0, 0.4, 0.5, 0.6, 0.7])  # top 20 %: clips 0, 1
    assert detection_auroc(np.arange(10)[::-1], a, 0.8) == 1.0
    assert detection_auroc(np.arange(10), a, 0.8) == 0.0
    s = np.array([0.9, 0.1, 0.5, 0.2, 0.3, 0.0, 0.4, 0.6, 0.7, 0.8])
    assert detection_auroc(s, a, 0.8) == pytest.approx(roc_auc_score(a >= np.quantile(a, .8), s))
    assert detection_auroc(s, np.ones(10)) is None


def test_detection_scores_with_captions():
    emb = HashEmbedder()
    caps = ["a dog barking", "a dog growling", "rain on a roof", "a train passing",
            "wind", "a quiet room", "sea waves", "a bird", "a car", "a clock"]
    U = np.zeros((10, 2))
    U[:2, 0] = 5.0  # neuron 0 fires on the dog clips
    U[:, 1] = np.arange(10)  # neuron 1: top clips are "a car", "a clock"
    out = detection_scores(["dog", "rain"], U, emb.encode(caps), emb, quantile=0.8)
    assert out["auroc"][0] == 1.0 and out["n_scored"] == 2
    assert out["auroc"][1] < 0.5


def test_midranks_and_binary_auroc_equal_scipy_and_sklearn():
    from scipy.stats import rankdata

    from dissect.evaluation.detection import binary_auroc, midranks

    rng = np.random.default_rng(5)
    for n in (1, 2, 9, 60, 501):
        x = np.round(rng.normal(size=n), 1)  # many ties
        assert np.array_equal(midranks(x), rankdata(x))
        if n < 2:
            continue
        y = rng.random(n) < 0.3
        y[0], y[-1] = True, False
        assert binary_auroc(y, x) == pytest.approx(roc_auc_score(y, x), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        binary_auroc(np.ones(4, bool), np.arange(4.0))


def test_average_precision_equals_sklearn_with_ties():
    from dissect.evaluation.agreement import average_precision

    rng = np.random.default_rng(8)
    for n in (1, 2, 13, 80, 700):
        s = np.round(rng.normal(size=n), 1)
        y = rng.random(n) < 0.25
        y[0] = True
        assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert average_precision([False, True, False], [0.1, 0.9, 0.1]) == 1.0
    with pytest.raises(ValueError, match="a positive"):
        average_precision(np.zeros(3, bool), np.arange(3.0))
