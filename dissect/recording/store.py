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
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from dissect import artifacts
from dissect.models.base import Site
from dissect.recording.recorder import QUANTILE_LEVELS, LayerState
from dissect.util import read_safetensors_metadata, safetensors_metadata


def stats_path(run_dir: Path, layer: str) -> Path:
    """``stats/<layer>.safetensors``; a layer name that is not a plain name (a path separator,
    ``..``) raises ValueError (:func:`~dissect.artifacts.check_layer_name`)."""
    return artifacts.layer_file(run_dir, artifacts.STATS_DIR, layer)


def activations_path(run_dir: Path, layer: str) -> Path:
    """``activations/<layer>.safetensors`` (a plain layer name only, as :func:`stats_path`)."""
    return artifacts.layer_file(run_dir, artifacts.ACTIVATIONS_DIR, layer)


# --------------------------------------------------------------------------- the state codec
# One encoding of a LayerState as named tensors + string metadata, used by the stats files and
# by the Ray backend's shard files (several layers per file, under a per-layer prefix).


def state_meta(state: LayerState) -> dict[str, str]:
    """String metadata that, with :func:`state_tensors`, restores ``state`` exactly."""
    s = state.site
    return {"layer": s.name, "module": s.module, "kind": s.kind, "units": str(s.units),
            "hop_ms": repr(s.hop_ms), "offset_ms": repr(s.offset_ms), "k": str(state.k),
            "hist_alpha": repr(state.hist.alpha), "hist_min_abs": repr(state.hist.min_abs),
            "hist_max_abs": repr(state.hist.max_abs)}


def state_tensors(state: LayerState, *, prefix: str = "", index_offset: int = 0,
                  dense: bool = False) -> dict[str, torch.Tensor]:
    """The reducer state as tensors (names under ``prefix``), exact and mergeable.

    Args:
        index_offset: added to the top/bottom clip indices (a shard's local -> global rows).
        dense: include the dense ``[rows, U]`` float16 store when the state has one.

    The histogram counts are ``[U, ~1400]`` int64, mostly zero columns (one sign, a few
    decades): only the band of columns any unit uses is kept (``hist_band`` from column
    ``hist_first``), as int32 when it fits; exact either way.
    """
    t: dict[str, torch.Tensor] = {}
    for name in ("top", "bottom"):
        r = getattr(state, name)
        t[f"{name}_values"] = r.values
        t[f"{name}_index"] = r.index + index_offset
        t[f"{name}_peak_ms"] = r.peak_ms
    for name in ("count", "mean", "m2", "min", "max"):
        t[name] = getattr(state.moments, name)
    counts = state.hist.counts
    used = torch.nonzero(counts.sum(0)).flatten()
    first, last = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 0)
    band = counts[:, first:last]
    if band.numel() and int(band.max()) < 2**31:
        band = band.to(torch.int32)
    t["hist_band"] = band
    t["hist_first"] = torch.tensor([first], dtype=torch.int64)
    if dense and state.dense is not None:
        t["dense"] = state.dense
    return {f"{prefix}{k}": v.detach().cpu().contiguous() for k, v in t.items()}


def state_from_tensors(t: Mapping[str, torch.Tensor], meta: Mapping[str, str], *,
                       prefix: str = "") -> LayerState:
    """Inverse of :func:`state_tensors` + :func:`state_meta` (also reads full
    ``hist_counts`` as older stats files stored them). The dense store is not restored."""
    site = Site(meta["layer"], meta["module"], int(meta["units"]), meta["kind"],
                float(meta["hop_ms"]), float(meta["offset_ms"]))
    state = LayerState(site, int(meta["k"]), float(meta["hist_alpha"]))
    for name in ("top", "bottom"):
        r = getattr(state, name)
        r.values, r.index = t[f"{prefix}{name}_values"], t[f"{prefix}{name}_index"]
        r.peak_ms = t[f"{prefix}{name}_peak_ms"]
    m = state.moments
    m.count, m.mean, m.m2, m.min, m.max = (t[f"{prefix}{n}"] for n in
                                           ("count", "mean", "m2", "min", "max"))
    if f"{prefix}hist_counts" in t:
        state.hist.counts = t[f"{prefix}hist_counts"].to(torch.int64)
    else:
        band, first = t[f"{prefix}hist_band"], int(t[f"{prefix}hist_first"][0])
        state.hist.counts[:, first:first + band.shape[1]] = band.to(torch.int64)
    return state


def save_layer(run_dir: Path, state: LayerState, reduction: str) -> list[str]:
    """Write the layer's stats (and dense store if any); return the written relative paths.

    The stats file holds :func:`state_tensors` plus, for readers, per-unit ``std``,
    ``quantile_levels`` and ``quantiles`` ``[U, levels]``.
    """
    s = state.site
    q = torch.tensor(QUANTILE_LEVELS, dtype=torch.float64)
    tensors = {**state_tensors(state), "std": state.moments.std.contiguous(),
               "quantile_levels": q, "quantiles": state.hist.quantiles(q).contiguous()}
    meta = {**state_meta(state), "reduction": reduction}
    out = stats_path(run_dir, s.name)
    _save(tensors, out, meta)
    written = [str(out.relative_to(run_dir))]
    if state.dense is not None:
        dp = activations_path(run_dir, s.name)
        _save({"values": state.dense.contiguous()}, dp, meta)
        written.append(str(dp.relative_to(run_dir)))
    return written


def _save(tensors: Mapping[str, torch.Tensor], path: Path, meta: Mapping[str, str]) -> None:
    """Write a safetensors file atomically; a failure (a full disk) raises naming ``path``
    (:func:`~dissect.artifacts.safetensors_error`), not the library's bare message."""
    try:
        with artifacts.atomic_path(path) as tmp:
            save_file(dict(tensors), str(tmp), metadata=safetensors_metadata(dict(meta)))
    except SafetensorError as exc:
        raise artifacts.safetensors_error(exc, path) from exc


def load_layer(path: Path) -> tuple[LayerState, str]:
    """Reload a stats file as a mergeable :class:`LayerState`; returns ``(state, reduction)``.

    Raises:
        ValueError: not a safetensors file, or one without a stats file's metadata and tensors
            (the message names the file).
    """
    tensors, meta = read_tensors(path)
    try:
        return state_from_tensors(tensors, meta), meta["reduction"]
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a stats file of dissect ({type(exc).__name__}: "
                         f"{exc})") from exc


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file; a corrupt file raises ValueError and an
    I/O error OSError, both naming ``path``."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = read_safetensors_metadata(fh.metadata())
        return load_file(str(path)), meta
    except SafetensorError as exc:
        raise artifacts.safetensors_error(exc, path) from exc
    except (ValueError, AttributeError) as exc:  # metadata that is not dissect's JSON
        raise ValueError(f"{path}: unreadable metadata ({exc})") from exc


def load_activations(run_dir: Path, layer: str) -> torch.Tensor:
    """Dense pooled activations ``[clips, U]`` (float32) of ``activations/<layer>.safetensors``.

    Raises:
        FileNotFoundError: the run was recorded without ``record.dense=true``.
    """
    p = activations_path(run_dir, layer)
    if not p.exists():
        raise FileNotFoundError(f"{p}: every clip's activation is needed; record with "
                                "record.dense=true")
    return load_file(str(p))["values"].float()


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


