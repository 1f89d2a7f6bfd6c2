"""dissect.models.head: the fitted head equals sklearn's pipeline, and its file round-trips."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from dissect.models.head import HEAD_FORMAT, fit_linear_head, load_head, save_head


def _data(rng):
    centres = rng.normal(0, 3, (4, 6))
    y = rng.integers(0, 4, 120)
    x = centres[y] + rng.normal(0, 1, (120, 6)) * rng.uniform(0.5, 4, 6)  # unequal scales
    names = np.array(["dog", "bell", "water", "rare"], dtype=object)[y]
    labels = [str(v) for v in names]
    rare = [i for i, v in enumerate(labels) if v == "rare"]
    for i in rare[3:]:
        labels[i] = None  # "rare" keeps 3 clips (< min_clips); the others unlabelled
    return x, labels


def test_folded_softmax_head_equals_the_sklearn_pipeline():
    x, labels = _data(np.random.default_rng(0))
    head = fit_linear_head(x, labels, min_clips=5, c=0.5, kind="softmax")
    assert head.classes == ["bell", "dog", "water"]  # "rare" (3 clips) and None left out
    keep = np.array([v in head.classes for v in labels])
    y = np.array([head.classes.index(v) for v in np.array(labels, dtype=object)[keep]])
    sc = StandardScaler().fit(x[keep])
    clf = LogisticRegression(C=0.5, max_iter=5000, random_state=0).fit(sc.transform(x[keep]), y)
    ref = clf.decision_function(sc.transform(x))  # every row, unlabelled ones too
    np.testing.assert_allclose(head.logits(x), ref, rtol=1e-5, atol=1e-4)
    assert head.info["clips"] == head.info["labelled_clips"] == int(keep.sum())
    assert head.info["train_accuracy"] == pytest.approx(
        (clf.predict(sc.transform(x[keep])) == y).mean())
    assert head.info["clips_per_class"] == {k: labels.count(k) for k in head.classes}


def test_ovr_head_equals_sklearns_one_vs_rest_on_every_row():
    """One class against every other row, the unlabelled and rare-class rows included."""
    from sklearn.multiclass import OneVsRestClassifier

    x, labels = _data(np.random.default_rng(2))
    head = fit_linear_head(x, labels, min_clips=5, c=0.5)
    assert head.info["kind"] == "ovr" and head.classes == ["bell", "dog", "water"]
    assert head.info["clips"] == len(labels)  # every row is a training row
    sc = StandardScaler().fit(x)
    y = np.array([[v == k for k in head.classes] for v in labels], dtype=int)
    ref = OneVsRestClassifier(LogisticRegression(C=0.5, max_iter=5000, random_state=0)).fit(
        sc.transform(x), y)
    np.testing.assert_allclose(head.logits(x), ref.decision_function(sc.transform(x)),
                               rtol=1e-5, atol=1e-4)
    lab = np.array([v in head.classes for v in labels])
    truth = [head.classes.index(v) for v in np.array(labels, dtype=object)[lab]]
    assert head.info["train_accuracy"] == pytest.approx(
        np.mean(head.logits(x[lab]).argmax(1) == truth))
    with pytest.raises(ValueError, match="head kind must be one of"):
        fit_linear_head(x, labels, kind="svm")


def test_too_few_classes_is_an_error():
    with pytest.raises(ValueError, match="two classes with at least 5 clips"):
        fit_linear_head(np.zeros((7, 2)), ["a"] * 5 + ["b"] * 2)


def test_head_file_round_trip_and_errors(tmp_path):
    x, labels = _data(np.random.default_rng(1))
    head = fit_linear_head(x, labels, info={"model": "m"})
    p = save_head(head, tmp_path / "h.safetensors")
    back = load_head(p)
    assert back.classes == head.classes and back.info == head.info
    assert np.array_equal(back.weight, head.weight) and np.array_equal(back.bias, head.bias)
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_head(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="bad.safetensors"):
        load_head(bad)
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros((2, 3), np.float32)}, str(other))
    with pytest.raises(ValueError, match=f"other.safetensors: not a {HEAD_FORMAT} file"):
        load_head(other)
