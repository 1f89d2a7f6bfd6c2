"""HEAR scores: parity with ``heareval.score`` (hear-eval-kit 2021.1.3) on random predictions,
and the event postprocessing on hand-computed frames."""

import math

import numpy as np
import pytest

from dissect.hear import metrics as M

heareval_score = pytest.importorskip("heareval.score")

SCENE = ["top1_acc", "pitch_acc", "chroma_acc", "mAP", "d_prime", "aucroc"]
EVENT = [
    "event_onset_200ms_fms",
    "event_onset_50ms_fms",
    "event_onset_offset_50ms_20perc_fms",
    "segment_1s_er",
]


def _theirs(name, labels, predictions, targets):
    fn = heareval_score.available_scores[name](label_to_idx={str(x): i for i, x in
                                                             enumerate(labels)})  # fmt: skip
    return fn(predictions, targets)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", SCENE)
def test_scene_scores_equal_heareval_multiclass(name, seed):
    rng = np.random.default_rng(seed)
    n, c = 200, 24
    labels = [str(48 + i) for i in range(c)]
    y = np.eye(c, dtype=np.float32)[np.concatenate([np.arange(c), rng.integers(0, c, n - c)])]
    # make argmax hits likely enough that accuracies are not trivially 0
    logits = rng.normal(size=(n, c)) + 2.0 * y * (rng.random((n, 1)) < 0.4)
    p = _softmax(logits).astype(np.float32)
    ours = M.get_score(name)(p, y, labels)
    theirs = _theirs(name, labels, p, y)
    assert ours == pytest.approx(float(theirs), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", ["mAP", "d_prime", "aucroc", "top1_acc"])
def test_scene_scores_equal_heareval_multilabel(name):
    rng = np.random.default_rng(7)
    y = (rng.random((150, 10)) < 0.3).astype(np.float32)
    y[0] = 1.0  # every class has a positive
    p = rng.random((150, 10)).astype(np.float32)
    assert M.get_score(name)(p, y) == pytest.approx(float(_theirs(name, range(10), p, y)),
                                                    rel=1e-12)  # fmt: skip


@pytest.mark.parametrize("name", ["d_prime", "aucroc"])
def test_nan_when_a_class_has_no_positive_like_heareval(name):
    rng = np.random.default_rng(3)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 3, 40)]  # class 3 never occurs
    p = _softmax(rng.normal(size=(40, 4)))
    theirs = _theirs(name, range(4), p, y)
    assert math.isnan(M.get_score(name)(p, y))
    assert math.isnan(theirs)


def test_chroma_acc_counts_octave_errors_and_midi_lookup():
    y = np.eye(25)[[0, 12, 3]]
    p = np.eye(25)[[12, 24, 4]]  # two octave errors, one wrong
    assert M.chroma_acc(p, y) == pytest.approx(2 / 3)
    assert M.top1_acc(p, y) == 0.0
    # a non-contiguous vocabulary: indices 0, 1 are MIDI 60, 72 (same pitch class)
    assert M.chroma_acc(np.eye(2)[[1]], np.eye(2)[[0]], pitch_of_index=[60, 72]) == 1.0
    assert M.chroma_acc(np.eye(2)[[1]], np.eye(2)[[0]]) == 0.0


def _random_events(rng, files, labels, n_max, jitter=None, ref=None):
    out = {}
    for f in files:
        evs = []
        if ref is not None:
            for ev in ref[f]:
                if rng.random() < 0.7:  # keep most reference events, jittered
                    s = max(0.0, ev["start"] + rng.normal(0, jitter))
                    e = max(s, ev["end"] + rng.normal(0, 3 * jitter))
                    lab = ev["label"] if rng.random() < 0.85 else str(rng.choice(labels))
                    evs.append({"label": lab, "start": s, "end": e})
        for _ in range(int(rng.integers(0, n_max + 1))):
            s = float(rng.uniform(0, 9000))
            evs.append({"label": str(rng.choice(labels)), "start": s,
                        "end": s + float(rng.uniform(0, 1500))})  # fmt: skip
        out[f] = evs
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", EVENT)
def test_event_scores_equal_heareval_sed_eval(name, seed):
    rng = np.random.default_rng(seed)
    labels = ["dog", "door", "speech", "phone"]
    files = [f"f{i}.wav" for i in range(6)]
    targets = _random_events(rng, files, labels, 6)
    preds = _random_events(rng, files, labels, 3, jitter=60.0, ref=targets)
    preds.pop("f5.wav")  # heareval scores only the files that have predictions
    ours = M.get_score(name)(preds, targets, labels)
    theirs = _theirs(name, labels, preds, targets)
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12) or (math.isnan(a) and math.isnan(b))
    flat = M.score_all([name], preds, targets, labels)
    assert flat[name] == ours[0][1]


def test_events_from_frames_hand_computed():
    # 10 frames, 50 ms hop; label a active on frames 1-3 and 6, b on 8-9; given out of order
    ts = np.arange(10) * 50.0
    p = np.zeros((10, 2))
    p[[1, 2, 3, 6], 0] = 0.9
    p[[8, 9], 1] = 0.8
    p[5, 1] = 0.5  # not above the 0.5 threshold
    perm = np.random.default_rng(0).permutation(10)
    ev = M.events_from_frames(p[perm], ts[perm], ["a", "b"], median_filter_ms=0, min_duration=0)
    assert ev == [
        {"label": "a", "start": 50.0, "end": 150.0},
        {"label": "a", "start": 300.0, "end": 300.0},
        {"label": "b", "start": 400.0, "end": 450.0},
    ]
    ev = M.events_from_frames(p, ts, ["a", "b"], median_filter_ms=0, min_duration=60)
    assert [e["start"] for e in ev] == [50.0]  # 0-length and 50 ms events dropped
    # median filter: 125 ms / 50 ms = 2.5 -> round() = 2 (banker's), 175 / 50 = 3.5 -> 4
    assert M._median_filter_width(125, ts) == 2
    assert M._median_filter_width(175, ts) == 4
    ev = M.events_from_frames(p, ts, ["a", "b"], median_filter_ms=150, min_duration=0)
    # a 3-frame median removes the isolated frame 6 and keeps the run 1-3
    assert [(e["label"], e["start"], e["end"]) for e in ev] == [
        ("a", 50.0, 150.0), ("b", 400.0, 450.0)]  # fmt: skip


def test_events_for_files_groups_by_file_and_grid():
    ts = [0.0, 50.0, 100.0, 0.0, 50.0, 100.0]
    files = ["x/a.wav"] * 3 + ["x/b.wav"] * 3
    p = np.array([[0.9], [0.9], [0.9], [0.1], [0.9], [0.1]])
    out = M.events_for_files(p, files, ts, ["e"], {"median_filter_ms": [0], "min_duration":
                                                   [0, 100]})  # fmt: skip
    assert list(out) == [(("median_filter_ms", 0), ("min_duration", 0)),
                         (("median_filter_ms", 0), ("min_duration", 100))]  # fmt: skip
    assert out[(("median_filter_ms", 0), ("min_duration", 0))]["b.wav"] == [
        {"label": "e", "start": 50.0, "end": 50.0}]  # fmt: skip
    assert out[(("median_filter_ms", 0), ("min_duration", 100))] == {
        "a.wav": [{"label": "e", "start": 0.0, "end": 100.0}], "b.wav": []}  # fmt: skip
