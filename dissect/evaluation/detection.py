"""Detection scoring: does a neuron's description pick out the clips that activate it?

For each neuron, every held-out clip gets a score = cosine between the sentence embeddings of
the neuron's description and of the clip's caption. The neuron's real activations are binarised
at their top quantile (``a >= np.quantile(a, quantile)``, the rule of
:mod:`dissect.evaluation.agreement`; ``quantile=0.9`` = about the top 10 % of clips are
"positives"). The result is the AUROC of the scores for those positives (:func:`binary_auroc`,
equal to ``sklearn.metrics.roc_auc_score(positives, scores)``): 0.5 is chance,
1.0 means the description ranks every strongly-activating clip above every other clip.

No LLM log-probabilities are needed, so this works with every client (rule-based included). It
is None for a neuron whose binarised activation is constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dissect.evaluation.agreement import binarize_top_quantile


def midranks(x) -> np.ndarray:
    """1-based ranks of ``x [N]`` with ties given their mean rank (``scipy.stats.rankdata``'s
    ``average`` method, without its per-call wrapper: this runs once per neuron, candidate and
    split, 55,346 x 4 x 2 times at AND's size)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = np.empty(x.size, dtype=bool)
    new[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, x.size))
    r = np.empty(x.size)
    r[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return r


def binary_auroc(y, scores) -> float:
    """AUROC of ``scores [N]`` for the bool labels ``y [N]`` (both classes present): the
    Mann-Whitney U with midranks, ``(sum of the positives' ranks - n1 (n1 + 1) / 2) / (n1 n0)``,
    which equals ``sklearn.metrics.roc_auc_score(y, scores)`` (a score tie between a positive
    and a negative counts 1/2 in both) without its input validation, about 100x faster on the
    few dozen clips of a split."""
    y = np.asarray(y, dtype=bool).ravel()
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("binary_auroc needs both classes")
    r = midranks(scores)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def detection_auroc(scores, activations, quantile: float = 0.9) -> float | None:
    """AUROC of ``scores [N]`` against ``activations [N]`` binarised at their top quantile
    (:func:`binary_auroc`)."""
    a = np.asarray(activations, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if a.shape != s.shape:
        raise ValueError(f"scores and activations disagree in length: {s.shape} vs {a.shape}")
    if a.size == 0:
        return None
    y = binarize_top_quantile(a, quantile)
    if y.all() or not y.any():
        return None
    return binary_auroc(y, s)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row of ``x`` scaled to unit L2 norm (float64; zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def detection_scores(descriptions: Sequence[str], U, caption_embeddings, embedder=None,
                     quantile: float = 0.9) -> dict[str, Any]:
    """Detection AUROC for every neuron of a layer.

    Args:
        descriptions: one description per neuron (``n``).
        U: activations ``[N, n]`` on the held-out clips.
        caption_embeddings: ``[N, d]`` embeddings of the same clips' captions.
        embedder: ``encode(texts) -> [n, d]``; default all-MiniLM-L6-v2.

    Returns:
        ``{"auroc": [float | None] per neuron, "mean": float | None, "n_scored": int}``.
    """
    U = np.asarray(U, dtype=np.float64)
    if U.ndim != 2 or U.shape[1] != len(descriptions):
        raise ValueError(f"U must be [N, {len(descriptions)}], got {U.shape}")
    if embedder is None:
        from dissect.description.embed import default_embedder

        embedder = default_embedder()
    uniq = sorted(set(descriptions))
    C = unit_rows(caption_embeddings)
    if uniq:
        E = unit_rows(embedder.encode(uniq))  # each distinct description embedded once
        row = {d: i for i, d in enumerate(uniq)}
        S = (C @ E.T)[:, [row[d] for d in descriptions]]  # [N, n]
    else:
        S = np.zeros((U.shape[0], 0))
    aurocs = [detection_auroc(S[:, j], U[:, j], quantile) if descriptions[j].strip() else None
              for j in range(U.shape[1])]
    vals = [v for v in aurocs if v is not None]
    return {"auroc": aurocs, "mean": float(np.mean(vals)) if vals else None,
            "n_scored": len(vals)}
