"""Layer statistics from AND: interpretable fraction, adjective counts, polysemanticity.

Interpretable neurons (AND §3.7, Fig. 6), with the official script's gaps fixed:

1. every clip's captions are split into sentences (:func:`split_sentences`), embedded with the
   sentence model, and clustered with ``sklearn.cluster.KMeans(n_clusters, random_state=seed,
   n_init=10)`` (AND: k = 11, unseeded);
2. a clip belongs to the clusters of its sentences (possibly several);
3. a neuron is *interpretable* when one cluster holds at least ``tau`` of its top-``k`` clips
   (distinct clips; AND: k = 5, tau in {3, 4, 5}; default 3). Clips without captions count
   toward k but belong to no cluster.

Polysemanticity of a neuron = the smallest number of labels that covers all of its top-``k``
clips, where each clip has a set of labels (its clusters, or its closed-set concept). With one
label per clip this is the number of distinct labels. Computed exactly (k is small).

Adjective counts per layer come from ``concepts.jsonl`` keywords
(:func:`dissect.description.keywords.count_keywords`): the mean number of acoustic adjectives per
neuron (AND Fig. 5) and the most frequent adjectives (Fig. 3).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=\S)")


def split_sentences(text: str, min_words: int = 1) -> list[str]:
    """Sentences of ``text``: split after ``.``, ``!`` or ``?`` followed by white space;
    pieces with fewer than ``min_words`` words are dropped."""
    parts = [p.strip() for p in _SENT_RE.split(text or "")]
    return [p for p in parts if p and len(p.split()) >= min_words]


def cluster_clips(clip_texts: Mapping[str, Sequence[str] | str], embedder=None,
                  n_clusters: int = 11, seed: int = 0, min_words: int = 1
                  ) -> dict[str, frozenset[int]]:
    """clip id -> the set of KMeans clusters of its caption sentences (seeded, deterministic).

    ``clip_texts`` maps a clip to its caption(s); each is split into sentences. ``n_clusters``
    is clamped to the number of distinct sentences.
    """
    from sklearn.cluster import KMeans

    sent_of: dict[str, list[str]] = {}
    for clip in sorted(clip_texts):
        texts = clip_texts[clip]
        texts = [texts] if isinstance(texts, str) else list(texts)
        sent_of[clip] = [s for t in texts for s in split_sentences(t, min_words)]
    uniq = sorted({s for ss in sent_of.values() for s in ss})
    if not uniq:
        return {c: frozenset() for c in sent_of}
    if embedder is None:
        from dissect.description.embed import default_embedder

        embedder = default_embedder()
    X = np.asarray(embedder.encode(uniq), dtype=np.float64)
    k = max(1, min(int(n_clusters), len(uniq)))
    labels = KMeans(n_clusters=k, random_state=int(seed), n_init=10).fit_predict(X)
    cluster = dict(zip(uniq, (int(v) for v in labels), strict=True))
    return {c: frozenset(cluster[s] for s in ss) for c, ss in sent_of.items()}


def _top(clips: Sequence[str], k: int) -> list[str]:
    return list(dict.fromkeys(clips))[:k]


def is_interpretable(top_clips: Sequence[str], clip_clusters: Mapping[str, Iterable[int]],
                     k: int = 5, tau: int = 3) -> bool:
    """AND's rule: some cluster holds at least ``tau`` of the neuron's top-``k`` clips."""
    counts: Counter = Counter()
    for c in _top(top_clips, k):
        counts.update(set(clip_clusters.get(c, ())))
    return bool(counts) and max(counts.values()) >= tau


def interpretable_fraction(top_clips_by_layer: Mapping[str, Sequence[Sequence[str]]],
                           clip_clusters: Mapping[str, Iterable[int]] | None = None, *,
                           clip_texts: Mapping[str, Sequence[str] | str] | None = None,
                           embedder=None, n_clusters: int = 11, seed: int = 0, k: int = 5,
                           tau: int = 3) -> dict[str, Any]:
    """Fraction of interpretable neurons per layer.

    Args:
        top_clips_by_layer: layer -> per neuron, its top clip ids (best first).
        clip_clusters: clip id -> its clusters; computed with :func:`cluster_clips` from
            ``clip_texts`` when not given.

    Returns:
        ``{"per_layer": {layer: fraction}, "interpretable": {layer: [bool per neuron]},
        "n_neurons": {layer: n}, "k", "tau", "n_clusters", "seed"}``.
    """
    if clip_clusters is None:
        if clip_texts is None:
            raise ValueError("give clip_clusters or clip_texts")
        clip_clusters = cluster_clips(clip_texts, embedder, n_clusters, seed)
    flags = {layer: [is_interpretable(t, clip_clusters, k, tau) for t in tops]
             for layer, tops in top_clips_by_layer.items()}
    return {
        "per_layer": {layer: (float(np.mean(f)) if f else None) for layer, f in flags.items()},
        "interpretable": flags,
        "n_neurons": {layer: len(f) for layer, f in flags.items()},
        "k": k, "tau": tau, "n_clusters": n_clusters, "seed": seed,
    }


def min_cover(label_sets: Sequence[Iterable[Any]]) -> int:
    """Smallest number of labels whose union covers every non-empty set (exact search)."""
    sets = [frozenset(s) for s in label_sets if s]
    if not sets:
        return 0
    universe = sorted(set().union(*sets), key=repr)
    for size in range(1, len(sets) + 1):
        for combo in itertools.combinations(universe, size):
            chosen = set(combo)
            if all(s & chosen for s in sets):
                return size
    return len(sets)  # not reached: one label per set always covers


def polysemanticity(top_clips: Sequence[Sequence[str]],
                    clip_labels: Mapping[str, Iterable[Any] | str], k: int = 5) -> list[int]:
    """Per neuron, the number of labels needed to cover its top-``k`` clips (:func:`min_cover`).

    ``clip_labels``: clip id -> one label (a string) or a set of labels (e.g. its clusters).
    """
    def labels(c: str) -> frozenset:
        v = clip_labels.get(c, ())
        return frozenset([v]) if isinstance(v, str) else frozenset(v)

    return [min_cover([labels(c) for c in _top(t, k)]) for t in top_clips]


def adjective_stats(concept_rows: Sequence[Mapping[str, Any]], top_n: int = 10
                    ) -> dict[str, Any]:
    """Per layer: mean acoustic adjectives per neuron and the ``top_n`` most frequent ones."""
    from dissect.description.keywords import count_keywords

    counts = count_keywords(concept_rows)
    return {
        "mean_adjectives": {k: float(v) for k, v in counts.mean_adjectives.items()},
        "top_adjectives": {layer: c.most_common(top_n) for layer, c in counts.per_layer.items()},
    }
