"""Evidence: which caption terms go with a neuron's activation, for a whole layer at once.

A *term* is a short ``attribute=value`` fact about a clip (``digit=3``, ``speaker=lucas``,
``family=brass``, ``note=E4``, ``word=three``, ``register=low``, ``audioset_tag=Speech``).
With the terms as a boolean clip x term matrix ``X [N, M]`` and the pooled activations
``A [N, U]`` of the same clips, every (unit, term) pair gets, in a few matrix products:

* ``auroc``: the area under the ROC curve of the activation separating clips with the term from
  clips without it (Mann-Whitney ``U / (n1 n0)``, ties counted half) - 0.5 is chance, 1.0 means
  every clip with the term activates the unit more than every clip without it;
* ``effect``: the standardised mean difference (Cohen's d with the pooled standard deviation)
  of the activation between the two groups;
* ``p``: the one-sided p-value that clips with the term activate the unit *more* (the
  Mann-Whitney normal approximation with the tie correction, no continuity correction: the
  value ``scipy.stats.mannwhitneyu(..., alternative="greater", method="asymptotic",
  use_continuity=False)`` gives);
* ``lift``: how far above the neuron's mean its clips with the term lie, in units of its
  standard deviation over all clips: ``(mean of the term's clips - mean) / std``. This ranks
  what the neuron fires for *most*: a broad term the neuron merely prefers (noise over wrong
  pitches, for a pitch bin) can have a higher AUROC, and a higher pooled-SD effect size, than
  the narrow term it is tuned to, whose clips hold its largest activations. Terms are
  ranked by its lower bound ``lift - 1 / sqrt(support)`` (one standard error of a mean of
  ``support`` clips, in the same units): a handful of clips whose activations happen to be
  high (a transcript word Whisper hallucinated on four clips of "three") does not outrank the
  term of forty clips the neuron fires for nearly as much;
* ``support``: ``n1``, the clips with the term.

Terms with fewer than ``min_support`` clips on either side are not scored (NaN). The cut is
Benjamini-Hochberg over each neuron's scored terms at false-discovery rate ``alpha``
(:func:`bh_reject`), so a layer of thousands of neurons and hundreds of terms does not report
chance associations as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Association:
    """Per (unit, term) statistics, each ``[U, M]`` float64 (NaN where not scored)."""

    auroc: np.ndarray
    effect: np.ndarray
    p: np.ndarray
    support: np.ndarray  # [M] int: clips with the term
    lift: np.ndarray | None = None


def _ranks(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) of each column of ``A [N, U]`` and each column's tie term
    ``sum(t^3 - t)`` over groups of ``t`` tied values."""
    from scipy.stats import rankdata

    R = rankdata(A, axis=0, method="average")
    S = np.sort(A, axis=0)
    ties = np.zeros(A.shape[1])
    # run lengths of equal values per column, vectorised over columns
    change = np.vstack([np.ones((1, A.shape[1]), bool), S[1:] != S[:-1]])
    for u in np.flatnonzero(~change.all(axis=0)):  # only columns that have ties
        starts = np.flatnonzero(change[:, u])
        t = np.diff(np.append(starts, A.shape[0])).astype(np.float64)
        ties[u] = float(np.sum(t**3 - t))
    return R, ties


def associate(A: np.ndarray, X: np.ndarray, min_support: int = 3) -> Association:
    """Association of every unit of ``A [N, U]`` with every term of ``X [N, M]`` (bool).

    Args:
        A: pooled activations of N clips (float).
        X: which clips carry which term.
        min_support: a term needs at least this many clips with it and without it.

    Returns:
        :class:`Association` (``[U, M]`` arrays).
    """
    from scipy.stats import norm

    A = np.asarray(A, dtype=np.float64)
    X = np.asarray(X, dtype=bool)
    if A.ndim != 2 or X.ndim != 2 or A.shape[0] != X.shape[0]:
        raise ValueError(f"A [N, U] and X [N, M] disagree: {A.shape} vs {X.shape}")
    if not np.isfinite(A).all():
        raise ValueError("activations contain NaN/Inf")
    N = A.shape[0]
    Xf = X.astype(np.float64)
    n1 = Xf.sum(0)  # [M]
    n0 = N - n1
    ok = (n1 >= min_support) & (n0 >= min_support)
    R, ties = _ranks(A)
    rank_sum = R.T @ Xf  # [U, M]
    U_stat = rank_sum - (n1 * (n1 + 1) / 2)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        auroc = U_stat / (n1 * n0)[None, :]
        var = (n1 * n0)[None, :] / 12.0 * ((N + 1) - ties[:, None] / (N * (N - 1)))
        z = (U_stat - (n1 * n0 / 2.0)[None, :]) / np.sqrt(var)
        p = norm.sf(z)
        p = np.where(var > 0, p, 1.0)
        s1 = A.T @ Xf  # sums
        q1 = (A**2).T @ Xf
        tot, tot2 = A.sum(0)[:, None], (A**2).sum(0)[:, None]
        m1, m0 = s1 / n1, (tot - s1) / n0
        ss1 = q1 - n1 * m1**2
        ss0 = (tot2 - q1) - n0 * m0**2
        pooled = np.sqrt(np.maximum(ss1 + ss0, 0.0) / (N - 2))
        effect = np.where(pooled > 0, (m1 - m0) / pooled, 0.0)
        sd = A.std(0)[:, None]
        lift = np.where(sd > 0, (m1 - A.mean(0)[:, None]) / sd, 0.0)
    nan = np.full_like(auroc, np.nan)
    return Association(np.where(ok, auroc, nan), np.where(ok, effect, nan),
                       np.where(ok, p, nan), n1.astype(np.int64), np.where(ok, lift, nan))


def bh_reject(p: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Benjamini-Hochberg per row of ``p [U, M]`` (NaN = not tested): True where rejected."""
    p = np.asarray(p, dtype=np.float64)
    out = np.zeros(p.shape, dtype=bool)
    for u in range(p.shape[0]):
        idx = np.flatnonzero(np.isfinite(p[u]))
        if not len(idx):
            continue
        order = idx[np.argsort(p[u, idx], kind="stable")]
        m = len(idx)
        below = p[u, order] <= alpha * np.arange(1, m + 1) / m
        if below.any():
            k = int(np.flatnonzero(below)[-1])
            out[u, order[: k + 1]] = True
    return out


@dataclass(frozen=True)
class Evidence:
    """One term's evidence for one neuron."""

    term: str
    auroc: float
    effect: float
    p: float
    support: int
    lift: float = 0.0

    def to_dict(self) -> dict:
        return {"term": self.term, "auroc": round(self.auroc, 4),
                "effect": round(self.effect, 3), "lift": round(self.lift, 3),
                "p": float(f"{self.p:.3g}"), "support": self.support}


def ranked_evidence(assoc: Association, terms: Sequence[str], alpha: float = 0.05,
                    top: int = 8, by: str = "lift_lcb") -> list[list[Evidence]]:
    """Per unit, the terms that pass the BH cut with a positive effect, strongest first, at
    most ``top``: by ``lift_lcb`` (default: the lift less one standard error of a mean of
    ``support`` clips in standard-deviation units, ``lift - 1 / sqrt(support)``, so a term of
    four clips whose few activations happen to be high does not outrank a term of forty that
    the neuron fires for nearly as much; see the module docstring), ``lift``, ``effect`` or
    ``auroc``, ties broken by AUROC (or effect size)."""
    lcb = (None if assoc.lift is None else
           assoc.lift - 1.0 / np.sqrt(np.maximum(assoc.support, 1))[None, :])
    keys = {"lift_lcb": lcb, "lift": assoc.lift, "effect": assoc.effect, "auroc": assoc.auroc}
    if by not in keys or keys[by] is None:
        raise ValueError(f"by must be one of lift_lcb, lift, effect, auroc, got {by!r}")
    primary = keys[by]
    secondary = assoc.effect if by == "auroc" else assoc.auroc
    keep = bh_reject(assoc.p, alpha) & (assoc.effect > 0)
    lift = assoc.lift if assoc.lift is not None else np.zeros_like(assoc.auroc)
    out = []
    for u in range(assoc.auroc.shape[0]):
        idx = np.flatnonzero(keep[u])
        idx = idx[np.lexsort((-secondary[u, idx], -primary[u, idx]))][:top]
        out.append([Evidence(terms[j], float(assoc.auroc[u, j]), float(assoc.effect[u, j]),
                             float(assoc.p[u, j]), int(assoc.support[j]), float(lift[u, j]))
                    for j in idx])
    return out
