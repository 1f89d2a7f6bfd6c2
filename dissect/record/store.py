"""Write and read recorded layer states: ``stats/<layer>.safetensors``, ``exemplars.jsonl``,
``activations/<layer>.safetensors``. All writes are atomic.

A stats file holds the full reducer state (top/bottom arrays, moments, histogram counts), so a
state can be reloaded and merged with another shard exactly; plus derived per-unit ``mean``,
``std`` and ``quantiles`` for readers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dissect import artifacts
from dissect.models.base import Site
from dissect.record.recorder import QUANTILE_LEVELS, LayerState


def stats_path(run_dir: Path, layer: str) -> Path:
    return Path(run_dir) / artifacts.STATS_DIR / f"{layer}.safetensors"


def activations_path(run_dir: Path, layer: str) -> Path:
    return Path(run_dir) / artifacts.ACTIVATIONS_DIR / f"{layer}.safetensors"


def save_layer(run_dir: Path, state: LayerState, reduction: str) -> list[str]:
    """Write the layer's stats (and dense store if any); return the written relative paths."""
    s = state.site
    q = torch.tensor(QUANTILE_LEVELS, dtype=torch.float64)
    tensors = {
        "top_values": state.top.values, "top_index": state.top.index,
        "top_peak_ms": state.top.peak_ms,
        "bottom_values": state.bottom.values, "bottom_index": state.bottom.index,
        "bottom_peak_ms": state.bottom.peak_ms,
        "count": state.moments.count, "mean": state.moments.mean, "m2": state.moments.m2,
        "min": state.moments.min, "max": state.moments.max, "std": state.moments.std,
        "hist_counts": state.hist.counts,
        "quantile_levels": q, "quantiles": state.hist.quantiles(q),
    }
    meta = {
        "layer": s.name, "module": s.module, "kind": s.kind, "units": str(s.units),
        "hop_ms": repr(s.hop_ms), "offset_ms": repr(s.offset_ms), "reduction": reduction,
        "k": str(state.k), "hist_alpha": repr(state.hist.alpha),
        "hist_min_abs": repr(state.hist.min_abs), "hist_max_abs": repr(state.hist.max_abs),
    }
    out = stats_path(run_dir, s.name)
    with artifacts.atomic_path(out) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    written = [str(out.relative_to(run_dir))]
    if state.dense is not None:
        dp = activations_path(run_dir, s.name)
        with artifacts.atomic_path(dp) as tmp:
            save_file({"values": state.dense.contiguous()}, str(tmp), metadata=meta)
        written.append(str(dp.relative_to(run_dir)))
    return written


def load_layer(path: Path) -> tuple[LayerState, str]:
    """Reload a stats file as a mergeable :class:`LayerState`; returns ``(state, reduction)``."""
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    t = load_file(str(path))
    site = Site(meta["layer"], meta["module"], int(meta["units"]), meta["kind"],
                float(meta["hop_ms"]), float(meta["offset_ms"]))
    state = LayerState(site, int(meta["k"]), float(meta["hist_alpha"]))
    for name in ("top", "bottom"):
        r = getattr(state, name)
        r.values, r.index, r.peak_ms = t[f"{name}_values"], t[f"{name}_index"], t[f"{name}_peak_ms"]
    m = state.moments
    m.count, m.mean, m.m2, m.min, m.max = t["count"], t["mean"], t["m2"], t["min"], t["max"]
    state.hist.counts = t["hist_counts"]
    return state, meta["reduction"]


def _num(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 6)


def exemplar_rows(states: Mapping[str, LayerState], clip_ids: Sequence[str]):
    """Yield one ``exemplars.jsonl`` row per neuron: top and bottom clips with values, peaks."""
    for layer, st in states.items():
        mean, std = st.moments.mean.tolist(), st.moments.std.tolist()
        tv, ti, tp = st.top.values.T.tolist(), st.top.index.T.tolist(), st.top.peak_ms.T.tolist()
        bv, bi, bp = (st.bottom.values.T.tolist(), st.bottom.index.T.tolist(),
                      st.bottom.peak_ms.T.tolist())
        for u in range(st.site.units):
            yield {
                "layer": layer,
                "unit": u,
                "top": [{"clip": clip_ids[i], "value": _num(v), "peak_ms": _num(p)}
                        for v, i, p in zip(tv[u], ti[u], tp[u], strict=True)],
                "bottom": [{"clip": clip_ids[i], "value": _num(v), "peak_ms": _num(p)}
                           for v, i, p in zip(bv[u], bi[u], bp[u], strict=True)],
                "mean": _num(mean[u]),
                "std": _num(std[u]),
            }


def write_exemplars(run_dir: Path, states: Mapping[str, LayerState],
                    clip_ids: Sequence[str]) -> int:
    return artifacts.write_jsonl(Path(run_dir) / artifacts.EXEMPLARS,
                                 exemplar_rows(states, clip_ids))


def summary(states: Mapping[str, LayerState]) -> dict:
    """Small JSON-able description for the manifest."""
    return {name: {"units": st.site.units, "module": st.site.module, "kind": st.site.kind}
            for name, st in states.items()}


