"""Activation-concept agreement on a held-out split of the probe set.

For each neuron we take its top-1 closed-set concept and compare the neuron's activation over the
held-out clips with that concept's per-clip indicator:

* **Pearson** correlation between activation and indicator (point-biserial for a 0/1 indicator);
* **AUPRC**: :func:`average_precision` (equal to
  ``sklearn.metrics.average_precision_score(indicator, activation)``); its chance level is the
  concept's prevalence among the held-out clips (reported next to it);
* **F1** and **IoU** after binarising the activation at its top quantile: a clip is "on" when its
  activation is ``>= np.quantile(a, quantile)`` (numpy's default linear interpolation; ties at
  the threshold count as on, so a constant neuron is on everywhere, unless that would mark more
  than the top share while some clips lie above it: then only those are on, see
  :func:`binarize_top_quantile`). ``quantile=0.9`` marks
  about the top 10 % of clips. IoU = |on ∧ concept| / |on ∨ concept|.

The indicator comes from ground truth where the probe set has it (:func:`ground_truth_matrix`,
synth ``concepts`` and dataset ``labels``), else from a probability matrix ``P [N, C]`` (e.g. a
tagger's stand-in, :func:`~dissect.description.concepts.tab_matrix_from_tagger`): Pearson uses ``P``
as is; AUPRC, F1 and IoU use ``P``'s column binarised at its own top quantile (same rule).

Metrics that are undefined (a constant activation or indicator, no positive clip) are ``None``
and left out of the means; the counts say how many neurons each mean covers.

Held-out split: :func:`holdout_mask` hashes ``f"{seed}:{clip_id}"`` with SHA-256, so a clip's
side of the split depends only on its id, the seed and the fraction (never on row order).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dissect.util import quantile_linear

#: Pitch registers of the synth concept set (``register:*`` ids), Hz, lower bound inclusive.
REGISTERS: dict[str, tuple[float, float]] = {
    "very_low": (0.0, 100.0),
    "low": (100.0, 250.0),
    "middle": (250.0, 600.0),
    "high": (600.0, 1500.0),
    "very_high": (1500.0, math.inf),
}


def holdout_mask(clip_ids: Sequence[str], fraction: float = 0.3, seed: int = 0) -> np.ndarray:
    """Bool ``[N]``: True for held-out clips (:func:`dissect.datasets.base.held_out`: the first
    8 bytes of ``sha256(f"{seed}:{id}")`` as a number in [0, 1) below ``fraction``)."""
    from dissect.datasets.base import held_out

    return held_out(clip_ids, fraction, seed)


def _norm(x: Any) -> str:
    return re.sub(r"[\s_\-]+", " ", str(x).strip().lower())


def clip_has_concept(clip: Mapping[str, Any], concept_id: str,
                     concept_name: str = "") -> bool | None:
    """Whether a clip row (``clips.jsonl``) carries a concept; None when nothing tells.

    ``concept_id`` ``"key:value"`` (the synth concept-set ids) is compared with
    ``clip["concepts"][key]`` or ``clip["labels"][key]`` (case, ``_``, ``-`` and spaces
    ignored); ``register:<name>`` is derived from ``concepts["f0_hz"]`` with :data:`REGISTERS`
    (a clip without f0 is in no register). An id without ``:`` (ESC-50 style class ids) matches
    any label value equal to the id or to ``concept_name``. None means the clip has no field
    the id could be checked against.
    """
    concepts = clip.get("concepts") or {}
    labels = clip.get("labels") or {}
    if ":" in concept_id:
        key, value = concept_id.split(":", 1)
        if key == "register":
            if value not in REGISTERS:
                return None
            f0 = concepts.get("f0_hz")
            if f0 is None:
                return False if "f0_hz" in concepts else None
            lo, hi = REGISTERS[value]
            return lo <= float(f0) < hi
        if key not in concepts and key not in labels:
            return None
        have = concepts.get(key, labels.get(key))
        if have is None:
            return False
        vals = have if isinstance(have, list) else [have]
        return any(_norm(v) == _norm(value) for v in vals)
    if not labels:
        return None
    wanted = {_norm(concept_id)} | ({_norm(concept_name)} if concept_name else set())
    for v in labels.values():
        for x in v if isinstance(v, list) else [v]:
            if _norm(x) in wanted:
                return True
    return False


def ground_truth_matrix(clips: Sequence[Mapping[str, Any]], ids: Sequence[str],
                        names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip ground truth for every concept: ``(Y [N, C] float 0/1, known [C] bool)``.

    ``known[c]`` is True when every clip could be checked for concept ``c`` and at least one
    clip has it; unknown columns are all zero and must not be scored.
    """
    names = list(names) if names is not None else [""] * len(ids)
    Y = np.zeros((len(clips), len(ids)), dtype=np.float32)
    known = np.zeros(len(ids), dtype=bool)
    for c, (cid, name) in enumerate(zip(ids, names, strict=True)):
        col = [clip_has_concept(clip, cid, name) for clip in clips]
        if clips and all(v is not None for v in col):
            Y[:, c] = np.asarray(col, dtype=np.float32)
            known[c] = bool(Y[:, c].any())
    return Y, known


def binarize_top_quantile(a: np.ndarray, quantile: float = 0.9) -> np.ndarray:
    """``a >= np.quantile(a, quantile)`` (see the module docstring), except when many values
    tie at the threshold: then ``a > threshold`` (when any value is above it).

    A sparse unit (a GELU or ReLU neuron that is exactly 0 on most clips, or a float16 store
    that rounds tiny values to 0) has its 0.9 quantile at 0, and ``>=`` would mark nearly every
    clip "positive" (116 of 119 for one Whisper FFN unit), turning detection AUROC upside down.
    """
    a = np.asarray(a, dtype=np.float64)
    q = quantile_linear(a, quantile)
    y = a >= q
    if y.mean() > (1.0 - quantile) + 1.0 / max(len(a), 1) and (a > q).any():
        y = a > q
    return y


def _pearson(a: np.ndarray, y: np.ndarray) -> float | None:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(a, y)[0, 1])


def average_precision(y, scores) -> float:
    """Average precision of ``scores [N]`` for the bool labels ``y [N]`` (a positive present):
    ``sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds, highest first, which is
    ``sklearn.metrics.average_precision_score(y, scores)`` without its per-call validation
    (this runs once per neuron of a layer)."""
    y = np.asarray(y, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    ss, ys = s[order], y[order]
    last = np.append(np.flatnonzero(np.diff(ss)), ss.size - 1)  # end of each tie group
    tps = np.cumsum(ys)[last].astype(np.float64)
    if tps[-1] == 0:
        raise ValueError("average_precision needs a positive")
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.append(0.0, recall)) * precision))


def agreement_metrics(a, y, quantile: float = 0.9, y_binary: bool = True) -> dict[str, Any]:
    """Agreement of one activation vector ``a [N]`` with one concept column ``y [N]``.

    Returns ``pearson``, ``auprc``, ``prevalence`` (AUPRC's chance level), ``f1``, ``iou``,
    ``threshold`` (the activation threshold) and ``n_pos``. ``y_binary=False``: ``y`` is a
    probability, binarised at its top quantile for AUPRC/F1/IoU.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != y.shape:
        raise ValueError(f"activation and concept disagree in length: {a.shape} vs {y.shape}")
    yb = (y > 0.5) if y_binary else binarize_top_quantile(y, quantile)
    n_pos = int(yb.sum())
    on = binarize_top_quantile(a, quantile) if a.size else np.zeros(0, dtype=bool)
    inter, union = int((on & yb).sum()), int((on | yb).sum())
    denom = int(on.sum()) + n_pos
    defined = 0 < n_pos < a.size
    return {
        "pearson": _pearson(a, y),
        "auprc": average_precision(yb, a) if defined else None,
        "prevalence": n_pos / a.size if a.size else None,
        "f1": (2.0 * inter / denom) if defined and denom else None,
        "iou": (inter / union) if defined and union else None,
        "threshold": quantile_linear(a, quantile) if a.size else None,
        "n_pos": n_pos,
    }


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def layer_agreement(U, concept_index: Sequence[int | None], Y, known: Sequence[bool] | None = None,
                    quantile: float = 0.9, y_binary: bool = True) -> dict[str, Any]:
    """Agreement of every neuron of a layer with its top-1 concept.

    Args:
        U: activations ``[N, n]`` on the held-out clips.
        concept_index: per neuron, the column of ``Y`` of its top-1 concept (None: no concept).
        Y: ``[N, C]`` ground truth (0/1) or probabilities (``y_binary=False``).
        known: per concept, whether its column may be scored (default: all).

    Returns:
        ``{"per_neuron": [metrics or None], "mean": {metric: mean}, "n_scored": int}``; neurons
        without a concept or whose concept is not ``known`` get None.
    """
    U = np.asarray(U, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if U.ndim != 2 or Y.ndim != 2 or U.shape[0] != Y.shape[0]:
        raise ValueError(f"U [N, n] and Y [N, C] needed; got {U.shape}, {Y.shape}")
    if len(concept_index) != U.shape[1]:
        raise ValueError("one concept index per neuron needed")
    known = np.ones(Y.shape[1], dtype=bool) if known is None else np.asarray(known, dtype=bool)
    per: list[dict[str, Any] | None] = []
    for j, c in enumerate(concept_index):
        if c is None or not known[c]:
            per.append(None)
            continue
        per.append(agreement_metrics(U[:, j], Y[:, c], quantile, y_binary))
    scored = [p for p in per if p is not None]
    keys = ("pearson", "auprc", "prevalence", "f1", "iou")
    return {"per_neuron": per, "n_scored": len(scored),
            "mean": {k: _mean([p[k] for p in scored]) for k in keys}}
