"""Explain-then-score: splits, predictions, scores and the choice of the shown description."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dissect.explain.scoring import (
    Candidate,
    average_precision,
    claim_prediction,
    paired_se,
    permutation_p,
    score_prediction,
    term_prediction,
)


def test_term_prediction_and_scores_against_sklearn():
    X = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]], dtype=bool)
    pred = term_prediction(X, {"a=1": 0, "b=1": 1}, ["A=1", "b=1"])
    assert pred.tolist() == [1.0, 1.5, 0.5, 0.0, 1.0]
    rng = np.random.default_rng(0)
    acts = rng.normal(size=40)
    p = acts + rng.normal(size=40)
    got = score_prediction(p, acts, quantile=0.9)
    y = acts >= np.quantile(acts, 0.9)
    assert got["detection_top"] == pytest.approx(roc_auc_score(y, p), abs=1e-4)
    assert got["correlation"] == pytest.approx(np.corrcoef(p, acts)[0, 1], abs=1e-4)
    # graded: the clips above its lowest level
    assert got["n_pos"] == 39 and got["n_neg"] == 1 and got["informative"]
    assert not score_prediction(np.zeros(40), acts)["informative"]
    # a 0/1 prediction: detection is the AUROC of the activation for matching vs the rest
    match = p > 0.5
    got = score_prediction(match.astype(float), acts)
    assert got["detection"] == pytest.approx(roc_auc_score(match, acts), abs=1e-4)
    assert (got["n_pos"], got["n_neg"]) == (int(match.sum()), int((~match).sum()))


def _concordance_by_pairs(p, a):
    """Brute force: every ordered pair the prediction tells apart; activation ties count 1/2."""
    num = den = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if p[i] > p[j]:
                den += 1
                num += 1.0 if a[i] > a[j] else 0.5 if a[i] == a[j] else 0.0
    return num / den


def test_concordance_against_pairs_and_somers_d():
    from scipy.stats import somersd

    from dissect.explain.scoring import concordance

    rng = np.random.default_rng(3)
    for n, levels in ((30, None), (41, 4), (25, 2), (700, None)):
        a = np.round(rng.normal(size=n), 1)  # ties in the activation too
        p = a + rng.normal(size=n) if levels is None else rng.integers(0, levels, n) + 0.0
        got = concordance(p, a)
        if n <= 41:
            assert got == pytest.approx(_concordance_by_pairs(p, a), abs=1e-12)
        assert got == pytest.approx((somersd(p, a).statistic + 1) / 2, abs=1e-9)
    assert concordance(np.ones(5), np.arange(5.0)) is None
    with pytest.raises(ValueError, match="disagree in length"):
        concordance(np.ones(4), np.ones(5))


@pytest.mark.parametrize("dense", [0, 1024])  # Kendall's tau-b / all pairs
def test_concordance_both_paths_equal_the_pair_count(dense, monkeypatch):
    """The all-pairs sign matrix and Kendall's tau-b (above PAIRS_DENSE clips) give the brute
    force's value, with ties in both the prediction and the activation."""
    from dissect.explain import scoring as explanations
    from dissect.explain.scoring import concordance

    monkeypatch.setattr(explanations, "PAIRS_DENSE", dense)
    rng = np.random.default_rng(11)
    for n in (7, 40, 90):
        a = np.round(rng.normal(size=n), 1)
        p = np.round(a + rng.normal(size=n), 0)  # a graded prediction with ties
        assert concordance(p, a) == pytest.approx(_concordance_by_pairs(p, a), abs=1e-12)
        assert concordance(p, np.zeros(n)) == 0.5  # constant activations: all ties
    a = np.round(rng.normal(size=1500), 2)
    p = a + rng.normal(size=1500)
    assert concordance(p, a) == pytest.approx(_concordance_by_pairs_fast(p, a), abs=1e-12)


def _concordance_by_pairs_fast(p, a):
    s = np.sign(p[:, None] - p[None, :])
    return float(((s * np.sign(a[:, None] - a[None, :])).sum() / np.abs(s).sum() + 1) / 2)


def test_claim_prediction_counts_a_claim_once_whatever_term_carries_it():
    X = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=bool)
    idx = {"pitch=e4": 0, "f0=e4": 1, "brightness=bright": 2}
    pred = claim_prediction(X, idx, [["f0=E4", "pitch=E4"], ["brightness=bright"]])
    assert pred.tolist() == [1.0, 1.0, 1.5, 0.5, 0.0]


def test_average_precision_against_sklearn_with_ties():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(3)
    for _ in range(20):
        a = np.round(rng.normal(size=60), 1)  # ties
        y = rng.random(60) < 0.2
        if not y.any():
            continue
        assert average_precision(a, y) == pytest.approx(average_precision_score(y, a))


def test_permutation_p_against_a_brute_force_loop():
    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    P = np.stack([(a > 1.0).astype(float), (rng.random(40) < 0.3).astype(float)], 1)
    got = permutation_p(P, a, n_perm=300, seed=7)
    perms = np.argsort(np.random.default_rng((7, 40)).random((300, 40)), axis=1)
    for c in range(2):
        r = np.corrcoef(P[:, c], a)[0, 1]
        hits = sum(np.corrcoef(P[:, c], a[p])[0, 1] >= r - 1e-12 for p in perms)
        assert got[c] == pytest.approx((1 + hits) / 301)
    assert got[0] < 0.01 < got[1]  # the true concept is confirmed, the random one is not
    assert np.isnan(permutation_p(np.zeros((40, 1)), a)[0])


def test_paired_se_against_a_brute_force_bootstrap():
    """The SE of the difference of two candidates' correlations on the same clips, by the
    delta method, against a bootstrap of the clips (and far below the sum of the two SEs
    when the candidates overlap)."""
    rng = np.random.default_rng(1)
    m = 400
    a = rng.gamma(2.0, size=m)  # skewed activations
    c1 = (a + rng.normal(scale=1.5, size=m) > 3).astype(float)
    c2 = c1.copy()
    flip = rng.choice(m, 40, replace=False)
    c2[flip] = 1 - c2[flip]
    P = np.stack([c1, c2], 1)
    se = paired_se(P, a)[0, 1]
    boot = []
    for _ in range(2000):
        i = rng.integers(0, m, m)
        boot.append(np.corrcoef(c1[i], a[i])[0, 1] - np.corrcoef(c2[i], a[i])[0, 1])
    assert se == pytest.approx(np.std(boot), rel=0.1)
    own = [np.std([np.corrcoef(c[i], a[i])[0, 1] for i in
                   (rng.integers(0, m, m) for _ in range(500))]) for c in (c1, c2)]
    assert se < 0.7 * np.hypot(*own)


@pytest.mark.parametrize("pairs", [True, False])  # pair-sign arrays / midranks + tau-b
@pytest.mark.parametrize("n", [0, 1, 2, 7, 40, 130])
def test_score_columns_equals_score_prediction_per_column(n, pairs):
    """The layer-at-once scorer gives score_prediction's numbers on each column's rows: graded,
    two-level and constant predictions; sparse activations tied at the quantile; few rows."""
    from dissect.explain.scoring import score_columns

    rng = np.random.default_rng(n)
    B = 60
    A = np.round(rng.normal(size=(n, B)), 1)
    A[:, :10] = np.where(rng.random((n, 10)) < 0.8, 0.0, A[:, :10])  # mostly 0: ties at q
    A[:, 10:13] = 1.0  # constant activation
    P = np.round(rng.normal(size=(n, B)) + A, 1)  # graded, with ties
    P[:, 20:35] = (rng.random((n, 15)) < 0.3).astype(float)  # one term: 0/1
    P[:, 35:40] = 0.0  # no clip carries the terms
    P[:, 40:45] = rng.integers(0, 3, (n, 5)) * 0.5  # two terms: 0 / 0.5 / 1
    W = rng.random((n, B)) < 0.8
    W[:, 45:48] = False  # every row left out
    if n:
        W[:, 48] = False
        W[0, 48] = True  # one row
    got = score_columns(P, A, W, quantile=0.9, pairs=pairs)
    for b in range(B):
        want = score_prediction(P[W[:, b], b], A[W[:, b], b], quantile=0.9)
        assert got[b] == want, (b, got[b], want)


@pytest.mark.parametrize("N", [50, 700])  # 700: splits above LAYER_PAIRS_MAX, per column
def test_score_jobs_removes_each_neurons_own_clips(N):
    from dissect.explain.scoring import ScoreJob, score_jobs

    rng = np.random.default_rng(4)
    U = 4
    A = rng.normal(size=(N, U))
    P = np.stack([(rng.random(N) < 0.4).astype(float), rng.normal(size=N),
                  np.zeros(N)], 1)
    split = {"val": rng.random(N) < 0.5}
    split["test"] = ~split["val"]
    own = [np.zeros(N, bool) for _ in range(U)]
    for u in range(U):
        own[u][rng.choice(N, 8, replace=False)] = True
    cands = [(Candidate("evidence", "t"), 0, 0), (Candidate("and", "s"), 1, 1),
             (Candidate("closed", "l"), 2, 2), (Candidate("llm", "x"), 3, 0)]
    jobs = [ScoreJob(c, u, own[u], j) for c, u, j in cands]
    score_jobs(jobs, A, split, P, "_caption")
    for c, u, j in cands:
        for name, m in split.items():
            keep = m & ~own[u]
            assert c.scores[name + "_caption"] == score_prediction(P[keep, j], A[keep, u])
