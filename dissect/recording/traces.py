"""Per-frame activations of a few neurons on a few clips (the report's activation overlays).

Recording keeps only pooled values and peak times, so an activation trace re-runs the model on
just the clips asked for, through :func:`~dissect.recording.hooks.run_sites` (the one framed-forward
path the recorder uses): frames and the valid-frame mask from the adapter, frame times from
``Site.frame_times_ms``. Long clips recorded with ``audio.long_clip=windows`` run window by
window (:func:`~dissect.recording.recorder.iter_segments`), each window's start added to its frame
times, so a trace's mean equals the recorded pooled value and its argmax the recorded peak.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dissect.models.base import Adapter
from dissect.recording.hooks import SiteFrames, run_sites


@dataclass
class FrameTrace:
    """Activation of some units of one layer over time on one clip.

    Attributes:
        times_ms: frame centre times in ms from the clip start, ``[T]``.
        values: ``{unit: [T] float32}``.
    """

    times_ms: np.ndarray
    values: dict[int, np.ndarray]


# clip id -> [(segment waveform [n] at the adapter's rate, segment start in ms)]
Segments = Mapping[str, list[tuple[np.ndarray, float]]]


def frame_traces(adapter: Adapter, model: nn.Module, segments: Segments,
                 wanted: Mapping[str, Mapping[str, Iterable[int]]], *, batch_size: int = 8,
                 progress: bool = True) -> dict[str, dict[str, FrameTrace]]:
    """Per-frame activations of the wanted units on each clip.

    Args:
        adapter, model: the loaded model (eval mode).
        segments: clip id -> its segments (one for a whole clip; windows of a long clip).
        wanted: clip id -> layer -> units to keep. Clips missing from ``segments`` are left out.
        batch_size: segments per forward (segments of unequal length share a batch only when
            the adapter is ``padding_safe``; values on valid frames do not depend on the batch).
        progress: show a tqdm bar over clips.

    Returns:
        clip id -> layer -> :class:`FrameTrace`.
    """
    if not wanted:
        return {}
    layers = sorted({layer for per in wanted.values() for layer in per})
    sites = adapter.resolve_layers(model, layers)
    parts: dict[str, dict[str, list]] = {}
    batch_size = max(1, int(batch_size))

    def run(rows: list[tuple[str, np.ndarray, float]]) -> None:
        def on_site(out: SiteFrames) -> None:
            valid = out.valid.cpu()
            times = out.times_ms.numpy()
            for b, (clip, _, offset_ms) in enumerate(rows):
                units = sorted(set(wanted[clip].get(out.site.name, ())))
                if not units:
                    continue
                v = out.frames[b, valid[b].to(out.frames.device)][:, units].float().cpu().numpy()
                parts.setdefault(clip, {}).setdefault(out.site.name, []).append(
                    (times[valid[b].numpy()] + offset_ms,
                     {u: v[:, i] for i, u in enumerate(units)}))

        run_sites(adapter, model, [seg for _, seg, _ in rows], sites, on_site=on_site)

    pending: list[tuple[str, np.ndarray, float]] = []
    bar = tqdm([c for c in wanted if c in segments], desc="traces", unit="clip",
               disable=not progress, file=sys.stderr)
    with torch.inference_mode():
        for clip in bar:
            for seg, offset in segments[clip]:
                if pending and (len(pending) >= batch_size or (
                        not adapter.padding_safe and len(seg) != len(pending[0][1]))):
                    run(pending)
                    pending = []
                pending.append((clip, seg, offset))
        if pending:
            run(pending)
    bar.close()
    return {clip: {layer: _join(p) for layer, p in per.items()} for clip, per in parts.items()}


def run_traces(config: Mapping[str, Any], clip_paths: Mapping[str, str],
               wanted: Mapping[str, Mapping[str, Iterable[int]]], *, batch_size: int = 8,
               progress: bool = True) -> dict[str, dict[str, FrameTrace]]:
    """:func:`frame_traces` for a run: the model from the run's ``model`` config, each clip
    decoded with the run's ``audio`` policy. Clips whose audio cannot be loaded are left out.

    Args:
        config: the run's ``config.yaml`` as a mapping.
        clip_paths: clip id -> audio path.
        wanted: clip id -> layer -> units.
    """
    from dissect.audio import AudioError, ClipPolicy, load_audio
    from dissect.models.load import load_from_config
    from dissect.recording.recorder import iter_segments

    if not wanted:
        return {}
    adapter, model, _ = load_from_config(config.get("model") or {})
    policy = ClipPolicy.from_config(config.get("audio") or {})
    windows = policy.windows()
    sr = adapter.sample_rate
    segs: dict[str, list[tuple[np.ndarray, float]]] = {}
    for clip in wanted:
        try:
            wave = load_audio(clip_paths[clip], sr, policy).waveform
        except (AudioError, KeyError):
            continue
        segs[clip] = list(iter_segments(wave, sr, windows))
    return frame_traces(adapter, model, segs, wanted, batch_size=batch_size, progress=progress)


def _join(parts: list[tuple[np.ndarray, dict[int, np.ndarray]]]) -> FrameTrace:
    t = np.concatenate([p[0] for p in parts])
    order = np.argsort(t, kind="stable")
    units = parts[0][1].keys()
    return FrameTrace(t[order], {u: np.concatenate([p[1][u] for p in parts])[order]
                                 for u in units})
