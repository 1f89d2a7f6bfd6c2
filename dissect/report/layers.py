"""Per-layer numbers behind the report's plots: interpretable fraction, term counts, quantiles."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from dissect import artifacts
from dissect.report.cards import ordered_methods
from dissect.report.data import RunData, load_stats

#: Caption clusters of AND's interpretable-neuron rule.
AND_CLUSTERS = 11
#: Top clips inspected by the fallback interpretable fraction, and how many must agree.
FALLBACK_K = 5
FALLBACK_MIN_AGREE = 3
#: The shared label must be at least this many times more common among the top clips than in
#: the whole probe set (so a label most clips carry, like ``kind=note``, does not count).
FALLBACK_MIN_ENRICHMENT = 2.0

FALLBACK_DEFINITION = (
    f"a neuron counts as interpretable when at least {FALLBACK_MIN_AGREE} of its top "
    f"{FALLBACK_K} clips share one value of a clip label (e.g. kind or family in clips.jsonl) "
    f"and that value is at least {FALLBACK_MIN_ENRICHMENT:g}x more frequent among those clips "
    "than in the whole probe set"
)


def label_fraction(run: RunData) -> dict[str, float]:
    """Fallback interpretable fraction per layer (see :data:`FALLBACK_DEFINITION`).

    Returns an empty dict when the clips carry no labels.
    """
    base: dict[str, Counter] = {}
    for c in run.clips.values():
        for key, val in (c.get("labels") or {}).items():
            if val is not None:
                base.setdefault(key, Counter())[str(val)] += 1
    if not base:
        return {}
    n_clips = max(1, len(run.clips))
    hits: Counter = Counter()
    totals: Counter = Counter()
    for n in run.neurons:
        totals[n.layer] += 1
        top = [t["clip"] for t in (n.exemplar.get("top") or [])[:FALLBACK_K]]
        labels = [run.clips.get(c, {}).get("labels") or {} for c in top]
        for key, counts in base.items():
            vals = Counter(str(lab[key]) for lab in labels if lab.get(key) is not None)
            if not vals:
                continue
            val, agree = vals.most_common(1)[0]
            share_top = agree / max(1, len(top))
            share_all = counts[val] / n_clips
            if agree >= FALLBACK_MIN_AGREE and share_top >= FALLBACK_MIN_ENRICHMENT * share_all:
                hits[n.layer] += 1
                break
    return {layer: hits[layer] / totals[layer] for layer in run.layers if totals[layer]}


def interpretable_fractions(run: RunData) -> tuple[dict[str, float], str]:
    """``(layer -> fraction, definition text)``, from the first source that works:

    1. ``scores.json`` (the evaluate stage): ``layers[<layer>].interpretable_fraction``;
    2. AND's rule computed here with :mod:`dissect.evaluation.layer_stats` (caption sentences
       clustered by seeded KMeans, a cluster holding 3 of the top-5 clips);
    3. the label-agreement fallback :func:`label_fraction` (no embedder or sklearn needed).
    """
    scores_path = run.run_dir / artifacts.SCORES
    if scores_path.is_file():
        try:
            scores = json.loads(scores_path.read_text(encoding="utf-8"))
            layers = scores.get("layers") or {}
            fr = {str(k): float(v["interpretable_fraction"]) for k, v in layers.items()
                  if isinstance(v, dict) and v.get("interpretable_fraction") is not None}
            if fr:
                st = scores.get("settings") or {}
                return fr, (f"from scores.json: AND's rule, a neuron is interpretable when one of "
                            f"{st.get('n_clusters', 11)} caption clusters holds at least "
                            f"{st.get('tau', 3)} of its top {st.get('k', 5)} clips")
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
            pass
    texts: dict[str, list[str]] = {c: list(t.values()) for c, t in run.captions.items()}
    if texts:
        try:
            from dissect.evaluation.layer_stats import cluster_clips, interpretable_fraction

            clusters = cluster_clips(texts, n_clusters=AND_CLUSTERS, seed=0)
            tops = {layer: [[t["clip"] for t in (n.exemplar.get("top") or [])]
                            for n in run.neurons if n.layer == layer] for layer in run.layers}
            res = interpretable_fraction(tops, clusters, k=FALLBACK_K, tau=FALLBACK_MIN_AGREE,
                                         n_clusters=AND_CLUSTERS, seed=0)
            fr = {k: float(v) for k, v in res["per_layer"].items() if v is not None}
            if fr:
                return fr, (f"AND's rule: caption sentences clustered into {AND_CLUSTERS} "
                            "groups (seeded KMeans on sentence embeddings); a neuron is "
                            f"interpretable when one cluster holds at least {FALLBACK_MIN_AGREE} "
                            f"of its top {FALLBACK_K} clips")
        except Exception as exc:  # no sklearn / embedder here: use the label rule
            print(f"[report] interpretable fraction: AND's rule unavailable "
                  f"({type(exc).__name__}: {exc}); using the label-agreement fallback",
                  file=sys.stderr)
    return label_fraction(run), FALLBACK_DEFINITION


def term_counts(run: RunData, top: int = 8) -> dict[str, dict[str, list[tuple[str, int]]]]:
    """Per layer: the most frequent open-set adjectives and top-1 closed-set concepts."""
    out: dict[str, dict[str, list[tuple[str, int]]]] = {}
    for layer in run.layers:
        adj: Counter = Counter()
        con: Counter = Counter()
        for n in run.neurons:
            if n.layer != layer:
                continue
            kw = n.concepts.get("keywords") or {}
            adj.update(str(w) for w in kw.get("adjectives") or [])
            closed = n.concepts.get("closed") or {}
            methods = ordered_methods(closed)
            if methods and closed[methods[0]]:
                con[str(closed[methods[0]][0][0])] += 1
        out[layer] = {"adjectives": adj.most_common(top), "concepts": con.most_common(top)}
    return out


def distributions(run_dir: Path, layers: list[str], level: float = 0.99
                  ) -> dict[str, dict[str, np.ndarray]]:
    """Per layer with a stats file: per-unit ``mean`` and the quantile nearest ``level``."""
    out = {}
    for layer in layers:
        st = load_stats(run_dir, layer)
        if not st or "mean" not in st:
            continue
        upper = st.get("max", st["mean"])
        if "quantiles" in st and "quantile_levels" in st and len(st["quantile_levels"]):
            i = int(np.argmin(np.abs(np.asarray(st["quantile_levels"]) - level)))
            upper = st["quantiles"][i]
        out[layer] = {"mean": np.asarray(st["mean"]), "upper": np.asarray(upper)}
    return out
