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


def test_score_candidates_uses_terms_or_caption_similarity():
    X = np.array([[1], [1], [0], [0], [0], [0]], dtype=bool)
    acts = np.array([5.0, 4.0, 0.1, 0.0, -1.0, 0.2])
    masks = {"val": np.ones(6, bool)}
    t = Candidate("evidence", "x", ["k=v"])
    s = Candidate("and", "text")
    score_candidates([t, s], acts, masks, X, {"k=v": 0}, {"text": -acts}, quantile=0.7)
    assert t.scores["val"]["detection"] == 1.0
    assert s.scores["val"]["detection"] == 0.0
