"""Which neurons get an LLM summary when LLM calls are capped.

Selectivity of a neuron = (mean of its top-k values - its mean over all clips) / its std: how far
its best clips stand out. Half of the budget goes to the head layer's most selective units (their
class names make descriptions checkable), the rest to the most selective units of all other layers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def selectivity(row: Mapping) -> float:
    """``(mean(top values) - mean) / std`` from an ``exemplars.jsonl`` row (0 when std is 0)."""
    tops = [e["value"] for e in row.get("top", []) if e.get("value") is not None]
    mean, std = row.get("mean"), row.get("std")
    if not tops or mean is None or not std or not math.isfinite(std):
        return 0.0
    return (sum(tops) / len(tops) - mean) / std


def choose_llm_neurons(rows: Iterable[Mapping], head_layer: str | None, cap: int
                       ) -> set[tuple[str, int]]:
    """``(layer, unit)`` pairs to summarise with the LLM; all of them when ``cap < 0``.

    Ties are broken by (layer, unit) so the choice is deterministic.
    """
    rows = list(rows)
    if cap < 0:
        return {(r["layer"], r["unit"]) for r in rows}
    ranked = sorted(rows, key=lambda r: (-selectivity(r), r["layer"], r["unit"]))
    head = [r for r in ranked if r["layer"] == head_layer]
    other = [r for r in ranked if r["layer"] != head_layer]
    n_head = min(len(head), cap // 2 if other else cap)
    chosen = head[:n_head] + other[: cap - n_head]
    if len(chosen) < cap:  # one group too small: fill from the other
        rest = [r for r in ranked if r not in chosen]
        chosen += rest[: cap - len(chosen)]
    return {(r["layer"], r["unit"]) for r in chosen}
