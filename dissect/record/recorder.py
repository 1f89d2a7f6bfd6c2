"""Record every neuron of the chosen sites over a stream of clips, with bounded memory.

For each batch the model runs once through :func:`~dissect.record.hooks.run_sites` (the adapter
prepares the inputs), and each hooked output is framed (``[B, T, U]``), pooled over valid
frames (``mean`` or ``max``) and fed to the streaming reducers of its layer. Nothing per-clip
is kept unless the optional dense store is on, so memory does not grow with the number of
clips.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dissect.audio.batch import split_windows
from dissect.models.base import Adapter, Site
from dissect.record.hooks import SiteFrames, run_sites
from dissect.record.pooling import pool
from dissect.record.reducers import LogHistogram, Moments, TopK

QUANTILE_LEVELS = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)


@dataclass
class LayerState:
    """All reducer states of one layer (site).

    Attributes:
        site: the recorded site.
        top / bottom: k most / least activating clips per unit.
        moments: running mean / variance per unit.
        hist: exactly mergeable log-histogram per unit (quantiles).
        dense: optional float16 ``[n_clips, U]`` pooled values (rows in clip-index order;
            NaN rows for clips not seen).
    """

    site: Site
    k: int
    hist_alpha: float = 0.02
    dense_rows: int | None = None
    top: TopK = field(init=False)
    bottom: TopK = field(init=False)
    moments: Moments = field(init=False)
    hist: LogHistogram = field(init=False)
    dense: torch.Tensor | None = field(init=False, default=None)

    def __post_init__(self):
        U = self.site.units
        self.top = TopK(self.k, U, largest=True)
        self.bottom = TopK(self.k, U, largest=False)
        self.moments = Moments(U)
        self.hist = LogHistogram(U, alpha=self.hist_alpha)
        if self.dense_rows is not None:
            self.dense = torch.full((self.dense_rows, U), float("nan"), dtype=torch.float16)

    def update(self, values: torch.Tensor, index: torch.Tensor, peak_ms: torch.Tensor) -> None:
        """Add pooled ``values`` ``[B, U]`` of clips ``index`` ``[B]`` (peaks ``[B, U]``, ms)."""
        values = values.detach().float().cpu()
        if not torch.isfinite(values).all():
            bad = index[~torch.isfinite(values).all(1).cpu()].tolist()
            raise FloatingPointError(
                f"layer {self.site.name!r}: non-finite activations for clip indices {bad}"
            )
        self.top.update(values, index, peak_ms)
        self.bottom.update(values, index, peak_ms)
        self.moments.update(values)
        self.hist.update(values)
        if self.dense is not None:
            self.dense[index.cpu()] = values.to(torch.float16)

    def merge(self, other: LayerState) -> LayerState:
        """Combine two states recorded on disjoint clips (exact for top/bottom/hist/dense)."""
        if other.site != self.site or other.k != self.k:
            raise ValueError(f"cannot merge states of different layers/k: {self.site.name}")
        out = LayerState(self.site, self.k, self.hist_alpha, None)
        out.top = self.top.merge(other.top)
        out.bottom = self.bottom.merge(other.bottom)
        out.moments = self.moments.merge(other.moments)
        out.hist = self.hist.merge(other.hist)
        if self.dense is not None and other.dense is not None:
            out.dense = torch.where(torch.isnan(self.dense), other.dense, self.dense)
        return out


@dataclass
class RecordResult:
    """States per layer, plus bookkeeping for the manifest and benchmarks."""

    layers: dict[str, LayerState]
    n_clips: int
    seconds: float
    audio_seconds: float


def segments(wave: np.ndarray, sr: int, windows: tuple[float, float] | None
             ) -> tuple[list[np.ndarray], list[float]]:
    """``(segments, offsets_ms)`` of one clip ``[n]`` at ``sr`` Hz: itself, or the fixed
    ``windows = (window_s, hop_s)`` of a clip longer than one window (each window cut to its
    valid samples; offsets are window starts in ms)."""
    if windows is None or len(wave) <= int(round(windows[0] * sr)):
        return [wave], [0.0]
    w, mask, starts = split_windows(wave, sr, windows[0], windows[1])
    return [w[i, : int(mask[i].sum())] for i in range(len(w))], [1000.0 * t for t in starts]


def _batches(items, batch_size: int, equal_length: bool, sr: int, windows):
    """Group clips into batches of about ``batch_size`` segments; a clip's windows stay together.

    With ``equal_length`` (adapters that are not padding-safe) a batch never mixes lengths.
    Yields lists of ``(clip_index, segments, offsets_ms)``.
    """
    batch, rows, length = [], 0, None
    for index, wave in items:
        segs, offs = segments(wave, sr, windows)
        seg_len = len(segs[0]) if len(segs) == 1 else None
        clash = equal_length and batch and (seg_len is None or seg_len != length)
        if batch and (rows + len(segs) > batch_size or clash):
            yield batch
            batch, rows = [], 0
        batch.append((index, segs, offs))
        rows += len(segs)
        length = seg_len
        if equal_length and seg_len is None:  # windows of unequal length: a batch of their own
            yield batch
            batch, rows = [], 0
    if batch:
        yield batch


def _pool_groups(frames, valid, times_ms, groups, reduction):
    """Pool ``frames`` ``[R, T, U]`` per clip, where a clip may span several rows (windows).

    Returns ``(values [B, U], peak_ms [B, U])``.
    """
    if all(len(offs) == 1 for _, offs in groups):
        values, _ = pool(frames, valid, reduction)
        masked = torch.where(valid[:, :, None], frames.float(), -torch.inf)
        peak_ms = times_ms[masked.argmax(1).cpu()].float()
        return values, peak_ms
    out_v, out_p = [], []
    row = 0
    for _, offs in groups:
        n = len(offs)
        f, v = frames[row : row + n], valid[row : row + n]
        t = times_ms[None, :].to(torch.float64) + torch.tensor(offs, dtype=torch.float64)[:, None]
        flat_f = f.reshape(-1, f.shape[-1])[v.reshape(-1)][None]  # [1, sum valid, U]
        flat_t = t.reshape(-1)[v.reshape(-1).cpu()]
        values, _ = pool(flat_f, torch.ones(flat_f.shape[:2], dtype=torch.bool), reduction)
        out_v.append(values[0])
        out_p.append(flat_t[flat_f[0].float().argmax(0).cpu()].float())
        row += n
    return torch.stack(out_v), torch.stack(out_p)


def record(
    adapter: Adapter,
    model: nn.Module,
    clips: Iterable[tuple[int, np.ndarray]],
    sites: Sequence[Site],
    *,
    reduction: str = "mean",
    k: int = 10,
    batch_size: int = 8,
    windows: tuple[float, float] | None = None,
    dense_rows: int | None = None,
    hist_alpha: float = 0.02,
    device: torch.device | str = "cpu",
    total: int | None = None,
    progress: bool = True,
) -> RecordResult:
    """Record ``sites`` of ``model`` over ``clips``.

    Args:
        adapter: the model's adapter (preprocessing, framing, valid frames).
        model: the loaded model, already on ``device`` and in eval mode.
        clips: ``(clip_index, waveform)`` pairs, mono float32 ``[n]`` at
            ``adapter.sample_rate``; ``clip_index`` is the clip's row in ``clips.jsonl``.
        sites: the layers to record (see ``Adapter.resolve_layers``).
        reduction: ``"mean"`` or ``"max"`` over valid frames.
        k: how many top and bottom clips to keep per unit.
        batch_size: segments per forward pass.
        windows: ``(window_s, hop_s)``: clips longer than a window are cut into fixed windows
            that run as separate segments; a clip's value pools over the valid frames of all its
            windows, and peak times include each window's offset.
        dense_rows: when set, also keep a dense float16 ``[dense_rows, U]`` store per layer.
        hist_alpha: relative accuracy of the quantile histogram.
        device: where the model runs.
        total: number of clips, for the progress bar.
        progress: show a tqdm bar (clips/s).

    Returns:
        A :class:`RecordResult`. Peak times are in ms from the start of the clip as decoded.
    """
    states = {s.name: LayerState(s, k, hist_alpha, dense_rows) for s in sites}
    n, audio_s = 0, 0.0
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="record", unit="clip", disable=not progress, file=sys.stderr)
    sr = adapter.sample_rate
    try:
        with torch.inference_mode():
            for batch in _batches(clips, batch_size, not adapter.padding_safe, sr, windows):
                rows = [seg for _, segs, _ in batch for seg in segs]
                groups = [(i, offs) for i, _, offs in batch]
                index = torch.tensor([i for i, _, _ in batch], dtype=torch.int64)

                def on_site(out: SiteFrames, groups=groups, index=index) -> None:
                    values, peak_ms = _pool_groups(out.frames, out.valid, out.times_ms, groups,
                                                   reduction)
                    states[out.site.name].update(values, index, peak_ms)

                run_sites(adapter, model, rows, sites, on_site=on_site, device=device)
                n += len(batch)
                audio_s += sum(len(s) for s in rows) / sr
                bar.update(len(batch))
    finally:
        bar.close()
    return RecordResult(states, n, time.perf_counter() - t0, audio_s)
