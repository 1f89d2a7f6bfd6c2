"""HEAR module: a log-mel spectrogram baseline (no weights, offline).

``load_model(model_file_path="", hop_ms=20.0, n_fft=1024, n_mels=128, device="cpu",
**chunking)``

* ``model_file_path``: ignored (the baseline has no weights); accepted so heareval's
  ``--model`` works.
* Features: ``torchaudio.transforms.MelSpectrogram`` at 16 kHz, Hann window of ``n_fft``
  samples (64 ms), ``n_mels`` HTK mel bands from 0 to 8 kHz, power 2, centred frames (the clip is
  zero-padded by ``n_fft / 2`` on each side), then ``log(mel + 1e-6)``.
* Timestamps: ``1 + n // hop`` frames, frame ``k`` centred at ``k * hop_ms`` (0, 20, ... ms).
* Scene: mean of the timestamp embeddings. 128 dims.

:class:`LogMelAdapter` is a dissect adapter (one site, ``logmel``), so the same chunking and
ensembling code serves it; it is not added to the adapter registry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torchaudio
from torch import nn

from dissect.hear.api import EmbeddingModel, get_scene_embeddings, get_timestamp_embeddings
from dissect.hear.modules._build import LOGMEL_CHUNKING, chunking
from dissect.models.base import Adapter, Batch, Site

__all__ = ["LogMel", "LogMelAdapter", "get_scene_embeddings", "get_timestamp_embeddings",
           "load_model"]

SAMPLE_RATE = 16000


class LogMel(nn.Module):
    """``[B, S]`` waveforms -> ``[B, 1 + S // hop, n_mels]`` log-mel frames."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 1024, hop: int = 320,
                 n_mels: int = 128):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, f_min=0.0,
            f_max=sample_rate / 2, center=True, pad_mode="constant", power=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(x) + 1e-6).transpose(1, 2)


class LogMelAdapter(Adapter):
    """The log-mel baseline as an adapter: site ``logmel`` (``n_mels`` units, hop ``hop_ms``)."""

    name = "logmel"
    sample_rate = SAMPLE_RATE
    default_source = "logmel"
    padding_safe = True  # zero padding = the centred STFT's own zero padding

    def __init__(self, source: str | None = None, site_kind: str = "module",
                 hop_ms: float = 20.0, n_fft: int = 1024, n_mels: int = 128, **options):
        super().__init__(source, site_kind, **options)
        self.hop = int(round(hop_ms * self.sample_rate / 1000))
        if self.hop <= 0 or abs(self.hop - hop_ms * self.sample_rate / 1000) > 1e-6:
            raise ValueError(f"logmel: hop_ms {hop_ms} is not a whole number of samples > 0")
        self.hop_ms = float(hop_ms)
        self.n_fft, self.n_mels = int(n_fft), int(n_mels)

    def load(self, device="cpu") -> nn.Module:
        return LogMel(self.sample_rate, self.n_fft, self.hop, self.n_mels).to(device).eval()

    def sites(self, model: nn.Module) -> dict[str, Site]:
        return {"logmel": Site("logmel", "", self.n_mels, "module", self.hop_ms, 0.0)}

    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.int64)
        x = torch.zeros(len(waveforms), int(lengths.max()))
        for i, w in enumerate(waveforms):
            x[i, : len(w)] = torch.as_tensor(np.asarray(w, dtype=np.float32))
        return Batch({"x": x}, lengths)

    def forward(self, model: nn.Module, batch: Batch) -> None:
        model(batch.inputs["x"])
        return None

    def frames(self, site: Site, output, batch: Batch) -> torch.Tensor:
        return output.float()

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        n_valid = 1 + batch.lengths // self.hop
        return torch.arange(n_frames)[None, :] < n_valid.clamp(max=n_frames)[:, None]


def load_model(model_file_path: str = "", hop_ms: float = 20.0, n_fft: int = 1024,
               n_mels: int = 128, layer: str = "last", device: str = "cpu",
               **options) -> EmbeddingModel:
    kw = chunking(LOGMEL_CHUNKING, options)
    if options:
        raise TypeError(f"logmel: unknown options {sorted(options)}")
    adapter = LogMelAdapter(hop_ms=hop_ms, n_fft=n_fft, n_mels=n_mels)
    return EmbeddingModel(adapter, adapter.load(device), layer, name="logmel", **kw)
