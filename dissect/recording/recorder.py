"""Record every neuron of the chosen sites over a stream of clips, with bounded memory.

For each batch the model runs once through :func:`~dissect.recording.hooks.run_sites` (the adapter
prepares the inputs), and each hooked output is framed (``[B, T, U]``), pooled over valid
frames (``mean`` or ``max``) and fed to the streaming reducers of its layer. Nothing per-clip
is kept unless the optional dense store is on, so memory does not grow with the number of
clips.

Nor does it grow with a clip's length: with ``windows`` a long clip is cut into fixed windows
that are taken lazily (views of the decoded waveform) and stream through batches of at most
``batch_size`` rows like short clips do; a clip whose windows span several batches keeps only a
running sum / count / max / peak time per unit (:class:`_ClipPool`), merged exactly, until its
last window has run. A 1-hour clip therefore costs its decoded waveform plus one batch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dissect.audio.batch import window_starts
from dissect.models.base import Adapter, Site
from dissect.recording.hooks import SiteFrames, run_sites
from dissect.recording.pooling import REDUCTIONS
from dissect.recording.reducers import LogHistogram, Moments, TopK

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


def iter_segments(wave: np.ndarray, sr: int, windows: tuple[float, float] | None
                  ) -> Iterator[tuple[np.ndarray, float]]:
    """Lazily ``(segment, offset_ms)`` of one clip: the same segments as
    :func:`dissect.audio.batch.split_windows` (window ``i`` starts at ``i * hop``; the last one
    ends at the clip's end), as views of ``wave``, so no window is copied before its batch is
    prepared."""
    if windows is None:
        yield wave, 0.0
        return
    for start in window_starts(len(wave), sr, windows[0], windows[1]):
        yield wave[start : start + int(round(windows[0] * sr))], 1000.0 * start / sr


@dataclass
class _Row:
    """One forward-pass row: a segment of clip ``clip`` starting ``offset_ms`` into it;
    ``last``: the clip's last segment (its pooled value is final after this row)."""

    clip: int
    wave: np.ndarray
    offset_ms: float
    last: bool
    clip_samples: int = 0  # the whole clip's length, on its last row (for audio seconds)


def _batches(items: Iterable[tuple[int, np.ndarray]], batch_size: int, equal_length: bool,
             sr: int, windows: tuple[float, float] | None) -> Iterator[list[_Row]]:
    """Stream the segments of ``items`` (``(clip_index, waveform)``) in batches of at most
    ``batch_size`` rows.

    A long clip's windows are rows like any other, so they may span several batches (the
    recorder merges a clip's partial pools across them exactly, see :class:`_ClipPool`); memory
    is bounded by the batch, never by the clip. With ``equal_length`` (adapters that are not
    padding-safe) a batch never mixes segment lengths.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[_Row] = []
    for index, wave in items:
        segs = iter_segments(wave, sr, windows)
        seg, off = next(segs)
        for nxt in segs:
            if batch and (len(batch) >= batch_size
                          or (equal_length and len(seg) != len(batch[-1].wave))):
                yield batch
                batch = []
            batch.append(_Row(index, seg, off, False))
            seg, off = nxt
        if batch and (len(batch) >= batch_size
                      or (equal_length and len(seg) != len(batch[-1].wave))):
            yield batch
            batch = []
        batch.append(_Row(index, seg, off, True, len(wave)))
    if batch:
        yield batch


class _ClipPool:
    """Partial pools of the clips whose windows are still arriving, for one layer.

    Per clip: the sum and count of its valid frames so far (float64 sum of per-row float32
    sums, added in window order) and the running max with the time of its first peak. Adding
    rows one window at a time in order gives the same value whatever the batch boundaries:
    the mean is ``sum / count``, the max the largest row max, and on ties the earlier window
    (and within a row the earlier frame, as ``argmax``) keeps the peak.
    """

    def __init__(self) -> None:
        self.open: dict[int, list] = {}  # clip -> [sum [U] f64, count, max [U] f32, peak [U] f64]

    def add(self, frames: torch.Tensor, valid: torch.Tensor, times_ms: torch.Tensor,
            rows: Sequence[_Row], reduction: str, site: str
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Add one batch's frames ``[R, T, U]`` (``valid [R, T]``, ``times_ms [T]``) of
        ``rows``; returns ``(clip index [B], values [B, U], peak_ms [B, U])`` of the clips
        finished in this batch, or None."""
        x = frames.float()
        v = valid.to(x.device)
        m = v[:, :, None]
        sums = torch.where(m, x, torch.zeros((), device=x.device)).sum(1).double().cpu()
        counts = v.sum(1).cpu()
        masked = torch.where(m, x, torch.full((), -torch.inf, device=x.device))
        arg = masked.argmax(1)  # the first maximal frame (torch.argmax returns the first)
        row_max = masked.gather(1, arg[:, None, :])[:, 0].cpu()
        row_peak = times_ms.to(torch.float64)[arg.cpu()]  # [R, U]
        done_i, done_v, done_p = [], [], []
        for r, row in enumerate(rows):
            acc = self.open.get(row.clip)
            if int(counts[r]) > 0:
                peak = row_peak[r] + row.offset_ms
                if acc is None:
                    acc = self.open[row.clip] = [sums[r].clone(), int(counts[r]),
                                                 row_max[r].clone(), peak]
                else:
                    acc[0] += sums[r]
                    acc[1] += int(counts[r])
                    better = row_max[r] > acc[2]
                    acc[2] = torch.where(better, row_max[r], acc[2])
                    acc[3] = torch.where(better, peak, acc[3])
            if not row.last:
                continue
            self.open.pop(row.clip, None)
            if acc is None:
                raise ValueError(f"layer {site!r}: clip index {row.clip} has no valid frame")
            value = (acc[0] / acc[1]).float() if reduction == "mean" else acc[2]
            done_i.append(row.clip)
            done_v.append(value)
            done_p.append(acc[3].float())
        if not done_i:
            return None
        return (torch.tensor(done_i, dtype=torch.int64), torch.stack(done_v),
                torch.stack(done_p))


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
        batch_size: most segments (rows) per forward pass; a long clip's windows stream
            through batches of this size, so memory is bounded by the batch, not the clip.
        windows: ``(window_s, hop_s)``: clips longer than a window are cut into fixed windows
            that run as separate segments, possibly in several batches; a clip's value pools
            over the valid frames of all its windows (merged exactly across batches), and peak
            times include each window's offset.
        dense_rows: when set, also keep a dense float16 ``[dense_rows, U]`` store per layer.
        hist_alpha: relative accuracy of the quantile histogram.
        device: where the model runs.
        total: number of clips, for the progress bar.
        progress: show a tqdm bar (clips/s).

    Returns:
        A :class:`RecordResult`. Peak times are in ms from the start of the clip as decoded.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {REDUCTIONS}")
    states = {s.name: LayerState(s, k, hist_alpha, dense_rows) for s in sites}
    pools = {s.name: _ClipPool() for s in sites}
    n, audio_s = 0, 0.0
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="record", unit="clip", disable=not progress, file=sys.stderr)
    sr = adapter.sample_rate
    try:
        with torch.inference_mode():
            for rows in _batches(clips, batch_size, not adapter.padding_safe, sr, windows):

                def on_site(out: SiteFrames, rows=rows) -> None:
                    done = pools[out.site.name].add(out.frames, out.valid, out.times_ms, rows,
                                                    reduction, out.site.name)
                    if done is not None:
                        index, values, peak_ms = done
                        states[out.site.name].update(values, index, peak_ms)

                run_sites(adapter, model, [r.wave for r in rows], sites, on_site=on_site,
                          device=device)
                finished = sum(r.last for r in rows)
                n += finished
                audio_s += sum(r.clip_samples for r in rows) / sr
                bar.update(finished)
    finally:
        bar.close()
    return RecordResult(states, n, time.perf_counter() - t0, audio_s)
