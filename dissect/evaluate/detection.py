"""Detection scoring: does a neuron's description pick out the clips that activate it?

For each neuron, every held-out clip gets a score = cosine between the sentence embeddings of
the neuron's description and of the clip's caption. The neuron's real activations are binarised
at their top quantile (``a >= np.quantile(a, quantile)``, the rule of
:mod:`dissect.evaluate.agreement`; ``quantile=0.9`` = about the top 10 % of clips are
"positives"). The result is ``sklearn.metrics.roc_auc_score(positives, scores)``: 0.5 is chance,
1.0 means the description ranks every strongly-activating clip above every other clip.

No LLM log-probabilities are needed, so this works with every client (rule-based included). It
is None for a neuron whose binarised activation is constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dissect.evaluate.agreement import binarize_top_quantile


def detection_auroc(scores, activations, quantile: float = 0.9) -> float | None:
    """AUROC of ``scores [N]`` against ``activations [N]`` binarised at their top quantile."""
    from sklearn.metrics import roc_auc_score

    a = np.asarray(activations, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if a.shape != s.shape:
        raise ValueError(f"scores and activations disagree in length: {s.shape} vs {a.shape}")
    if a.size == 0:
        return None
    y = binarize_top_quantile(a, quantile)
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, s))


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
        from dissect.describe.embed import default_embedder

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
