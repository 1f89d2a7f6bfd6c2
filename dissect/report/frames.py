"""Per-frame activations of a few neurons on a few clips, for the report's spectrogram overlays.

The record stage keeps only pooled values (and peak times), so the report re-runs the model on
just the exemplar clips it draws, through the same adapter protocol the recorder uses: one clip
per row of a batch, hooks from :func:`dissect.record.hooks.capture`, frames and the
valid-frame mask from the adapter, frame times from ``Site.frame_times_ms``. Long clips recorded
with ``audio.long_clip=windows`` run window by window, with each window's start added to its
frame times.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FrameTrace:
    """Activation of some units of one layer over time on one clip.

    Attributes:
        times_ms: frame centre times in ms from the clip start, ``[T]``.
        values: ``{unit: [T] float32}``.
    """

    times_ms: np.ndarray
    values: dict[int, np.ndarray]


def clip_policy_from(cfg: Mapping[str, Any]):
    """The run's :class:`~dissect.audio.ClipPolicy` from the ``audio`` section of config.yaml."""
    from dissect.audio.load import ClipPolicy

    a = dict(cfg.get("audio") or {})
    fields = ("max_seconds", "long_clip", "crop_anchor", "window_seconds",
              "window_hop_seconds", "silence_dbfs")
    return ClipPolicy(**{k: a[k] for k in fields if k in a})


def load_model(config: Mapping[str, Any]):
    """``(adapter, model, device)`` from the ``model`` section of the run's config.yaml."""
    from dissect.models import get_adapter, pick_device

    m = dict(config.get("model") or {})
    adapter = get_adapter(m["name"], source=m.get("source"), site_kind=m.get("site", "ffn"),
                          **dict(m.get("options") or {}))
    device = pick_device(m.get("device"))
    return adapter, adapter.load(device), device


def frame_traces(
    config: Mapping[str, Any],
    clip_paths: Mapping[str, str],
    wanted: Mapping[str, Mapping[str, Iterable[int]]],
    progress: bool = True,
    batch_size: int = 8,
) -> dict[str, dict[str, FrameTrace]]:
    """Per-frame activations of the wanted units on each clip.

    Args:
        config: the run's config.yaml as a dict (``model`` and ``audio`` sections are used).
        clip_paths: clip id -> audio path.
        wanted: clip id -> layer -> units to keep.
        progress: show a tqdm bar over clips.
        batch_size: segments per forward (clips of unequal length are batched only when the
            adapter is ``padding_safe``; values on valid frames do not depend on the batch).

    Returns:
        clip id -> layer -> :class:`FrameTrace`. Clips whose audio cannot be loaded are left out.
    """
    import torch
    from tqdm.auto import tqdm

    from dissect.audio import AudioError, load_audio
    from dissect.audio.batch import split_windows
    from dissect.record.hooks import capture

    if not wanted:
        return {}
    adapter, model, device = load_model(config)
    layers = sorted({layer for per in wanted.values() for layer in per})
    sites = {s.name: s for s in adapter.resolve_layers(model, layers)}
    policy = clip_policy_from(config)
    sr = adapter.sample_rate
    current: dict[str, Any] = {}
    batch_size = max(1, int(batch_size))

    def on_output(output: Any, *, site: str) -> None:
        s = sites[site]
        frames = adapter.frames(s, output, current["batch"])  # [B, T, U]
        valid = adapter.valid_frames(s, current["batch"], frames.shape[1]).cpu()
        times = s.frame_times_ms(frames.shape[1]).numpy()
        for b, (clip, offset_ms) in enumerate(current["rows"]):
            units = sorted(set(wanted[clip].get(site, ())))
            if not units:
                continue
            v = frames[b, valid[b].to(frames.device)][:, units].float().cpu().numpy()
            parts.setdefault(clip, {}).setdefault(site, []).append(
                (times[valid[b].numpy()] + offset_ms, {u: v[:, i] for i, u in enumerate(units)}))

    def segments(clip: str) -> list[tuple[np.ndarray, float]]:
        wave = load_audio(clip_paths[clip], sr, policy).waveform
        if policy.long_clip == "windows" and len(wave) > round(policy.window_seconds * sr):
            w, mask, starts = split_windows(wave, sr, policy.window_seconds,
                                            policy.window_hop_seconds)
            return [(w[i, : int(mask[i].sum())], 1000.0 * starts[i]) for i in range(len(w))]
        return [(wave, 0.0)]

    def run(rows: list[tuple[str, np.ndarray, float]]) -> None:
        current["rows"] = [(clip, off) for clip, _, off in rows]
        current["batch"] = adapter.prepare([seg for _, seg, _ in rows]).to(device)
        adapter.forward(model, current["batch"])

    parts: dict[str, dict[str, list]] = {}
    bar = tqdm(list(wanted), desc="report: frames", unit="clip", disable=not progress,
               file=sys.stderr)
    pending: list[tuple[str, np.ndarray, float]] = []
    with capture(model, {n: s.module for n, s in sites.items()}, on_output), \
            torch.inference_mode():
        for clip in bar:
            try:
                segs = segments(clip)
            except (AudioError, KeyError):
                continue
            for seg, offset in segs:
                if pending and (len(pending) >= batch_size or (
                        not adapter.padding_safe and len(seg) != len(pending[0][1]))):
                    run(pending)
                    pending = []
                pending.append((clip, seg, offset))
        if pending:
            run(pending)
    bar.close()
    return {clip: {layer: _join(p) for layer, p in per.items()} for clip, per in parts.items()}


def _join(parts: list[tuple[np.ndarray, dict[int, np.ndarray]]]) -> FrameTrace:
    t = np.concatenate([p[0] for p in parts])
    order = np.argsort(t, kind="stable")
    units = parts[0][1].keys()
    return FrameTrace(t[order], {u: np.concatenate([p[1][u] for p in parts])[order]
                                 for u in units})
