"""``evaluate_run``: score a finished run's descriptions and write ``scores.json``.

What is computed (see each module for the exact definitions):

* ``last_layer`` (:mod:`~dissect.evaluation.last_layer`): AND Table 2 for the classifier head,
  per closed-set method found in ``concepts.jsonl``; for CREPE also within one semitone; and
  (``mapped``) over the head units whose class maps onto the probe set's labels, with the
  mapping (:class:`~dissect.evaluation.scorers.LastLayer`).
* ``agreement`` (:mod:`~dissect.evaluation.agreement`): per layer, mean Pearson / AUPRC / F1 / IoU
  between each neuron's activation and its top-1 concept's ground truth, on the **held-out**
  clips (:func:`~dissect.evaluation.agreement.holdout_mask`). With ``labels="refit"`` (default)
  the top-1 concept is re-derived from the fit clips only (DB: caption/concept matrix and the
  run's similarity function), so no held-out clip influenced it; ``labels="run"`` uses the
  run's ``concepts.jsonl`` labels, which saw every clip (flagged ``in_sample``).
* ``detection`` (:mod:`~dissect.evaluation.detection`): per layer, mean AUROC of caption-vs-
  description similarity against the binarised activations, on the held-out clips.
* ``layers`` (:mod:`~dissect.evaluation.layer_stats`): interpretable fraction (seeded KMeans,
  k clusters, tau of top-K), polysemanticity (clusters and closed-set concepts covering the
  top-K clips), adjective counts.

Each of these is a registered :class:`~dissect.evaluation.scorers.Scorer` (``SCORERS``, called in
registration order), so a new metric is one class in :mod:`dissect.evaluation.scorers`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dissect import artifacts
from dissect.evaluation import rundata
from dissect.evaluation.agreement import ground_truth_matrix, holdout_mask
from dissect.evaluation.last_layer import MAP_THRESHOLD
from dissect.evaluation.scorers import SCORERS, ScoreConfig, ScoringData


def _clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return round(v, 6) if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def evaluate_run(run_dir: str | Path, *, holdout: float = 0.3, seed: int = 0,
                 quantile: float = 0.9, labels: str = "refit", method: str = "db",
                 n_clusters: int = 11, k: int = 5, tau: int = 3, concept_set: str | None = None,
                 similarity: str | None = None, truth_probs=None, embedder=None,
                 per_neuron: bool = False, write: bool = True,
                 label_columns: list[str] | None = None,
                 map_threshold: float | None = None) -> dict[str, Any]:
    """Score a finished run (probe, record with ``dense=true``, caption, summarize, concepts).

    Args:
        run_dir: the run directory.
        holdout: fraction of clips held out (by clip-id hash) for agreement and detection.
        seed: seed of the split and of KMeans.
        quantile: activations are binarised at this quantile (agreement F1/IoU, detection).
        labels: ``"refit"`` (top-1 concept re-derived on the fit clips, DB only) or ``"run"``.
        method: closed-set method whose top-1 concept is scored (``db`` refits; others: run).
        n_clusters, k, tau: the interpretable-neuron rule.
        concept_set, similarity: override the run config's ``describe`` values.
        truth_probs: ``[N, C]`` concept probabilities per clip (rows = ``clips.jsonl``) used
            when the probe set has no ground truth (e.g. the TAB tagger stand-in).
        embedder: sentence embedder; default all-MiniLM-L6-v2.
        per_neuron: also store per-neuron metrics.
        write: write ``scores.json`` atomically.
        label_columns: the label columns whose values the head's classes are mapped onto
            (``last_layer.<method>.mapped``); None: every label column but the numeric ones
            that are a function of a named one.
        map_threshold: MiniLM cosine of that mapping's embedding rule (default
            :data:`~dissect.evaluation.last_layer.MAP_THRESHOLD`).

    Returns:
        The scores dict (also in ``run_dir/scores.json`` when ``write``).
    """
    from dissect.description.concepts import captioned, db_matrix, load_concept_set
    from dissect.description.similarity import get_similarity

    run_dir = Path(run_dir)
    if labels not in ("refit", "run"):
        raise ValueError(f"labels must be 'refit' or 'run', got {labels!r}")
    cfg = rundata.run_config(run_dir)
    cset = load_concept_set(concept_set or artifacts.config_setting(cfg, "concepts",
                                                                    "concept_set", "synth"))
    sim_name = similarity or artifacts.config_setting(cfg, "concepts", "similarity",
                                                      "cos_cubed")
    if embedder is None:
        from dissect.description.embed import default_embedder

        embedder = default_embedder()

    clips = rundata.read_clips(run_dir)
    ids = [c["id"] for c in clips]
    hold = holdout_mask(ids, holdout, seed)
    fit = ~hold
    layers = rundata.layer_names(run_dir)
    rows = rundata.neuron_rows(run_dir)
    by_layer: dict[str, list[dict]] = {layer: [] for layer in layers}
    for r in rows:
        by_layer.setdefault(r["layer"], []).append(r)
    for layer in by_layer:
        by_layer[layer].sort(key=lambda r: r["unit"])

    captions = rundata.combined_captions(run_dir, named=False)  # DB's text, as the stage's
    cap_text = [captions.get(i, "") for i in ids]
    cap_emb = np.asarray(embedder.encode(cap_text), dtype=np.float32)
    # rows of uncaptioned clips are computed but never used: refit and per-clip concepts read
    # captioned clips only (DB leaves the others out, as the concepts stage does)
    has_caption = captioned(cap_text)
    fit = fit & has_caption
    P = db_matrix(cap_emb, embedder.encode(cset.prompts)).numpy()  # [N, C]

    # ---------------------------------------------------------------- ground truth
    Y, known = ground_truth_matrix(clips, cset.ids, cset.concepts)
    truth = "ground_truth"
    y_binary = True
    if not known.any():
        if truth_probs is not None:
            Y = np.asarray(truth_probs, dtype=np.float32)
            if Y.shape != (len(clips), len(cset)):
                raise ValueError(f"truth_probs must be [{len(clips)}, {len(cset)}]")
            known, truth, y_binary = np.ones(len(cset), dtype=bool), "probabilities", False
        else:
            truth = None

    refit = labels == "refit" and method == "db"
    data = ScoringData(run_dir=run_dir, clips=clips, ids=ids, hold=hold, fit=fit, by_layer=by_layer,
                   rows=rows, cset=cset, cap_emb=cap_emb, P=P, Y=Y, known=known, truth=truth,
                   y_binary=y_binary, embedder=embedder, sim_fn=get_similarity(sim_name),
                   has_caption=has_caption)
    config = ScoreConfig(quantile=quantile, method=method, refit=refit, n_clusters=n_clusters,
                         k=k, tau=tau, seed=seed, per_neuron=per_neuron,
                         label_columns=tuple(label_columns) if label_columns else None,
                         map_threshold=MAP_THRESHOLD if map_threshold is None
                         else float(map_threshold))
    metrics = {name: s(data, config) for name, s in SCORERS.items()}

    scores = {
        "format": 1,
        "settings": {
            "holdout": holdout, "seed": seed, "quantile": quantile, "labels": labels,
            "method": method, "refit": refit, "in_sample": not refit,
            "similarity": sim_name, "concept_set": cset.name, "truth": truth,
            "n_clusters": n_clusters, "k": k, "tau": tau,
            "embedder": getattr(embedder, "name", type(embedder).__name__),
            "n_clips": len(clips), "n_holdout": int(hold.sum()), "n_fit": int(fit.sum()),
            "known_concepts": int(known.sum()),
        },
        **metrics,
    }
    if per_neuron:
        scores["per_neuron"] = data.per_neuron
    scores = _clean(scores)
    if write:
        artifacts.write_json(run_dir / artifacts.SCORES, scores)
    return scores
