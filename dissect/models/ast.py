"""Audio Spectrogram Transformer (``transformers`` AST), the model AND dissected.

Preprocessing is ``ASTFeatureExtractor``'s, done with ``torchaudio.compliance.kaldi.fbank``:
128 mel bins, 25 ms Hanning window, 10 ms shift, no dither, zero-padded/cropped to
``config.max_length`` frames, then ``(x - mean) / (2 * std)`` with the AudioSet statistics unless
the checkpoint's ``preprocessor_config.json`` says otherwise.

Tokens are ``[CLS, DIST, patches...]`` with patches ordered frequency-major
(``2 + f * t_dim + t``), 16x16 patches at strides ``(frequency_stride, time_stride)``. AND kept
only the first (CLS) token; here CLS and DIST are excluded and a transformer site's frames are the
*time columns* of the patch grid: each column is the mean over its ``f_dim`` frequency patches,
giving ``[B, t_dim, U]`` ordered by time with ``hop_ms = 10 * time_stride`` and ``offset_ms`` =
centre of column 0's fbank frames (``12.5 + 10 * (patch_size - 1) / 2`` = 87.5 ms). A column is
valid when all its fbank frames come from real audio (not the padding up to ``max_length``).

Sites per block ``i`` (names follow the installed transformers; older versions use
``encoder.layer.{i}.intermediate.dense`` / ``attention.output.dense``):
``audio_spectrogram_transformer.layers.{i}.mlp.fc1`` (``ffn``/``ffn_pre``),
``...layers.{i}.attention.o_proj`` (``attention``), ``...layers.{i}`` (``block``); plus the head
``classifier.dense`` (kind ``output``, one frame, names from ``config.id2label``).

``and`` (AND's neurons: every output unit of every ``nn.Linear`` AND dissected, pre-activation):
three sites per block, ``...layers.{i}.attention.o_proj`` (hidden), ``...layers.{i}.mlp.fc1``
(intermediate, before GELU) and ``...layers.{i}.mlp.fc2`` (hidden) -- in older transformers
``encoder.layer.{i}.attention.output.dense``, ``.intermediate.dense``, ``.output.dense`` -- plus
the head: ``12 x (768 + 3072 + 768) + 50 = 55,346`` neurons for ESC-50 AST (527 classes for
AudioSet checkpoints). Frames as for every transformer site (time columns).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchaudio
from torch import nn
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    ASTModel,
)

from dissect.models.base import (
    TRANSFORMER_SITE_KINDS,
    Adapter,
    Batch,
    Site,
    WeightsUnavailableError,
    frames_from_lengths,
)
from dissect.models.hf import compose, first_module, load_pretrained, transformer_sites
from dissect.models.registry import register

AUDIOSET_MEAN, AUDIOSET_STD = -4.2677393, 4.5689974
WINDOW, SHIFT = 400, 160  # fbank window and shift in samples at 16 kHz (25 ms, 10 ms)
HEAD = "classifier.dense"

# (blocks, ffn, activation, attention, ffn output) per transformers module layout, newest first
_LAYOUTS = (
    ("layers", "mlp.fc1", "mlp.activation_fn", "attention.o_proj", "mlp.fc2"),
    (
        "encoder.layer",
        "intermediate.dense",
        "intermediate.intermediate_act_fn",
        "attention.output.dense",
        "output.dense",
    ),
)


def kaldi_fbank(
    wave: torch.Tensor, num_mel_bins: int = 128, sample_rate: int = 16000
) -> torch.Tensor:
    """Log-mel fbank ``[n_frames, num_mel_bins]`` of a mono float waveform ``[S]`` (AST's)."""
    return torchaudio.compliance.kaldi.fbank(
        wave[None],
        htk_compat=True,
        sample_frequency=sample_rate,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=num_mel_bins,
        dither=0.0,
        frame_shift=10,
    )


def patch_grid(config: Any) -> tuple[int, int]:
    """``(f_dim, t_dim)``: patch rows (frequency) and columns (time) of the AST token grid."""
    f = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
    t = (config.max_length - config.patch_size) // config.time_stride + 1
    return f, t


def valid_columns(fbank_frames: torch.Tensor, config: Any) -> torch.Tensor:
    """Time columns whose patches lie entirely within ``fbank_frames`` real frames, ``[B]``."""
    n = (fbank_frames - config.patch_size).div(config.time_stride, rounding_mode="floor") + 1
    return n.clamp(min=0, max=patch_grid(config)[1])


def _time_columns(x: torch.Tensor, f_dim: int) -> torch.Tensor:
    """Tokens ``[B, 2 + f_dim * t_dim, U]`` -> time columns ``[B, t_dim, U]`` (mean over freq)."""
    b, n, u = x.shape
    return x[:, 2:].reshape(b, f_dim, (n - 2) // f_dim, u).mean(1)


@register
class ASTAdapter(Adapter):
    """AST with its classification head (``ASTModel`` when the checkpoint has none)."""

    name = "ast"
    sample_rate = 16000
    default_source = "Evan-Lin/ast-esc50"
    padding_safe = True  # every clip is padded to config.max_length frames on its own
    and_preset = True

    def __init__(self, source: str | None = None, site_kind: str = "ffn", **options: Any):
        super().__init__(source, site_kind, **options)
        self.config: ASTConfig | None = None
        self.mean, self.std, self.do_normalize = AUDIOSET_MEAN, AUDIOSET_STD, True

    def load(self, device: torch.device | str = "cpu") -> nn.Module:
        self.config = load_pretrained(ASTConfig, self.source)
        archs = self.config.architectures or []
        cls = ASTForAudioClassification if any("Classification" in a for a in archs) else ASTModel
        model = load_pretrained(cls, self.source).eval().to(device)
        try:
            fe = load_pretrained(ASTFeatureExtractor, self.source)
            self.mean, self.std, self.do_normalize = fe.mean, fe.std, fe.do_normalize
        except WeightsUnavailableError:
            pass  # AudioSet statistics (what AND's checkpoint was used with)
        return model

    def _cfg(self) -> ASTConfig:
        if self.config is None:
            raise RuntimeError("ast: call load() first")
        return self.config

    # ----------------------------------------------------------------- sites
    def sites(self, model: nn.Module) -> dict[str, Site]:
        cfg = model.config
        root = "audio_spectrogram_transformer." if hasattr(model, "classifier") else ""
        found = first_module(model, *(root + lay[0] for lay in _LAYOUTS))
        blocks, ffn, act, attn, ffn_out = next(lay for lay in _LAYOUTS if root + lay[0] == found)
        hop = 1000.0 * SHIFT * cfg.time_stride / self.sample_rate
        offset = 1000.0 * (WINDOW / 2 + SHIFT * (cfg.patch_size - 1) / 2) / self.sample_rate
        f_dim = patch_grid(cfg)[0]
        sites = transformer_sites(
            model,
            found,
            self.site_kind,
            ffn=ffn,
            act=act,
            attention=attn,
            hop_ms=hop,
            offset_ms=offset,
            linears=(attn, ffn, ffn_out),
        )
        fold = lambda x: _time_columns(x, f_dim)
        sites = {
            k: dataclasses.replace(s, transform=compose(s.transform, fold))
            for k, s in sites.items()
        }
        head = self.head_layer(model)
        if head:
            units = model.get_submodule(head).out_features
            sites[head] = Site(head, head, units, "output", hop_ms=0.0)
        return sites

    # ----------------------------------------------------------------- running
    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """``input_values`` ``[B, max_length, num_mel_bins]``; ``extra["fbank_frames"]`` = real
        (unpadded) fbank frames per clip."""
        cfg = self._cfg()
        feats, real = [], []
        for w in waveforms:
            wave = torch.as_tensor(np.asarray(w, dtype=np.float32)).flatten()
            if len(wave) < WINDOW:  # kaldi.fbank yields no frame for < 25 ms
                wave = torch.nn.functional.pad(wave, (0, WINDOW - len(wave)))
            fb = kaldi_fbank(wave, cfg.num_mel_bins, self.sample_rate)
            real.append(min(fb.shape[0], cfg.max_length))
            fb = torch.nn.functional.pad(fb[: cfg.max_length], (0, 0, 0, cfg.max_length - real[-1]))
            feats.append((fb - self.mean) / (2 * self.std) if self.do_normalize else fb)
        lengths = torch.tensor([len(np.asarray(w).reshape(-1)) for w in waveforms])
        return Batch(
            {"input_values": torch.stack(feats)}, lengths, {"fbank_frames": torch.tensor(real)}
        )

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor | None:
        out = model(**batch.inputs)
        return out.logits if hasattr(out, "logits") else None

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        if site.kind not in TRANSFORMER_SITE_KINDS:  # the head: one frame per clip
            return torch.ones(batch.size, n_frames, dtype=torch.bool)
        return frames_from_lengths(
            valid_columns(batch.extra["fbank_frames"], self._cfg()), n_frames
        )

    # ----------------------------------------------------------------- head
    def class_names(self, model: nn.Module) -> list[str] | None:
        if self.head_layer(model) is None:
            return None
        id2label = model.config.id2label
        return [str(id2label[i]) for i in range(len(id2label))]

    def head_layer(self, model: nn.Module) -> str | None:
        return HEAD if hasattr(model, "classifier") else None
