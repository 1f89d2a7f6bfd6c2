"""Explain-then-score: splits, predictions, scores and the choice of the shown description."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dissect.evaluate.explanations import (
    Candidate,
    assign_splits,
    auroc_se,
    choose,
    score_candidates,
    score_prediction,
    term_prediction,
)


def test_splits_are_deterministic_order_free_and_near_the_fractions():
    ids = [f"clip{i}" for i in range(3000)]
    s = assign_splits(ids, (0.6, 0.2, 0.2), seed=0)
    assert list(assign_splits(ids[::-1], (0.6, 0.2, 0.2), seed=0)) == list(s[::-1])
    frac = {k: float(np.mean(s == k)) for k in ("fit", "val", "test")}
    assert frac["fit"] == pytest.approx(0.6, abs=0.03)
    assert frac["val"] == pytest.approx(0.2, abs=0.03)
    assert (assign_splits(ids, (0.6, 0.2, 0.2), seed=1) != s).any()
    with pytest.raises(ValueError, match="summing to 1"):
        assign_splits(ids, (0.5, 0.2, 0.2))


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
    assert got["n_pos"] == 20 and got["n_neg"] == 20 and got["informative"]  # graded: halves
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

    from dissect.evaluate.explanations import concordance

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
    from dissect.evaluate import explanations
    from dissect.evaluate.explanations import concordance

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


def test_auroc_se_matches_hanley_mcneil_by_hand():
    a, n1, n0 = 0.8, 12, 108
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    want = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    assert auroc_se(a, n1, n0) == pytest.approx(want)


def _cand(kind, val, informative=True, n_pos=12, n_neg=108, note=""):
    c = Candidate(kind, f"{kind} text", note=note)
    c.scores = {"val": {"detection": val, "informative": informative, "n_pos": n_pos,
                        "n_neg": n_neg}}
    return c


def test_choose_prefers_the_template_within_noise_and_says_why():
    tmpl, llm, andd = _cand("evidence", 0.80), _cand("llm", 0.82), _cand("and", 0.95)
    shown, why = choose([tmpl, llm, andd])
    assert shown is andd and "and" in why  # 0.95 beats 0.80 by more than its SE (~0.06)
    shown, _ = choose([tmpl, llm])
    assert shown is tmpl  # +0.02 is within one standard error
    shown, why = choose([tmpl, _cand("llm", 0.99, note="rejected: drops the top term")])
    assert shown is tmpl  # a rejected phrasing is never shown
    assert choose([tmpl], has_evidence=False) == (
        None, "no evidence term passes the Benjamini-Hochberg cut")
    shown, why = choose([_cand("evidence", 0.5, informative=False),
                         _cand("and", 0.5, informative=False)])
    assert shown.kind == "evidence" and "not" in why or "no candidate is informative" in why
    assert choose([tmpl, andd], method="and")[0] is andd
    assert choose([tmpl], min_detection=0.9)[0] is None


def test_an_untestable_template_yields_only_to_a_candidate_above_chance_at_5_percent():
    """No validation clip carries the template's term: an AND summary at 0.576 (1.6 SE above
    chance on 73 + 73 clips) does not replace it, one at 0.65 (3.1 SE) does."""
    untested = _cand("evidence", None, informative=False, n_pos=73, n_neg=73)
    se = auroc_se(0.5, 73, 73)
    assert 1.5 < (0.576 - 0.5) / se < 1.96 < (0.65 - 0.5) / se
    shown, why = choose([untested, _cand("and", 0.576, n_pos=73, n_neg=73)])
    assert shown is untested and "fit evidence" in why
    weak_and = _cand("and", 0.65, n_pos=73, n_neg=73)
    assert choose([untested, weak_and])[0] is weak_and


def test_score_candidates_uses_terms_or_caption_similarity():
    X = np.array([[1], [1], [0], [0], [0], [0]], dtype=bool)
    acts = np.array([5.0, 4.0, 0.1, 0.0, -1.0, 0.2])
    masks = {"val": np.ones(6, bool)}
    t = Candidate("evidence", "x", ["k=v"])
    s = Candidate("and", "text")
    score_candidates([t, s], acts, masks, X, {"k=v": 0}, {"text": -acts}, quantile=0.7)
    assert t.scores["val"]["detection"] == 1.0
    assert s.scores["val"]["detection"] == 0.0


@pytest.mark.parametrize("pairs", [True, False])  # pair-sign arrays / midranks + tau-b
@pytest.mark.parametrize("n", [0, 1, 2, 7, 40, 130])
def test_score_columns_equals_score_prediction_per_column(n, pairs):
    """The layer-at-once scorer gives score_prediction's numbers on each column's rows: graded,
    two-level and constant predictions; sparse activations tied at the quantile; few rows."""
    from dissect.evaluate.explanations import score_columns

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
    from dissect.evaluate.explanations import ScoreJob, score_jobs

    rng = np.random.default_rng(4)
    U = 4
    A = rng.normal(size=(N, U))
    X = rng.random((N, 3)) < 0.4
    sims = rng.normal(size=(N, 2))
    split = {"val": rng.random(N) < 0.5}
    split["test"] = ~split["val"]
    own = [np.zeros(N, bool) for _ in range(U)]
    for u in range(U):
        own[u][rng.choice(N, 8, replace=False)] = True
    cands = [(Candidate("evidence", "t", ["a=1", "b=2"]), 0), (Candidate("and", "s"), 1),
             (Candidate("closed", "l"), 2), (Candidate("llm", "x", None), 3),
             (Candidate("evidence", "t", ["missing", "b=2"]), 3)]
    jobs = [ScoreJob(c, u, own[u]) for c, u in cands]
    score_jobs(jobs, A, split, X, {"a=1": 0, "b=2": 1}, sims, {"s": 0, "l": 1})
    for c, u in cands:
        if c.kind == "llm":
            assert c.scores == {}  # neither terms nor a known text: unscored
            continue
        pred = (term_prediction(X, {"a=1": 0, "b=2": 1}, c.terms) if c.terms is not None
                else sims[:, {"s": 0, "l": 1}[c.text]])
        for name, m in split.items():
            keep = m & ~own[u]
            assert c.scores[name] == score_prediction(pred[keep], A[keep, u])
