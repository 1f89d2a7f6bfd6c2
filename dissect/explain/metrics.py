"""Explanation metrics and Neuron_Eval's two sanity tests for them.

Every metric compares a neuron's activations ``a [N]`` with an explanation's concept vector
``c [N]`` (1/0: the input has the concept; :func:`dissect.explain.scoring.claim_prediction`
gives it for a description). Metrics that need the neuron "active" binarise ``a``: with
``active`` given, that; else its top ``alpha`` fraction (ties at the threshold included).

The sanity tests (Oikarinen, Yan & Weng, "Evaluating Neuron Explanations: A Unified Framework
with Sanity Checks", ICML 2025; our own code after the paper's definitions): simulate a neuron
that fires exactly on a concept present on a fraction ``gamma`` of ``N`` inputs, ``a = c_true``,
and compare the score of the true explanation with

* **missing labels**: ``c`` = ``c_true`` with a random half of its positives removed;
* **extra labels**: ``c`` = ``c_true`` plus as many random extra positives.

A metric passes a test when the mean normalised decrease
``(score(c_true) - score(c)) / |score(c_true)|`` is at least ``epsilon`` (0.001) at every
``gamma``. :func:`sanity_test` runs both; ``tests/explain/test_explanation_metrics.py``
checks that the metric the shown description is chosen by (correlation) and the reported
AUPRC pass, and that
AUROC-style scores (our ``detection``, the inverse AUC) fail as the paper reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dissect.explain.scoring import average_precision, concordance


def binarize(a: np.ndarray, alpha: float) -> np.ndarray:
    """``[N]`` bool: the top ``alpha`` fraction of ``a`` (every value >= the threshold)."""
    a = np.asarray(a, dtype=np.float64)
    k = max(1, int(round(alpha * len(a))))
    thr = np.partition(a, len(a) - k)[len(a) - k]
    return a >= thr


def _active(a, alpha, active):
    return np.asarray(active, dtype=bool) if active is not None else binarize(a, alpha)


def correlation(a, c, alpha=0.1, active=None) -> float:
    """Pearson correlation of ``a`` and ``c`` (0 when either is constant)."""
    a, c = np.asarray(a, float), np.asarray(c, float)
    if np.ptp(a) == 0 or np.ptp(c) == 0:
        return 0.0
    return float(np.corrcoef(a, c)[0, 1])


def cosine(a, c, alpha=0.1, active=None) -> float:
    """Cosine similarity of ``a`` and ``c``."""
    a, c = np.asarray(a, float), np.asarray(c, float)
    d = np.linalg.norm(a) * np.linalg.norm(c)
    return float(a @ c / d) if d else 0.0


def auprc(a, c, alpha=0.1, active=None) -> float:
    """Average precision of ``a`` ranking the inputs with the concept."""
    v = average_precision(np.asarray(a, float), np.asarray(c) > 0)
    return 0.0 if v is None else v


def inverse_auc(a, c, alpha=0.1, active=None) -> float:
    """AUROC of ``a`` separating inputs with the concept from the rest: our ``detection``."""
    v = concordance((np.asarray(c) > 0).astype(float), np.asarray(a, float))
    return 0.5 if v is None else v


def auc(a, c, alpha=0.1, active=None) -> float:
    """AUROC of ``c`` separating the active inputs from the rest."""
    y = _active(a, alpha, active)
    v = concordance(y.astype(float), np.asarray(c, float))
    return 0.5 if v is None else v


def _counts(a, c, alpha, active):
    y = _active(a, alpha, active)
    p = np.asarray(c) > 0
    return int((y & p).sum()), int((~y & p).sum()), int((y & ~p).sum())


def recall(a, c, alpha=0.1, active=None) -> float:
    """Share of the active inputs that have the concept."""
    tp, fp, fn = _counts(a, c, alpha, active)
    return tp / (tp + fn) if tp + fn else 0.0


def precision(a, c, alpha=0.1, active=None) -> float:
    """Share of the inputs with the concept that are active."""
    tp, fp, fn = _counts(a, c, alpha, active)
    return tp / (tp + fp) if tp + fp else 0.0


def f1(a, c, alpha=0.1, active=None) -> float:
    """F1 of the concept predicting the active inputs."""
    tp, fp, fn = _counts(a, c, alpha, active)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def iou(a, c, alpha=0.1, active=None) -> float:
    """Intersection over union of the active inputs and those with the concept."""
    tp, fp, fn = _counts(a, c, alpha, active)
    return tp / (tp + fp + fn) if tp else 0.0


#: name -> metric ``(a, c, alpha, active) -> float``.
METRICS: dict[str, Callable[..., float]] = {
    "correlation": correlation, "cosine": cosine, "auprc": auprc, "f1": f1, "iou": iou,
    "recall": recall, "precision": precision, "auc": auc, "inverse_auc": inverse_auc}

#: The paper's concept frequencies (we use them on fewer inputs: see :func:`sanity_test`).
GAMMAS = (0.499, 0.1, 0.01, 0.001)
EPSILON = 1e-3


def sanity_test(metric: Callable[..., float], gammas: Sequence[float] = GAMMAS,
                n: int = 100_000, draws: int = 5, seed: int = 0
                ) -> dict[str, dict[float, float]]:
    """Mean normalised decrease of ``metric`` under missing and extra labels, per ``gamma``.

    Returns:
        ``{"missing": {gamma: decrease}, "extra": {gamma: decrease}}``; a metric passes a test
        when every decrease is at least :data:`EPSILON`.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, dict[float, list[float]]] = {"missing": {}, "extra": {}}
    for g in gammas:
        for _ in range(draws):
            k = max(2, int(round(g * n)))
            c_true = np.zeros(n)
            pos = rng.choice(n, k, replace=False)
            c_true[pos] = 1.0
            a = c_true.copy()
            active = a > 0
            base = metric(a, c_true, g, active)
            miss = c_true.copy()
            miss[rng.choice(pos, k // 2, replace=False)] = 0.0
            extra = c_true.copy()
            neg = np.flatnonzero(c_true == 0)
            extra[rng.choice(neg, min(k, len(neg)), replace=False)] = 1.0
            for name, c in (("missing", miss), ("extra", extra)):
                d = (base - metric(a, c, g, active)) / abs(base) if base else 0.0
                out[name].setdefault(g, []).append(d)
    return {t: {g: float(np.mean(v)) for g, v in d.items()} for t, d in out.items()}


def passes(result: dict[str, dict[float, float]], epsilon: float = EPSILON) -> dict[str, bool]:
    """``{"missing": bool, "extra": bool}`` from :func:`sanity_test`'s result."""
    return {t: all(v >= epsilon for v in d.values()) for t, d in result.items()}
