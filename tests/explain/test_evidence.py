"""Term-association scores against a brute-force per-neuron loop (sklearn, scipy)."""

import numpy as np
import pytest
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score

from dissect.explain.evidence import associate, bh_reject, ranked_evidence


def _data(seed=0, N=60, U=7, M=5):
    rng = np.random.default_rng(seed)
    X = rng.random((N, M)) < np.array([0.5, 0.2, 0.05, 0.9, 0.3])[:M]
    A = rng.normal(size=(N, U))
    A[:, 0] += 2.0 * X[:, 1]  # unit 0 responds to term 1
    A[:, 1] = np.round(A[:, 1], 1)  # ties
    A[:, 2] = 0.0  # constant
    return A, X


def test_association_equals_brute_force():
    A, X = _data()
    res = associate(A, X, min_support=3)
    N = len(A)
    for u in range(A.shape[1]):
        for m in range(X.shape[1]):
            y = X[:, m]
            if y.sum() < 3 or (~y).sum() < 3:
                assert np.isnan(res.auroc[u, m]) and np.isnan(res.p[u, m])
                continue
            assert res.auroc[u, m] == pytest.approx(roc_auc_score(y, A[:, u]), abs=1e-12)
            if u != 2:
                ref = mannwhitneyu(A[y, u], A[~y, u], alternative="greater",
                                   method="asymptotic", use_continuity=False).pvalue
                assert res.p[u, m] == pytest.approx(ref, rel=1e-9, abs=1e-12)
            a1, a0 = A[y, u], A[~y, u]
            pooled = np.sqrt(((len(a1) - 1) * a1.var(ddof=1) + (len(a0) - 1) * a0.var(ddof=1))
                             / (N - 2))
            d = 0.0 if pooled == 0 else (a1.mean() - a0.mean()) / pooled
            assert res.effect[u, m] == pytest.approx(d, abs=1e-9)
            lift = 0.0 if A[:, u].std() == 0 else (a1.mean() - A[:, u].mean()) / A[:, u].std()
            assert res.lift[u, m] == pytest.approx(lift, abs=1e-9)
    assert res.support.tolist() == X.sum(0).tolist()


def test_bh_matches_hand_computed_cut():
    p = np.array([[0.001, 0.04, 0.03, 0.2, np.nan], [0.5, 0.6, np.nan, 0.7, 0.8]])
    # row 0: sorted 0.001, 0.03, 0.04, 0.2 against 0.0125, 0.025, 0.0375, 0.05 -> only 0.001
    assert bh_reject(p, 0.05).tolist() == [[True, False, False, False, False],
                                           [False] * 5]
    # alpha 0.2: thresholds 0.05, 0.1, 0.15, 0.2 -> all four pass
    assert bh_reject(p, 0.2)[0].tolist() == [True, True, True, True, False]


def test_ranked_evidence_finds_the_planted_term():
    A, X = _data(1, N=200)
    terms = ["a=1", "b=1", "c=1", "d=1", "e=1"]
    ev = ranked_evidence(associate(A, X), terms, alpha=0.01)
    assert ev[0] and ev[0][0].term == "b=1" and ev[0][0].auroc > 0.85
    assert ev[2] == []  # a constant unit has no evidence
    assert sum(len(e) for e in ev[3:]) <= 1  # noise units: (almost) nothing passes


def test_ranking_by_lift_lower_bound_prefers_the_better_supported_term():
    """Four clips a little higher than forty: ``lift`` ranks the four first, ``lift_lcb``
    (lift - 1/sqrt(support)) the forty, and the order matches that formula by hand."""

    rng = np.random.default_rng(1)
    n = 200
    X = np.zeros((n, 2), dtype=bool)
    X[:40, 0] = True  # broad: 40 clips
    X[:4, 1] = True  # narrow: 4 of them
    a = rng.normal(size=n) * 0.3
    a[:40] += 2.0
    a[:4] += 0.3
    assoc = associate(a[:, None], X, min_support=3)
    by_lift = ranked_evidence(assoc, ["broad", "narrow"], by="lift")[0]
    by_lcb = ranked_evidence(assoc, ["broad", "narrow"])[0]
    assert [e.term for e in by_lift] == ["narrow", "broad"]
    assert [e.term for e in by_lcb] == ["broad", "narrow"]
    lcb = {e.term: e.lift - 1 / np.sqrt(e.support) for e in by_lcb}
    assert lcb["broad"] > lcb["narrow"]
