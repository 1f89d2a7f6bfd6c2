"""Scoring candidate descriptions on held-out clips: one rule for every candidate.

A candidate's *prediction* says, for every clip, how strongly the neuron should fire. Every
candidate (the evidence template, an LLM phrasing, AND's summary, the closed-set label) gets a
prediction under each of two rules, the same rule for all of them:

* ``terms`` (the rule the shown description is chosen by): the claims its text names
  (:func:`dissect.explain.matcher.claims`): claim ``k`` weighs ``0.5**k`` and a clip matches a
  claim when it carries any of its terms (:func:`claim_prediction`);
* ``caption``: the MiniLM cosine between the candidate's text and the clip's caption (reported
  beside it: a text the captions' terms cannot express, such as a closed-set label outside
  the probe set's vocabulary, is scored here only).

Scores of one prediction on one split (:func:`score_columns`):

* ``correlation``: Pearson correlation of prediction and activation. It passes both of
  Neuron_Eval's sanity tests (missing labels and extra labels, :mod:`dissect.explain.metrics`):
  it is the selection metric, and its one-sided permutation p-value (:func:`permutation_p`)
  decides whether a candidate is confirmed;
* ``auprc``: average precision of the activation ranking the clips the candidate predicts
  (prediction above its lowest level); passes both tests too, reported;
* ``detection``: the probability that, of two clips the candidate tells apart, the one it
  predicts higher has the higher activation (ties 1/2), the AUROC for a two-level prediction
  (:func:`concordance`). It fails the missing-labels test (measured in
  ``docs/descriptions.md``), so it is reported, never used to choose;
* ``detection_top``: AUROC of the prediction against the activation binarised at its top
  ``quantile`` (kept for comparison with earlier runs);
* ``n_pos`` / ``n_neg``: the clips the candidate predicts (above its lowest level) and the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dissect.evaluation.detection import detection_auroc, midranks


@dataclass
class Candidate:
    """One candidate description of a neuron.

    Attributes:
        kind: ``evidence`` | ``llm`` | ``and`` | ``closed``.
        text: what would be shown.
        claims: the terms its text names, by claim (:func:`dissect.explain.matcher.claims`);
            empty: it names no term of the probe set's captions.
        note: why it is (not) usable, e.g. the LLM check's verdict.
        scores: split -> scores; ``val`` / ``test`` under the terms rule, ``val_caption`` /
            ``test_caption`` under the caption-similarity rule.
    """

    kind: str
    text: str
    claims: list[list[str]] = field(default_factory=list)
    note: str = ""
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def terms(self) -> list[str]:
        """Every term the text names, in claim order."""
        return [t for c in self.claims for t in c]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "claims": self.claims,
                "terms": self.terms, "note": self.note, "scores": self.scores}


def claim_prediction(X: np.ndarray, term_index: Mapping[str, int],
                     claims: Sequence[Sequence[str]]) -> np.ndarray:
    """``[N]`` prediction of a candidate: ``sum_k 0.5**k [clip carries a term of claim k]``.

    Args:
        X: bool clip x term matrix ``[N, M]``; ``term_index``: lowercased term -> column.
        claims: the candidate's claims (lists of terms), strongest first.
    """
    pred = np.zeros(X.shape[0])
    for k, claim in enumerate(claims):
        cols = [term_index[t.lower()] for t in claim if t.lower() in term_index]
        if cols:
            pred += X[:, cols].any(axis=1) * 0.5**k
    return pred


def term_prediction(X: np.ndarray, term_index: Mapping[str, int], terms: Sequence[str]
                    ) -> np.ndarray:
    """``[N]`` prediction of a list of terms, each its own claim (weights 1, 1/2, 1/4, ...)."""
    return claim_prediction(X, term_index, [[t] for t in terms])


def concordance(pred: np.ndarray, acts: np.ndarray) -> float | None:
    """``P(act_i > act_j | pred_i > pred_j)`` over the clip pairs the prediction orders, with
    activation ties counted 1/2 (``(Somers' D(acts | pred) + 1) / 2``); None when the
    prediction is constant. For a two-valued ``pred`` it is the AUROC of ``acts`` separating
    the higher group from the lower (Mann-Whitney with midranks).

    A graded prediction on up to :data:`PAIRS_DENSE` clips sums the sign products of all
    pairs; on more, ``scipy.stats.kendalltau`` (tau-b, O(N log N) merge-sort counts) gives
    ``C - D = tau_b sqrt((n0 - t_p)(n0 - t_a))`` with ``n0 = N (N - 1) / 2`` and ``t_p`` /
    ``t_a`` the pairs tied in ``pred`` / ``acts``; the pairs the prediction orders are
    ``n0 - t_p``.
    """
    p = np.asarray(pred, dtype=np.float64).ravel()
    a = np.asarray(acts, dtype=np.float64).ravel()
    if p.shape != a.shape:
        raise ValueError(f"prediction and activations disagree in length: {p.shape} vs "
                         f"{a.shape}")
    levels = np.unique(p)
    if len(levels) < 2:
        return None
    if len(levels) == 2:
        hi = p == levels[1]
        n1, n0 = int(hi.sum()), int((~hi).sum())
        r = midranks(a)
        return float((r[hi].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    n = p.size
    if n <= PAIRS_DENSE:
        dp = np.sign(p[:, None] - p[None, :])
        da = np.sign(a[:, None] - a[None, :])
        return float(((dp * da).sum() / np.abs(dp).sum() + 1) / 2)
    from scipy.stats import kendalltau

    pairs = n * (n - 1) / 2

    def tied(x):
        c = np.unique(x, return_counts=True)[1].astype(np.float64)
        return float((c * (c - 1) / 2).sum())

    t_p, t_a = tied(p), tied(a)
    if t_a == pairs:  # constant activations: every ordered pair is a tie, 1/2
        return 0.5
    tau = kendalltau(p, a, variant="b").statistic
    c_minus_d = float(tau) * np.sqrt((pairs - t_p) * (pairs - t_a))
    return float((c_minus_d / (pairs - t_p) + 1) / 2)


#: Up to this many clips, :func:`concordance` of a graded prediction counts all pairs at once
#: (an ``[N, N]`` sign matrix); above, it uses Kendall's tau-b (O(N log N)).
PAIRS_DENSE = 256


def average_precision(acts: np.ndarray, y: np.ndarray) -> float | None:
    """Average precision of ``acts [n]`` ranking the positives ``y [n]`` (bool): the step
    integral of precision over recall at every distinct activation threshold (tied clips enter
    together), as ``sklearn.metrics.average_precision_score``; None without a positive."""
    return auprc_columns(np.asarray(acts, dtype=np.float64)[:, None],
                         np.asarray(y, dtype=bool)[:, None],
                         np.ones((len(y), 1), dtype=bool))[0]


def auprc_columns(A: np.ndarray, Y: np.ndarray, W: np.ndarray) -> list[float | None]:
    """:func:`average_precision` of every column: activations ``A[:, b]`` ranking the positives
    ``Y[:, b]`` among the rows ``W[:, b]`` (all ``[n, B]``), vectorised over columns."""
    A = np.asarray(A, dtype=np.float64)
    Y = np.asarray(Y, dtype=bool) & W
    n, B = A.shape
    if n == 0:
        return [None] * B
    key = np.where(W, -A, np.inf)  # descending activations, other rows last
    order = np.argsort(key, axis=0, kind="stable")
    S = np.take_along_axis(key, order, 0)
    Ys = np.take_along_axis(Y, order, 0).astype(np.float64)
    tp = np.cumsum(Ys, axis=0)
    cnt = np.arange(1, n + 1, dtype=np.float64)[:, None]
    end = np.ones((n, B), dtype=bool)  # last row of each tie group
    end[:-1] = S[1:] != S[:-1]
    end &= np.isfinite(S)
    n_pos = Y.sum(0)
    prev = np.zeros((n, B))  # tp at the previous group end
    idx = np.where(end, np.arange(n)[:, None], -1)
    last_end = np.maximum.accumulate(idx, axis=0)
    shifted = np.vstack([np.full((1, B), -1), last_end[:-1]])
    has = shifted >= 0
    prev[has] = np.take_along_axis(tp, np.maximum(shifted, 0), 0)[has]
    gain = np.where(end, (tp - prev) * (tp / cnt), 0.0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = gain / n_pos
    return [None if n_pos[b] == 0 else float(ap[b]) for b in range(B)]


def score_prediction(pred: np.ndarray, acts: np.ndarray, quantile: float = 0.9
                     ) -> dict[str, float | None]:
    """``{"correlation", "auprc", "detection", "detection_top", "informative", "n_pos",
    "n_neg"}`` of one prediction on one split (see the module docstring). ``informative`` is
    False when the prediction is the same for every clip of the split (no clip carries the
    candidate's terms), so its score says nothing; ``n_pos``: the clips predicted above the
    prediction's lowest level on the split."""
    pred = np.asarray(pred, dtype=np.float64)
    acts = np.asarray(acts, dtype=np.float64)
    det = concordance(pred, acts) if len(acts) else None
    top = detection_auroc(pred, acts, quantile) if len(acts) else None
    corr = None
    if len(acts) > 2 and np.ptp(pred) > 0 and np.ptp(acts) > 0:
        corr = float(np.corrcoef(pred, acts)[0, 1])
    y = pred > pred.min() if len(pred) else np.zeros(0, bool)
    n_pos = int(y.sum())
    ap = average_precision(acts, y) if n_pos else None
    return {"correlation": _r4(corr), "auprc": _r4(ap),
            "detection": _r4(det), "detection_top": _r4(top),
            "informative": bool(len(pred) and np.ptp(pred) > 0),
            "n_pos": n_pos, "n_neg": int(len(pred)) - n_pos}


@dataclass
class ScoreJob:
    """One candidate of one neuron to score: the neuron's column of the layer's activations,
    the candidate's column of the prediction matrix, and the clips left out of its splits
    (``own [N]``: the exemplars its AND summary was built from)."""

    candidate: Candidate
    unit: int
    own: np.ndarray
    col: int


#: Elements of one chunk's ``[n, n, units]`` pair-sign arrays (int8: 16 MB).
PAIR_BUDGET = 2**24
#: Splits of up to this many clips are scored with the pair-sign arrays, all columns at once
#: (``n^2`` work per column, no Python per column); larger ones by midranks (two-level
#: predictions, all columns at once) or Kendall's tau-b (graded, per column), O(n log n).
LAYER_PAIRS_MAX = 256


def score_jobs(jobs: Sequence[ScoreJob], A: np.ndarray, split_masks: Mapping[str, np.ndarray],
               P: np.ndarray, suffix: str = "", quantile: float = 0.9) -> None:
    """:func:`score_prediction` for many (neuron, candidate) pairs of a layer at once (in place:
    ``job.candidate.scores[split + suffix]``), with the numbers the per-neuron function gives.

    Args:
        jobs: the candidates to score.
        A: the layer's activations ``[N, U]`` (``job.unit`` is a column).
        split_masks: split name -> bool ``[N]`` (the split's clips; ``job.own`` is removed).
        P: ``[N, J]`` predictions (``job.col`` is a column): one rule's.
        suffix: appended to the split name (``""``: terms rule, ``"_caption"``).
    """
    if not jobs:
        return
    for name, base in split_masks.items():
        rows = np.flatnonzero(base)
        n = len(rows)
        # pair arrays: n^2 per column; midranks: [n, chunk] float64 arrays of 16 MB
        chunk = max(1, PAIR_BUDGET // max(n * n, 1) if n <= LAYER_PAIRS_MAX else 2**21 // n)
        for lo in range(0, len(jobs), chunk):
            part = jobs[lo:lo + chunk]
            Pp = P[np.ix_(rows, [job.col for job in part])]
            acts = A[np.ix_(rows, [job.unit for job in part])]
            W = np.stack([~job.own[rows] for job in part], 1)
            for job, sc in zip(part, score_columns(Pp, acts, W, quantile), strict=True):
                job.candidate.scores[name + suffix] = sc


def permutation_p(P: np.ndarray, a: np.ndarray, n_perm: int = 1000, seed: int = 0
                  ) -> np.ndarray:
    """One-sided permutation p-values of the correlation of each prediction ``P[:, c]`` with
    the activation ``a [m]``: ``(1 + #{perm: r_perm >= r}) / (1 + n_perm)``, the clips'
    activations shuffled ``n_perm`` times (the same shuffles for every column). The null
    distribution is that of the real group sizes: a prediction naming 3 of 120 clips is judged
    against 3 random clips. ``[c]``; NaN for a constant column.

    The permutations are drawn from ``numpy.random.default_rng((seed, m))``: the same clips and
    seed give the same p-values.
    """
    P = np.asarray(P, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    m, c = P.shape
    out = np.full(c, np.nan)
    sp, sa = P.std(0), a.std()
    ok = sp > 0
    if m < 3 or sa == 0 or not ok.any():
        return out
    Z = (P[:, ok] - P[:, ok].mean(0)) / sp[ok]
    za = (a - a.mean()) / sa
    r = za @ Z / m
    rng = np.random.default_rng((int(seed), m))
    perms = np.argsort(rng.random((n_perm, m)), axis=1)
    R = za[perms] @ Z / m  # [n_perm, c]
    hits = (R >= r[None, :] - 1e-12).sum(0)
    out[ok] = (1 + hits) / (1 + n_perm)
    return out


def correlation_influence(P: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Influence of each clip on the Pearson correlation of each column of ``P [m, c]`` with
    ``a [m]``: ``z_p z_a - r (z_p^2 + z_a^2) / 2`` (standardised with the population SD), the
    terms whose mean square over ``m`` is the delta-method variance of ``r`` (no normality
    assumed). ``[m, c]``; zero columns where ``P`` or ``a`` is constant."""
    P = np.asarray(P, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    m, c = P.shape
    sp, sa = P.std(0), a.std()
    if m == 0 or sa == 0:
        return np.zeros((m, c))
    ok = sp > 0
    Z = np.zeros((m, c))
    Z[:, ok] = (P[:, ok] - P[:, ok].mean(0)) / sp[ok]
    za = ((a - a.mean()) / sa)[:, None]
    r = (Z * za).mean(0)
    IF = Z * za - r / 2 * (Z**2 + za**2)
    IF[:, ~ok] = 0.0
    return IF


def paired_se(P: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``[c, c]`` standard errors of the paired differences ``r_i - r_j`` of the correlations
    of predictions ``P[:, i]`` and ``P[:, j]`` with the same activations ``a`` on the same
    clips: ``sd(IF_i - IF_j) / sqrt(m)`` from :func:`correlation_influence` (the
    nonparametric delta method, i.e. the infinitesimal jackknife; it matches a bootstrap of
    the clips, tested). The two candidates are scored on the same clips, so their scores are
    correlated: the SE of the difference is what a one-SE-better rule needs, not either
    score's own SE."""
    IF = correlation_influence(P, a)
    m = IF.shape[0]
    if m < 2:
        return np.full((IF.shape[1],) * 2, np.inf)
    D = IF[:, :, None] - IF[:, None, :]
    return np.sqrt(D.var(0) / m)


def _masked_midranks(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """1-based midranks of each column of ``A [n, B]`` among its rows ``W`` (ties: the mean
    rank, as :func:`~dissect.evaluation.detection.midranks`); other rows get 0."""
    n, B = A.shape
    key = np.where(W, A, np.inf)
    order = np.argsort(key, axis=0, kind="stable")
    S = np.take_along_axis(key, order, 0)
    idx = np.arange(n)[:, None]
    new = np.ones((n, B), dtype=bool)
    new[1:] = S[1:] != S[:-1]
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=0)
    last = np.ones((n, B), dtype=bool)
    last[:-1] = S[1:] != S[:-1]
    end = np.minimum.accumulate(np.where(last, idx, n - 1)[::-1], axis=0)[::-1]
    R = np.empty((n, B))
    np.put_along_axis(R, order, (start + end) / 2.0 + 1.0, 0)
    return np.where(W, R, 0.0)


def _r4(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def score_columns(P: np.ndarray, A: np.ndarray, W: np.ndarray, quantile: float = 0.9,
                  pairs: bool | None = None) -> list[dict[str, Any]]:
    """:func:`score_prediction` of every column: prediction ``P[:, b]`` against activation
    ``A[:, b]`` on the rows ``W[:, b]`` (all ``[n, B]``), vectorised over columns.

    ``pairs`` (default: ``n <= LAYER_PAIRS_MAX``): the pair statistics (``detection``,
    ``detection_top``) count the signed pairs of ``[n, n, B]`` sign arrays, exactly the
    brute-force definitions. Otherwise a column whose prediction has at most two levels (a
    term candidate: the clip carries the term or not) gets them from each column's midranks
    (Mann-Whitney; the same sums of half-integers as :func:`score_prediction`, O(n log n)), and
    a graded column (a caption-similarity candidate) is scored by :func:`score_prediction`
    itself (Kendall's tau-b). The quantile threshold of ``detection_top`` is numpy's linear
    quantile over each column's rows, bit for bit, with
    :func:`~dissect.evaluation.agreement.binarize_top_quantile`'s tie rule.
    """
    P = np.asarray(P, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    W = np.asarray(W, dtype=bool)
    n, B = P.shape
    if n == 0:
        return [{"correlation": None, "auprc": None, "detection": None,
                 "detection_top": None, "informative": False, "n_pos": 0, "n_neg": 0}
                for _ in range(B)]
    m = W.sum(0)  # [B] rows per column
    cols = np.arange(B)
    # levels of the prediction on each column's rows (sorted, rows not used at +inf)
    Ps = np.sort(np.where(W, P, np.inf), axis=0)
    r = np.arange(1, n)[:, None]
    steps = ((Ps[1:] != Ps[:-1]) & (r < m[None, :])).sum(0) if n > 1 else np.zeros(B, int)
    levels = np.where(m > 0, 1 + steps, 0)
    top_level = Ps[np.maximum(m - 1, 0), cols]
    # numpy's linear quantile of each column's activations
    As = np.sort(np.where(W, A, np.inf), axis=0)
    pos = (np.maximum(m, 1) - 1) * quantile
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(m - 1, 0))
    t = pos - lo
    x, y = As[lo, cols], As[hi, cols]
    with np.errstate(invalid="ignore"):  # inf - inf in columns without rows (unused)
        d = y - x
        qv = np.where(t >= 0.5, y - d * (1 - t), x + d * t)
    ge, gt = W & (A >= qv), W & (A > qv)
    mf = np.maximum(m, 1).astype(np.float64)
    use_gt = (ge.sum(0) / mf > (1.0 - quantile) + 1.0 / mf) & gt.any(0)
    Y = np.where(use_gt[None, :], gt, ge)
    n1 = Y.sum(0)
    n0 = m - n1
    pairs = n <= LAYER_PAIRS_MAX if pairs is None else pairs
    hi = W & (P == top_level[None, :])  # the higher level's rows (two-level columns)
    n_hi = hi.sum(0)
    if pairs:
        Wp = (W[:, None, :] & W[None, :, :])
        Sp = np.sign(P[:, None, :] - P[None, :, :]).astype(np.int8) * Wp
        Sa = np.sign(A[:, None, :] - A[None, :, :]).astype(np.int8)
        num = (Sp.astype(np.int32) * Sa).sum((0, 1))
        den = np.abs(Sp).sum((0, 1), dtype=np.int64)
        YN = Y[:, None, :] & (W & ~Y)[None, :, :]
        top_num = (Sp * YN).sum((0, 1), dtype=np.int64)  # sum of sign(p_i - p_j), i pos, j neg
    else:
        R = _masked_midranks(A, W)  # activations' ranks among each column's rows
        rank_sum = np.where(hi, R, 0.0).sum(0)
        n_lo = m - n_hi
        # the prediction's midranks on two levels: lo (n_lo + 1) / 2, hi n_lo + (n_hi + 1) / 2
        a_hi = (Y & hi).sum(0)
        y_rank_sum = (a_hi * (n_lo + (n_hi + 1) / 2.0) + (n1 - a_hi) * ((n_lo + 1) / 2.0))
        y_rank_sum = np.where(levels == 1, n1 * ((m + 1) / 2.0), y_rank_sum)
    # Pearson on each column's rows
    Pm = np.where(W, P, 0.0)
    Am = np.where(W, A, 0.0)
    mp = Pm.sum(0) / mf
    ma = Am.sum(0) / mf
    dp = np.where(W, P - mp, 0.0)
    da = np.where(W, A - ma, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (dp * da).sum(0) / np.sqrt((dp * dp).sum(0) * (da * da).sum(0))
    a_levels = As[np.maximum(m - 1, 0), cols] > As[0]
    low_level = Ps[0]  # each column's lowest prediction on its rows
    pos = W & (P > low_level[None, :])  # the clips the candidate predicts
    n_pred = pos.sum(0)
    ap = auprc_columns(A, pos, W)
    out = []
    for b in range(B):
        mb = int(m[b])
        if not pairs and levels[b] > 2:  # graded, many rows: Kendall's tau-b per column
            sc = score_prediction(P[W[:, b], b], A[W[:, b], b], quantile)
            out.append(sc)
            continue
        det = top = cr = None
        if pairs and mb and levels[b] >= 2:
            det = (num[b] / den[b] + 1) / 2
        elif mb and levels[b] == 2:
            h, lo_ = int(n_hi[b]), mb - int(n_hi[b])
            det = (rank_sum[b] - h * (h + 1) / 2) / (h * lo_)
        if mb and 0 < n1[b] < mb:
            if pairs:
                top = (top_num[b] + n1[b] * n0[b]) / 2 / (n1[b] * n0[b])
            else:
                k1, k0 = int(n1[b]), int(n0[b])
                top = (y_rank_sum[b] - k1 * (k1 + 1) / 2) / (k1 * k0)
        if mb > 2 and levels[b] >= 2 and a_levels[b]:
            cr = float(np.clip(corr[b], -1.0, 1.0))
        n_pos = int(n_pred[b]) if mb else 0
        out.append({"correlation": _r4(cr), "auprc": _r4(ap[b]) if n_pos else None,
                    "detection": _r4(det), "detection_top": _r4(top),
                    "informative": bool(mb and levels[b] >= 2), "n_pos": n_pos,
                    "n_neg": mb - n_pos})
    return out
