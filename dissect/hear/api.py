"""The HEAR 2021 embedding API on top of any dissect adapter (:mod:`dissect.models`).

A HEAR module exposes ``load_model(model_file_path="")``, ``get_timestamp_embeddings(audio,
model)`` and ``get_scene_embeddings(audio, model)``; the model carries ``sample_rate``,
``scene_embedding_size`` and ``timestamp_embedding_size``. :class:`EmbeddingModel` is such a model
for one adapter + loaded network + a layer choice:

``"last"``
    the last hidden state. Hugging Face speech encoders (HuBERT, wav2vec 2.0, WavLM,
    data2vec-audio, Whisper) use ``output_hidden_states``: ``hidden_states[-1]`` is
    ``last_hidden_state`` (after the final LayerNorm of stable-layer-norm encoders), as in
    GURA. Other adapters use their last non-head site (CREPE: ``conv6``).
``"fusion"``
    GURA's fusion: the unweighted mean of *all* hidden states (for HF encoders every entry of
    ``hidden_states``, the pre-transformer features included). For other adapters, the mean of
    every non-head site; sites narrower or wider than the last one are first mapped to its width
    with the fixed random orthogonal map of :func:`dissect.ensemble.ops.match_dim` (seeded by the
    site's index), so no channel indices are interpolated.
``"hidden_states.K"``
    one entry of ``hidden_states`` (HF encoders only).
a site name
    any recordable site of the adapter (``adapter.sites(model)``, e.g. ``conv5``,
    ``encoder.layers.3``, ``encoder.layers.3.fc1`` with ``site_kind="ffn"``).
a mapping ``{site: units or None}``
    the chosen units of each site, concatenated in mapping order (description-guided
    ensembling, :mod:`dissect.ensemble.guided`).

Timestamps are frame centres in ms, ``offset_ms + k * hop_ms`` computed in float64 from the
adapter's site timing (never from rounded ms). Only *valid* frames are returned (frames the
adapter computes from real audio, ``adapter.valid_frames``). The scene embedding is the mean over
time of these timestamp embeddings. HEAR tasks pad or trim every clip of a batch to one length in
advance, so that padding (the task's, not ours) is part of the audio, as in heareval.

Long audio is chunked so memory stays bounded (the HEAR rules ask for 20 minutes within 16 GB):
the clip is cut into cores of ``chunk_seconds`` (a whole number of frames, so every chunk's frames
lie on one global grid), each read with ``context_seconds`` of audio on either side; a chunk keeps
only the frames numbered inside its core, so the result has exactly the frames (and timestamps)
of an unchunked run. Models whose frames see at most ``context_seconds`` of audio (CREPE, log-mel)
give the unchunked values exactly; transformers see only their window, a documented
approximation (per-window input normalisation included). Windows of equal length are batched,
at most ``batch_chunks`` windows and ``batch_seconds`` of audio per forward pass. A clip no longer
than one chunk is one window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.ensemble.align import align_to_grid
from dissect.ensemble.ops import fusion as fuse_states
from dissect.ensemble.ops import match_dim
from dissect.models.base import Adapter, Site
from dissect.recording.hooks import model_device, run_sites

HEAR_SAMPLE_RATES = (16000, 22050, 32000, 44100, 48000)
MAX_HOP_MS = 50.0
LayerSpec = str | Mapping[str, Sequence[int] | None]


# --------------------------------------------------------------------------- chunk planning
@dataclass(frozen=True)
class Window:
    """One model input cut from a clip.

    Attributes:
        chunk: chunk number in the clip.
        start, stop: sample range ``[start, stop)`` fed to the model.
        first: global index of the window's frame 0 (``start / hop``).
        keep_from, keep_to: global frame indices kept, ``[keep_from, keep_to)``; ``keep_to`` is
            None for the last chunk (every valid frame to the clip's end).
    """

    chunk: int
    start: int
    stop: int
    first: int
    keep_from: int
    keep_to: int | None

    @property
    def length(self) -> int:
        return self.stop - self.start


def frame_step(hop_ms: float, sample_rate: int, max_frames: int = 1000) -> tuple[int, int]:
    """``(frames, samples)``: the smallest whole number of frames spanning a whole number of
    samples (chunk borders are multiples of it). Raises ValueError if none up to ``max_frames``."""
    hop = hop_ms * sample_rate / 1000.0
    for q in range(1, max_frames + 1):
        if abs(q * hop - round(q * hop)) < 1e-6 and round(q * hop) > 0:
            return q, int(round(q * hop))
    raise ValueError(f"hop {hop_ms} ms at {sample_rate} Hz never spans a whole number of samples")


def plan_windows(n_samples: int, hop_ms: float, sample_rate: int, chunk_seconds: float | None,
                 context_seconds: float) -> list[Window]:
    """The windows of an ``n_samples`` clip (see the module docstring)."""
    if n_samples <= 0:
        raise ValueError("HEAR audio must have at least one sample")
    q, step = frame_step(hop_ms, sample_rate)
    if chunk_seconds is None or n_samples <= chunk_seconds * sample_rate:
        return [Window(0, 0, n_samples, 0, 0, None)]
    chunk = max(1, round(chunk_seconds * sample_rate / step)) * step
    ctx = math.ceil(max(context_seconds, 0.0) * sample_rate / step) * step
    n_chunks = math.ceil(n_samples / chunk)
    out = []
    for c in range(n_chunks):
        last = c == n_chunks - 1
        start = max(0, c * chunk - ctx)
        stop = n_samples if last else min(n_samples, (c + 1) * chunk + ctx)
        out.append(Window(c, start, stop, start // step * q, c * chunk // step * q,
                          None if last else (c + 1) * chunk // step * q))
    return out


# --------------------------------------------------------------------------- the model

class EmbeddingModel(nn.Module):
    """A HEAR model: ``adapter`` + its loaded ``model`` + a layer choice (module docstring).

    Args:
        adapter: a dissect adapter whose :meth:`~dissect.models.base.Adapter.load` returned
            ``model``.
        model: the network (a submodule, so ``.to(device)`` moves it).
        layer: ``"last"``, ``"fusion"``, ``"hidden_states.K"``, a site name, or
            ``{site: units or None}``.
        chunk_seconds: chunk length for long audio; None never chunks.
        context_seconds: audio read on either side of a chunk.
        batch_chunks: most windows per forward pass.
        batch_seconds: most audio per forward pass (seconds, summed over its windows; a window
            longer than that still runs alone); None: no limit beyond ``batch_chunks``.
        fusion_projection: how site-based fusion matches widths (``orthogonal`` | ``pad``).
        output_hop_ms: when set, the timestamp embeddings are linearly interpolated *in time*
            (:func:`dissect.ensemble.align.align_to_grid`, never across channels) onto a grid
            from the first to the last valid frame centre whose hop is the smaller of this and
            the layer's own hop (AST 100 ms, BEATs 160 ms, CLAP ~313 ms; HEAR wants <= 50 ms).
            Long audio is then stitched by time: each chunk keeps the frames centred inside
            its core and inside the audio, so any hop works (no whole-sample frame grid
            needed). The scene embedding stays the mean of the model's own frames. None: the
            model's own frames on one global frame grid.
        name: a label (module name) for messages and ensembles.

    Attributes:
        sample_rate, scene_embedding_size, timestamp_embedding_size: the HEAR attributes.
        hop_ms, offset_ms: frame timing of the timestamp embeddings.
        last_stats: bookkeeping of the last call (windows, forward passes, largest window and
            batch in samples); tests use it to check that memory stays bounded.
    """

    def __init__(self, adapter: Adapter, model: nn.Module, layer: LayerSpec = "last", *,
                 chunk_seconds: float | None = 10.0, context_seconds: float = 1.0,
                 batch_chunks: int = 8, batch_seconds: float | None = None,
                 fusion_projection: str = "orthogonal", output_hop_ms: float | None = None,
                 name: str | None = None):
        super().__init__()
        if batch_chunks < 1:
            raise ValueError("batch_chunks must be >= 1")
        self.adapter = adapter
        self.model = model
        self.name = name or adapter.name
        self.sample_rate = int(adapter.sample_rate)
        if self.sample_rate not in HEAR_SAMPLE_RATES:
            raise ValueError(f"{self.name}: sample rate {self.sample_rate} is not a HEAR rate "
                             f"{HEAR_SAMPLE_RATES}")
        self.layer = layer
        self.chunk_seconds = chunk_seconds
        self.context_seconds = float(context_seconds)
        self.batch_chunks = int(batch_chunks)
        self.batch_seconds = batch_seconds
        self.fusion_projection = fusion_projection
        self.last_stats: dict[str, int] = {}
        self._hf_index: int | str | None = None  # -1 / "fusion" / K for HF hidden states
        self._sites: list[Site] = []
        self._units: list[list[int] | None] = []
        dim = self._resolve(layer)
        self.timestamp_embedding_size = int(dim)
        self.scene_embedding_size = int(dim)
        self.frame_hop_ms = float(self._timing.hop_ms)  # the model's own frames
        self.offset_ms = float(self._timing.offset_ms)
        if self.frame_hop_ms <= 0:
            raise ValueError(f"{self.name}: layer {layer!r} has no time axis (hop 0)")
        if output_hop_ms is not None and output_hop_ms <= 0:
            raise ValueError(f"{self.name}: output_hop_ms must be > 0, got {output_hop_ms}")
        self.resample = output_hop_ms is not None
        self.hop_ms = (min(self.frame_hop_ms, float(output_hop_ms)) if self.resample
                       else self.frame_hop_ms)
        if chunk_seconds is not None and not self.resample:
            frame_step(self.hop_ms, self.sample_rate)  # fail early on an unalignable hop

    # ----------------------------------------------------------------- layer choice
    def _resolve(self, layer: LayerSpec) -> int:
        sites = self.adapter.sites(self.model)
        hidden = [s for s in sites.values() if s.kind != "output"]
        hf = self.adapter.has_hidden_states
        if isinstance(layer, Mapping):
            for name, units in layer.items():
                if name not in sites:
                    raise ValueError(f"{self.name}: unknown site {name!r}; sites: {list(sites)}")
                site = sites[name]
                if units is not None:
                    units = [int(u) for u in units]
                    bad = [u for u in units if not 0 <= u < site.units]
                    if bad or not units:
                        raise ValueError(f"{self.name}: site {name!r} has {site.units} units; "
                                         f"bad selection {bad or units}")
                self._sites.append(site)
                self._units.append(units)
            if not self._sites:
                raise ValueError(f"{self.name}: empty site selection")
            self._check_timing()
            return sum(s.units if u is None else len(u)
                       for s, u in zip(self._sites, self._units, strict=True))
        if not isinstance(layer, str):
            raise TypeError(f"layer must be a string or a mapping, got {type(layer).__name__}")
        m = re.fullmatch(r"hidden_states\.(-?\d+)", layer)
        if hf and (layer in ("last", "fusion") or m):
            self._hf_index = -1 if layer == "last" else "fusion" if layer == "fusion" else int(
                m.group(1))
            self._timing = hidden[0]
            cfg = getattr(self.model, "config", None)
            dim = getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model", None)
            if dim is None:
                raise ValueError(f"{self.name}: cannot read the hidden size from the config")
            return int(dim)
        if m:
            raise ValueError(f"{self.name}: {layer!r} needs a Hugging Face encoder with hidden "
                             f"states (hubert, wav2vec2, wavlm, data2vec_audio, whisper); "
                             f"{self.adapter.name} has none")
        if layer == "last":
            self._sites = [hidden[-1]]
        elif layer == "fusion":
            self._sites = hidden
        elif layer in sites:
            self._sites = [sites[layer]]
        else:
            raise ValueError(f"{self.name}: unknown layer {layer!r}; use last, fusion or one of "
                             f"{list(sites)}")
        self._units = [None] * len(self._sites)
        self._check_timing()
        return self._sites[-1].units

    def _check_timing(self) -> None:
        timings = {(s.hop_ms, s.offset_ms) for s in self._sites}
        if len(timings) != 1:
            raise ValueError(f"{self.name}: the chosen sites have different frame timings "
                             f"{sorted(timings)}")
        self._timing = self._sites[0]

    # ----------------------------------------------------------------- running
    def _forward(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: ``(frames [B, T, D] float32, valid [B, T] bool)``."""
        if self._hf_index is not None:
            batch = self.adapter.prepare(waves).to(model_device(self.model))
            hs = self.adapter.hidden_states(self.model, batch)
            x = fuse_states(hs) if self._hf_index == "fusion" else hs[int(self._hf_index)]
        else:
            run = run_sites(self.adapter, self.model, waves, self._sites)
            batch = run.batch
            got = {name: out.frames for name, out in run.sites.items()}
            if self.layer == "fusion":
                d = self._sites[-1].units
                x = fuse_states([match_dim(got[s.name].float(), d, self.fusion_projection, i)
                                 for i, s in enumerate(self._sites)])
            else:
                parts = [got[s.name] if u is None else got[s.name][..., u]
                         for s, u in zip(self._sites, self._units, strict=True)]
                x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        valid = self.adapter.valid_frames(self._timing, batch, x.shape[1]).to(x.device)
        return x.float(), valid

    def timestamp_embeddings(self, audio: torch.Tensor | np.ndarray
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """HEAR ``get_timestamp_embeddings``: ``(emb [n, T, D] float32, ts [n, T] float32 ms)``
        on the input's device (``n = 0``: ``T`` as for one sound of that length)."""
        n_sounds, n_samples = check_audio(audio)
        if n_sounds == 0:
            return empty_timestamp_embeddings(self, n_samples, _device(audio))
        if not self.resample:
            return self._frame_embeddings(audio)
        emb, ts = self._stitched_embeddings(audio)
        t = ts[0].double()
        n = int(math.floor(float(t[-1] - t[0]) / self.hop_ms + 1e-9)) + 1
        grid = t[0] + self.hop_ms * torch.arange(n, dtype=torch.float64)
        out = align_to_grid(emb.double(), t, grid).to(torch.float32)
        stamps = grid.to(torch.float32)[None].expand(emb.shape[0], -1).contiguous()
        return out.to(emb.device), stamps.to(emb.device)

    def _stitched_embeddings(self, audio: torch.Tensor | np.ndarray
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's own frames (``frame_hop_ms`` apart), long audio cut into
        ``chunk_seconds`` cores read with ``context_seconds`` either side and stitched by
        time: ``(emb [n, T, D], ts [n, T] float64 ms)``; ``ts`` increases strictly but may
        jump at chunk seams."""
        wave, out_device = _as_numpy(audio)
        n_sounds, n_samples = wave.shape
        sr = self.sample_rate
        if self.chunk_seconds is None or n_samples <= self.chunk_seconds * sr:
            cores = [(0, n_samples)]
        else:
            size = max(1, round(self.chunk_seconds * sr))
            cores = [(a, min(a + size, n_samples)) for a in range(0, n_samples, size)]
        ctx = max(0, math.ceil(self.context_seconds * sr))
        stats = {"n_windows": len(cores) * n_sounds, "n_forward": 0, "max_window_samples": 0,
                 "max_batch_windows": 0, "max_batch_samples": 0}
        limit = math.inf if self.batch_seconds is None else self.batch_seconds * sr
        embs: list[list[torch.Tensor]] = [[] for _ in range(n_sounds)]
        stamps: list[torch.Tensor] = []
        for c, (a, b) in enumerate(cores):
            last = c == len(cores) - 1
            start, stop = max(0, a - ctx), (n_samples if last else min(n_samples, b + ctx))
            length = stop - start
            per = max(1, min(self.batch_chunks, int(limit // length) if limit < math.inf
                             else self.batch_chunks))
            for i in range(0, n_sounds, per):
                part = list(range(i, min(n_sounds, i + per)))
                with torch.no_grad():
                    x, valid = self._forward([wave[s, start:stop] for s in part])
                stats["n_forward"] += 1
                stats["max_window_samples"] = max(stats["max_window_samples"], length)
                stats["max_batch_windows"] = max(stats["max_batch_windows"], len(part))
                stats["max_batch_samples"] = max(stats["max_batch_samples"], length * len(part))
                k = torch.arange(x.shape[1], dtype=torch.float64)
                t = 1000.0 * start / sr + self.offset_ms + self.frame_hop_ms * k
                lo, hi = 1000.0 * a / sr, (math.inf if last else 1000.0 * b / sr)
                # frames centred inside this core, and inside the audio: a model that pads by
                # repeating the clip (CLAP) would otherwise report frames past its end
                inside = (t >= lo) & (t < hi) & (t <= 1000.0 * stop / sr)
                for j, s in enumerate(part):
                    keep = valid[j].cpu() & inside
                    if s == 0 and i == 0:
                        stamps.append(t[keep])
                    elif not torch.equal(keep, valid[0].cpu() & inside):
                        raise RuntimeError(f"{self.name}: sounds of one batch got different "
                                           "frames")
                    embs[s].append(x[j, keep.to(x.device)])
        self.last_stats = stats
        ts = torch.cat(stamps)
        if len(ts) == 0:
            raise RuntimeError(f"{self.name}: no valid frame for {n_samples} samples")
        emb = torch.stack([torch.cat(e) for e in embs]).to(out_device, torch.float32)
        return emb, ts[None].expand(n_sounds, -1).to(out_device)

    def _frame_embeddings(self, audio: torch.Tensor | np.ndarray
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's own frames on one global frame grid (no resampling)."""
        wave, out_device = _as_numpy(audio)
        n_sounds, n_samples = wave.shape
        plan = plan_windows(n_samples, self.hop_ms, self.sample_rate, self.chunk_seconds,
                            self.context_seconds)
        jobs = [(s, w) for s in range(n_sounds) for w in plan]
        pieces: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        stats = {"n_windows": len(jobs), "n_forward": 0, "max_window_samples": 0,
                 "max_batch_windows": 0, "max_batch_samples": 0}
        limit = math.inf if self.batch_seconds is None else self.batch_seconds * self.sample_rate
        for length in sorted({w.length for w in plan}, reverse=True):
            group = [j for j in jobs if j[1].length == length]
            per = max(1, min(self.batch_chunks, int(limit // length) if limit < math.inf
                             else self.batch_chunks))
            for i in range(0, len(group), per):
                part = group[i : i + per]
                waves = [wave[s, w.start : w.stop] for s, w in part]
                with torch.no_grad():
                    x, valid = self._forward(waves)
                stats["n_forward"] += 1
                stats["max_window_samples"] = max(stats["max_window_samples"], length)
                stats["max_batch_windows"] = max(stats["max_batch_windows"], len(part))
                stats["max_batch_samples"] = max(stats["max_batch_samples"], length * len(part))
                for b, (s, w) in enumerate(part):
                    k = w.first + torch.nonzero(valid[b], as_tuple=True)[0]
                    keep = k >= w.keep_from
                    if w.keep_to is not None:
                        keep &= k < w.keep_to
                    pieces[(s, w.chunk)] = (x[b, (k - w.first)[keep]], k[keep])
        self.last_stats = stats
        embs, idx = [], None
        for s in range(n_sounds):
            e = torch.cat([pieces[(s, w.chunk)][0] for w in plan])
            k = torch.cat([pieces[(s, w.chunk)][1] for w in plan])
            if len(k) == 0:
                raise RuntimeError(f"{self.name}: no valid frame for {n_samples} samples")
            if not bool((k[1:] - k[:-1] == 1).all()):
                raise RuntimeError(f"{self.name}: chunked frames are not contiguous; raise "
                                   "context_seconds")
            if idx is not None and not torch.equal(idx, k):
                raise RuntimeError(f"{self.name}: sounds of one batch got different frames")
            embs.append(e)
            idx = k
        ts = self.offset_ms + self.hop_ms * idx.to("cpu", torch.float64)
        ts = ts.to(torch.float32)[None].expand(n_sounds, -1).contiguous()
        return torch.stack(embs).to(out_device, torch.float32), ts.to(out_device)

    def scene_embeddings(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        """HEAR ``get_scene_embeddings``: the mean over time of the model's valid frames
        (before any ``output_hop_ms`` resampling), ``[n, D]`` float32."""
        if check_audio(audio)[0] == 0:
            return torch.zeros(0, self.scene_embedding_size, device=_device(audio))
        if self.resample:
            return self._stitched_embeddings(audio)[0].mean(dim=1)
        emb, _ = self._frame_embeddings(audio)
        return emb.mean(dim=1)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.timestamp_embeddings(audio)

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, layer={self.layer!r}, sample_rate={self.sample_rate}, "
                f"dim={self.timestamp_embedding_size}, hop_ms={self.hop_ms}")


def check_audio(audio: torch.Tensor | np.ndarray) -> tuple[int, int]:
    """Check HEAR input where it enters: ``(n_sounds, n_samples)`` of ``audio``.

    HEAR feeds float32 samples in [-1, 1], shaped ``[n_sounds, n_samples]``. Any float dtype is
    accepted (and computed in float32); integer or boolean samples are refused rather than cast,
    since a cast int16 clip is 32768 times too loud.

    Raises:
        TypeError: non-float samples (integer PCM, bool, complex, object).
        ValueError: not 2-D, or a sound with NaN or Inf samples (the message names its batch
            index).
    """
    if torch.is_tensor(audio):
        is_float, dtype = audio.is_floating_point(), str(audio.dtype).removeprefix("torch.")
        shape = tuple(audio.shape)
    else:
        arr = np.asarray(audio)
        is_float, dtype, shape = np.issubdtype(arr.dtype, np.floating), str(arr.dtype), arr.shape
    if not is_float:
        raise TypeError(f"HEAR audio must be float32 samples in [-1, 1], got dtype {dtype}; "
                        "scale integer PCM first (e.g. int16 / 32768)")
    if len(shape) != 2:
        raise ValueError(f"HEAR audio must be [n_sounds, n_samples], got shape {shape}")
    finite = (torch.isfinite(audio).all(dim=1).cpu().numpy() if torch.is_tensor(audio)
              else np.isfinite(arr).all(axis=1))
    if not finite.all():
        bad = np.flatnonzero(~finite).tolist()
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise ValueError(f"HEAR audio: sound(s) at batch index {bad[:10]}{more} of {shape[0]} "
                         "contain NaN or Inf samples")
    return int(shape[0]), int(shape[1])


def _as_numpy(audio: torch.Tensor | np.ndarray) -> tuple[np.ndarray, torch.device]:
    """``audio`` (checked by :func:`check_audio`) as float32 numpy, and its device."""
    if torch.is_tensor(audio):
        device = audio.device
        wave = audio.detach().to("cpu", torch.float32).numpy()
    else:
        device = torch.device("cpu")
        wave = np.asarray(audio, dtype=np.float32)
    return wave, device


def _device(audio: torch.Tensor | np.ndarray) -> torch.device:
    return audio.device if torch.is_tensor(audio) else torch.device("cpu")


def empty_timestamp_embeddings(model: Any, n_samples: int, device: torch.device
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """What an empty batch of ``n_samples``-long sounds gives: ``(emb [0, T, D], ts [0, T])``
    float32, with ``T`` the number of timestamps ``model`` gives a sound of that length (found
    by running one silent sound; ``T = 0`` for ``n_samples = 0``)."""
    dim = int(model.timestamp_embedding_size)
    if n_samples == 0:
        return (torch.zeros(0, 0, dim, device=device), torch.zeros(0, 0, device=device))
    emb, ts = model.timestamp_embeddings(torch.zeros(1, n_samples, device=device))
    return emb[:0].to(device, torch.float32), ts[:0].to(device, torch.float32)


# --------------------------------------------------------------------------- HEAR functions
def get_timestamp_embeddings(audio: torch.Tensor, model: Any
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR: ``(embeddings [n_sounds, n_timestamps, D] float32, timestamps [n_sounds,
    n_timestamps] float32, frame centres in ms)`` for an :class:`EmbeddingModel` or an
    :class:`~dissect.ensemble.model.EnsembleModel`.

    An empty batch gives ``[0, T, D]`` and ``[0, T]``, ``T`` as for one sound of that length.

    Raises:
        TypeError, ValueError: input that breaks the HEAR rules (:func:`check_audio`).
    """
    n_sounds, n_samples = check_audio(audio)
    with torch.no_grad():
        if n_sounds == 0:
            return empty_timestamp_embeddings(model, n_samples, _device(audio))
        return model.timestamp_embeddings(audio)


def get_scene_embeddings(audio: torch.Tensor, model: Any) -> torch.Tensor:
    """HEAR: ``[n_sounds, scene_embedding_size]`` float32 (mean over time, see the model);
    ``[0, scene_embedding_size]`` for an empty batch.

    Raises:
        TypeError, ValueError: input that breaks the HEAR rules (:func:`check_audio`).
    """
    n_sounds, _ = check_audio(audio)
    if n_sounds == 0:
        return torch.zeros(0, int(model.scene_embedding_size), device=_device(audio))
    with torch.no_grad():
        return model.scene_embeddings(audio)


def load_adapter_model(adapter_name: str, source: str | None = None, layer: LayerSpec = "last", *,
                       site_kind: str = "block", device: str | torch.device = "cpu",
                       adapter_options: Mapping[str, Any] | None = None,
                       **embedding_options: Any) -> EmbeddingModel:
    """Build the adapter registered as ``adapter_name``, load its weights and wrap it.

    ``site_kind`` defaults to ``block`` (residual stream) so named transformer layers give the
    block outputs; ``embedding_options`` go to :class:`EmbeddingModel`.
    """
    from dissect.models.load import adapter_from_config

    adapter = adapter_from_config({"name": adapter_name, "source": source, "site": site_kind,
                                   "options": dict(adapter_options or {})})
    model = adapter.load(device)
    embedding_options.setdefault("name", adapter_name)
    return EmbeddingModel(adapter, model, layer, **embedding_options)


# --------------------------------------------------------------------------- checks
def check_outputs(emb: torch.Tensor, ts: torch.Tensor, n_sounds: int, n_samples: int,
                  sample_rate: int, dim: int) -> list[str]:
    """What hearvalidator would reject in timestamp outputs (errors), plus a hop > 50 ms.

    Returns:
        problem descriptions; empty when the outputs conform.
    """
    problems = []
    if emb.dtype != torch.float32 or ts.dtype != torch.float32:
        problems.append(f"dtypes {emb.dtype}, {ts.dtype} (want float32)")
    if emb.dim() != 3 or ts.dim() != 2 or tuple(emb.shape[:2]) != tuple(ts.shape):
        return problems + [f"shapes {tuple(emb.shape)} / {tuple(ts.shape)}"]
    if emb.shape[0] != n_sounds or emb.shape[2] != dim:
        problems.append(f"shape {tuple(emb.shape)}: want ({n_sounds}, T, {dim})")
    t = ts.double().cpu()
    duration_ms = 1000.0 * n_samples / sample_rate
    if t.shape[1] > 1:
        gaps = t[:, 1:] - t[:, :-1]
        hop = float(gaps.mean())
        if bool(((gaps - hop).abs() > 1.0).any()):
            problems.append("timestamps are not regularly spaced (> 1 ms off the mean hop)")
        if hop > MAX_HOP_MS:
            problems.append(f"mean hop {hop:.2f} ms > {MAX_HOP_MS} ms")
    if float(t.max()) > duration_ms:
        problems.append(f"last timestamp {float(t.max()):.2f} ms after the audio end "
                        f"{duration_ms:.2f} ms")
    if not bool(torch.isfinite(emb).all()):
        problems.append("non-finite embeddings")
    return problems
