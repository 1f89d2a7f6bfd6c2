"""Explain, then score: every candidate description is scored on clips it was not built from,
the best on a validation split is shown, and its score on a separate test split is reported.

Clips are split by a hash of their id (:func:`assign_splits`): ``fit`` (evidence terms are
scored for association on these only), ``val`` (choose the shown description) and ``test``
(report its score). A neuron's own exemplar clips that a caption summary was written from
(AND's top-k / bottom-k) are also left out of its ``val`` and ``test`` sets, so no candidate is
scored on the clips it was built from.

A candidate predicts, for every clip, how strongly the neuron should fire:

* term candidates (the evidence template, an accepted LLM phrasing): the weighted count of the
  candidate's terms the clip carries (first term 1, second 0.5);
* text candidates (AND's summary, the closed-set label): the MiniLM cosine between the text and
  the clip's caption (the detection score of :mod:`dissect.evaluate.detection`).

Scores (as in OpenAI's automated-interpretability and Delphi), on one split:

* ``detection``: the probability that, of two clips the candidate tells apart, the one it
  predicts higher has the higher activation (activation ties count 1/2), i.e.
  ``(Somers' D(activation | prediction) + 1) / 2`` (:func:`concordance`). For a term candidate
  (a 0/1 prediction: the clip carries the term or not) this is the AUROC of the activation
  separating the clips that match the description from the rest: "does the neuron fire more
  on clips the description says it should". 0.5 is chance, 1 perfect.
* ``detection_top``: the earlier definition, the AUROC of the prediction against the
  activation binarised at its top ``quantile`` (0.9: the top 10 % of the split are
  positives). Kept for comparison; it depends on the concept's base rate: a description of a
  concept that 5 % of the clips carry cannot reach 1 (half of the top 10 % are other clips),
  one that 20 % carry is penalised for the matching clips ranked 13th to 24th of 120, so even
  the true label of a perfect one-concept neuron scores about 0.75 on a 10-value label.
* ``correlation``: Pearson correlation of prediction and activation (a simple simulation
  score).

A neuron with no evidence term above chance (after the Benjamini-Hochberg cut) is "no clear
concept", whatever its candidates score.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dissect.describe.explain import NO_CLEAR_CONCEPT
from dissect.evaluate.detection import detection_auroc, midranks

SPLITS = ("fit", "val", "test")


def assign_splits(clip_ids: Sequence[str], fractions: Sequence[float] = (0.6, 0.2, 0.2),
                  seed: int = 0) -> np.ndarray:
    """``[N]`` array of ``"fit"`` / ``"val"`` / ``"test"`` from ``sha256(f"{seed}:split:{id}")``
    (deterministic, independent of clip order)."""
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, "
                         f"got {list(fractions)}")
    edges = np.cumsum(f)
    out = np.empty(len(clip_ids), dtype=object)
    for i, cid in enumerate(clip_ids):
        h = hashlib.sha256(f"{seed}:split:{cid}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2.0**64
        out[i] = SPLITS[int(np.searchsorted(edges, u, side="right").clip(0, 2))]
    return out


@dataclass
class Candidate:
    """One candidate description of a neuron.

    Attributes:
        kind: ``evidence`` | ``llm`` | ``and`` | ``closed``.
        text: what would be shown.
        terms: for term candidates, the terms it claims (None: a text candidate).
        note: why it is (not) usable, e.g. the LLM check's verdict.
    """

    kind: str
    text: str
    terms: list[str] | None = None
    note: str = ""
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "terms": self.terms, "note": self.note,
                "scores": self.scores}


def term_prediction(X: np.ndarray, term_index: Mapping[str, int], terms: Sequence[str]
                    ) -> np.ndarray:
    """``[N]`` weighted count of ``terms`` per clip (weights 1, 1/2, 1/4, ...)."""
    pred = np.zeros(X.shape[0])
    for w, t in enumerate(terms):
        j = term_index.get(t.lower())
        if j is not None:
            pred += X[:, j] * 0.5**w
    return pred


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


def score_prediction(pred: np.ndarray, acts: np.ndarray, quantile: float = 0.9
                     ) -> dict[str, float | None]:
    """``{"detection", "detection_top", "correlation", "informative", "n_pos", "n_neg"}`` on
    one split (see the module docstring). ``informative`` is False when the prediction is the
    same for every clip of the split (no clip carries the candidate's terms), so its score
    says nothing. ``n_pos`` / ``n_neg``: the two groups ``detection`` compares, for its
    standard error (a two-valued prediction: the clips above / below; a graded one: half the
    clips each)."""
    pred = np.asarray(pred, dtype=np.float64)
    acts = np.asarray(acts, dtype=np.float64)
    det = concordance(pred, acts) if len(acts) else None
    top = detection_auroc(pred, acts, quantile) if len(acts) else None
    corr = None
    if len(acts) > 2 and np.ptp(pred) > 0 and np.ptp(acts) > 0:
        corr = float(np.corrcoef(pred, acts)[0, 1])
    levels = np.unique(pred)
    if len(levels) == 2:
        n_pos = int((pred == levels[1]).sum())
    else:
        n_pos = len(pred) // 2
    return {"detection": None if det is None else round(det, 4),
            "detection_top": None if top is None else round(top, 4),
            "correlation": None if corr is None else round(corr, 4),
            "informative": bool(len(pred) and np.ptp(pred) > 0),
            "n_pos": n_pos, "n_neg": int(len(pred)) - n_pos}


def auroc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC (Hanley & McNeil, 1982)."""
    if n_pos < 1 or n_neg < 1:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


#: Standard errors above chance a candidate needs to displace an evidence template that the
#: validation clips cannot test (two-sided 5 %). With one, an AND summary at detection 0.55 on
#: 146 validation clips displaced "Tambourine", a term with fit AUROC 1.0 over 10 clips.
UNTESTED_Z = 1.96


def choose(candidates: Sequence[Candidate], method: str = "evidence",
           has_evidence: bool = True, min_detection: float = 0.0
           ) -> tuple[Candidate | None, str]:
    """The shown candidate and why.

    ``method=evidence``: the best validation detection AUROC, where a later candidate
    displaces the current best only when it is better by more than the current best's
    standard error (:func:`auroc_se` with the score's ``n_pos`` / ``n_neg``; the candidates
    come in order evidence template, LLM phrasing, AND summary, closed-set label: with a few
    dozen validation clips, AUROC differences below one standard error are noise, and the
    evidence template is the claim the association statistics on the fit clips support);
    ``method=and``: AND's summary
    whatever it scores. A neuron without evidence, or whose best candidate does not reach
    ``min_detection`` on validation, is "no clear concept" (returns ``(None, reason)``).
    Candidates whose prediction is constant on the validation clips (none of them carries the
    candidate's terms) are not compared: when no candidate is informative there, the evidence
    template (supported by the fit clips' statistics) is shown, and the row says so; when the
    template alone is untestable there, another candidate replaces it only by beating chance
    by :data:`UNTESTED_Z` standard errors.
    """
    if method == "and":
        for c in candidates:
            if c.kind == "and":
                return c, "describe.method=and"
        return None, "no AND summary"
    if not has_evidence:
        return None, "no evidence term passes the Benjamini-Hochberg cut"
    usable = [c for c in candidates if c.text and c.text != NO_CLEAR_CONCEPT
              and not c.note.startswith("rejected")]
    informative = [c for c in usable if c.scores.get("val", {}).get("informative")]
    if not informative:
        for c in usable:
            if c.kind == "evidence":
                return c, "no candidate is informative on the validation clips; fit evidence"
        return None, "no candidate can be scored on the validation clips"
    best, best_v, best_se = None, -1.0, 0.0
    template = next((c for c in usable if c.kind == "evidence"), None)
    if template is not None and not template.scores.get("val", {}).get("informative"):
        # the template predicts nothing on these validation clips (none carries its terms):
        # its claim passed the BH cut on the fit clips and cannot be tested here, so another
        # candidate displaces it only by beating chance at the 5 % level (UNTESTED_Z standard
        # errors), not by the one standard error that separates two measured candidates
        val = next((c.scores.get("val", {}) for c in informative), {})
        best, best_v = template, 0.5
        best_se = UNTESTED_Z * auroc_se(0.5, val.get("n_pos", 0), val.get("n_neg", 0))
    for c in informative:
        val = c.scores.get("val", {})
        v = val.get("detection")
        if v is not None and v > best_v + best_se:
            best, best_v = c, v
            best_se = auroc_se(v, val.get("n_pos", 0), val.get("n_neg", 0))
    if best is None:
        return None, "no candidate can be scored on the validation clips"
    if best_v < min_detection:
        return None, f"best validation detection {best_v:.2f} < {min_detection}"
    if best is template and not template.scores.get("val", {}).get("informative"):
        return best, "no other candidate beats chance on the validation clips; fit evidence"
    return best, f"best validation detection ({best.kind}, {best_v:.2f})"


def score_candidates(candidates: Sequence[Candidate], acts: np.ndarray, masks: Mapping[str,
                     np.ndarray], X: np.ndarray, term_index: Mapping[str, int],
                     text_pred: Mapping[str, np.ndarray], quantile: float = 0.9) -> None:
    """Fill ``candidate.scores[split]`` for ``val`` and ``test`` (in place), for one neuron.

    Args:
        acts: the neuron's activation on every clip ``[N]``.
        masks: split name -> bool ``[N]`` (the neuron's val / test clips).
        text_pred: candidate text -> its ``[N]`` caption-similarity prediction.
    """
    texts = list(text_pred)
    sims = (np.stack([text_pred[t] for t in texts], 1) if texts
            else np.zeros((len(acts), 0)))
    col = {t: j for j, t in enumerate(texts)}
    own = np.zeros(len(acts), dtype=bool)  # the masks are this neuron's already
    jobs = [ScoreJob(c, 0, own) for c in candidates]
    score_jobs(jobs, np.asarray(acts, dtype=np.float64)[:, None],
               {name: np.asarray(m, dtype=bool) for name, m in masks.items()}, X, term_index,
               sims, col, quantile)


@dataclass
class ScoreJob:
    """One candidate of one neuron to score: the neuron's column of the layer's activations
    and the clips left out of its splits (``own [N]``: the exemplars its summary was built
    from)."""

    candidate: Candidate
    unit: int
    own: np.ndarray


#: Elements of one chunk's ``[n, n, units]`` pair-sign arrays (int8: 16 MB).
PAIR_BUDGET = 2**24
#: Splits of up to this many clips are scored with the pair-sign arrays, all columns at once
#: (``n^2`` work per column, no Python per column); larger ones by midranks (two-level
#: predictions, all columns at once) or Kendall's tau-b (graded, per column), O(n log n).
LAYER_PAIRS_MAX = 256


def score_jobs(jobs: Sequence[ScoreJob], A: np.ndarray, split_masks: Mapping[str, np.ndarray],
               X: np.ndarray, term_index: Mapping[str, int], sims: np.ndarray,
               col: Mapping[str, int], quantile: float = 0.9) -> None:
    """:func:`score_prediction` for many (neuron, candidate) pairs of a layer at once (in place:
    each job's ``candidate.scores``), with the numbers the per-neuron function gives.

    Args:
        jobs: the candidates; a term candidate is predicted by :func:`term_prediction`, a text
            candidate by its column of ``sims``; others are left unscored.
        A: the layer's activations ``[N, U]`` (``job.unit`` is a column).
        split_masks: split name -> bool ``[N]`` (the split's clips; ``job.own`` is removed).
        X: bool clip x term matrix ``[N, M]``; ``term_index``: lowercased term -> column.
        sims: ``[N, T]`` caption-similarity predictions; ``col``: text -> column.
    """
    todo = [j for j in jobs if j.candidate.terms is not None or j.candidate.text in col]
    if not todo:
        return
    Xf = X.astype(np.float64)
    for name, base in split_masks.items():
        rows = np.flatnonzero(base)
        n = len(rows)
        # pair arrays: n^2 per column; midranks: [n, chunk] float64 arrays of 16 MB
        chunk = max(1, PAIR_BUDGET // max(n * n, 1) if n <= LAYER_PAIRS_MAX else 2**21 // n)
        for lo in range(0, len(todo), chunk):
            part = todo[lo:lo + chunk]
            P = np.empty((n, len(part)))
            for b, job in enumerate(part):
                c = job.candidate
                if c.terms is not None:
                    w = np.zeros(X.shape[1])
                    for k, t in enumerate(c.terms):
                        j = term_index.get(t.lower())
                        if j is not None:
                            w[j] += 0.5**k
                    P[:, b] = Xf[rows] @ w
                else:
                    P[:, b] = sims[rows, col[c.text]]
            acts = A[np.ix_(rows, [job.unit for job in part])]
            W = np.stack([~job.own[rows] for job in part], 1)
            for job, sc in zip(part, score_columns(P, acts, W, quantile), strict=True):
                job.candidate.scores[name] = sc


def _masked_midranks(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """1-based midranks of each column of ``A [n, B]`` among its rows ``W`` (ties: the mean
    rank, as :func:`~dissect.evaluate.detection.midranks`); other rows get 0."""
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
    :func:`~dissect.evaluate.agreement.binarize_top_quantile`'s tie rule.
    """
    P = np.asarray(P, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    W = np.asarray(W, dtype=bool)
    n, B = P.shape
    if n == 0:
        return [{"detection": None, "detection_top": None, "correlation": None,
                 "informative": False, "n_pos": 0, "n_neg": 0} for _ in range(B)]
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
    out = []
    for b in range(B):
        mb = int(m[b])
        if not pairs and levels[b] > 2:  # graded, many rows: Kendall's tau-b per column
            out.append(score_prediction(P[W[:, b], b], A[W[:, b], b], quantile))
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
        n_pos = int(n_hi[b]) if levels[b] == 2 else mb // 2
        out.append({"detection": _r4(det), "detection_top": _r4(top), "correlation": _r4(cr),
                    "informative": bool(mb and levels[b] >= 2), "n_pos": n_pos,
                    "n_neg": mb - n_pos})
    return out
