"""CLAP's audio tower (HTSAT Swin transformer) from ``transformers``, or a laion-clap checkpoint.

Loading: a Hugging Face id / directory holding a ``ClapModel`` (only the audio tower,
``ClapAudioModelWithProjection``, is loaded), or a laion-clap ``.pt``/``.ckpt``/``.pth`` file
whose ``state_dict`` has ``audio_branch.*`` keys; its audio weights are renamed to transformers
names (:func:`laion_to_hf`) and loaded strictly. The architecture and feature extractor then come
from option ``config`` (HF id or directory; default ``laion/clap-htsat-unfused``).

Preprocessing: ``ClapFeatureExtractor`` at 48 kHz with ``repeatpad`` (a clip is tiled as many
whole times as fit in ``max_length_s`` = 10 s, then zero-padded). Clips longer than that are cut
to their first 10 s (HF picks random crops), so ``is_longer`` is always False and the fusion
branch of fused checkpoints is never taken; fused checkpoints get their 4-channel input.

Time axis (approximate): HTSAT folds the ``[T, F]`` log-mel (time-interpolated to
``spec_size * freq_ratio`` columns) into a square image of ``freq_ratio`` stacked time chunks.
A site's frames are the time columns of its stage's token grid: the tokens of each (chunk,
column) are averaged over their frequency rows, giving ``[B, freq_ratio * W_s, U]`` in time order
with ``hop_ms = P * c`` and ``offset_ms = (P - 1) / 2 * c`` (``P`` = image columns per token at
that stage, ``c`` = ms per interpolated mel column, 9.775 ms for the 10 s model). Swin windows,
shifted windows across chunk borders and patch merging give tokens context beyond their column,
and the last stage attends globally, so peak times are approximate. A column is valid when its
span ends within the repeated real audio (the zero tail of ``repeatpad`` is excluded).

Sites per block ``audio_model.audio_encoder.layers.{s}.blocks.{b}``: ``.intermediate.dense``
(``ffn``/``ffn_pre``), ``.attention.output.dense`` (``attention``; its windowed, cyclically
shifted output is put back in image order), and the block itself (``block``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from torch import nn
from transformers import ClapAudioConfig, ClapAudioModelWithProjection, ClapFeatureExtractor

from dissect.models.base import Adapter, Batch, Site, WeightsUnavailableError
from dissect.models.hf import compose, load_pretrained, local_path, transformer_sites
from dissect.models.registry import register

ENCODER = "audio_model.audio_encoder"
CHECKPOINT_SUFFIXES = (".pt", ".ckpt", ".pth")
#: laion-clap's HTSAT log-mel band (``model_configs/HTSAT-*.json``: ``fmin`` 50, ``fmax`` 14000
#: Hz), used when a checkpoint comes without ``preprocessor_config.json``. Hugging Face's
#: ``ClapFeatureExtractor`` defaults to ``frequency_min=0``, which moves every mel band.
LAION_FMIN_HZ, LAION_FMAX_HZ = 50, 14000

# laion-clap -> transformers names: whole-prefix swaps, then dotted-segment swaps in this order
# (attn.proj before attn; the inverse applies the same pairs reversed, in the same order).
_PREFIXES = (
    ("audio_branch.", f"{ENCODER}."),
    ("audio_projection.0.", "audio_projection.linear1."),
    ("audio_projection.2.", "audio_projection.linear2."),
)
_SEGMENTS = (
    ("attn.proj", "attention.output.dense"),
    ("attn", "attention.self"),
    ("norm1", "layernorm_before"),
    ("norm2", "layernorm_after"),
    ("mlp.fc1", "intermediate.dense"),
    ("mlp.fc2", "output.dense"),
    ("bn0", "batch_norm"),
)
# laion audio keys with no transformers counterpart: torchlibrosa front end, HTSAT's SED head,
# and the precomputed shifted-window masks (transformers builds them on the fly)
_LAION_SKIP = (
    "audio_branch.spectrogram_extractor.",
    "audio_branch.logmel_extractor.",
    "audio_branch.tscam_conv.",
    "audio_branch.head.",
)


def _swap(key: str, pairs: Sequence[tuple[str, str]], inverse: bool) -> str:
    key = f".{key}."
    for a, b in pairs:
        a, b = (b, a) if inverse else (a, b)
        key = key.replace(f".{a}.", f".{b}.")
    return key[1:-1]


def laion_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a laion-clap state dict's audio tower to ``ClapAudioModelWithProjection`` keys.

    Drops ``module.`` prefixes, non-audio keys and :data:`_LAION_SKIP`; splits ``attn.qkv`` into
    ``query``/``key``/``value``.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        pre = next(((a, b) for a, b in _PREFIXES if key.startswith(a)), None)
        if pre is None or key.startswith(_LAION_SKIP) or key.endswith(".attn_mask"):
            continue
        key = _swap(pre[1] + key[len(pre[0]) :], _SEGMENTS, inverse=False)
        if ".attention.self.qkv." in key:
            for part, chunk in zip(("query", "key", "value"), value.chunk(3, 0), strict=True):
                out[key.replace(".qkv.", f".{part}.")] = chunk
        else:
            out[key] = value
    return out


def hf_to_laion(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`laion_to_hf` (merges ``query``/``key``/``value`` back into ``qkv``)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if ".attention.self.key." in key or ".attention.self.value." in key:
            continue
        if ".attention.self.query." in key:
            parts = [state[key.replace(".query.", f".{p}.")] for p in ("query", "key", "value")]
            key, value = key.replace(".query.", ".qkv."), torch.cat(parts, 0)
        a, b = next((a, b) for a, b in _PREFIXES if key.startswith(b))
        out[_swap(a + key[len(b) :], _SEGMENTS, inverse=True)] = value
    return out


def load_laion_audio(model: nn.Module, path: str | Path) -> None:
    """Load a laion-clap checkpoint's audio tower into ``model`` with strict key checking."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = laion_to_hf(ckpt.get("state_dict", ckpt))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = f"laion-clap checkpoint {str(path)!r} does not match the config: {exc}"
        raise ValueError(msg) from exc


def unwindow(x: torch.Tensor, layer: nn.Module, height: int, width: int) -> torch.Tensor:
    """Swin attention output ``[B * n_windows, ws * ws, C]`` -> image order ``[B, H * W, C]``
    (undoes window partition, the cyclic shift and the padding to whole windows)."""
    ws, shift = int(layer.window_size), int(layer.shift_size)
    hp, wp = math.ceil(height / ws) * ws, math.ceil(width / ws) * ws
    c = x.shape[-1]
    x = x.reshape(-1, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(-1, hp, wp, c)
    if shift > 0:
        x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
    return x[:, :height, :width].reshape(-1, height * width, c)


def time_columns(x: torch.Tensor, height: int, width: int, chunks: int) -> torch.Tensor:
    """Tokens ``[B, H * W, U]`` -> time columns ``[B, chunks * W, U]`` (mean over the frequency
    rows of each time chunk; image rows are ``chunks`` stacked time chunks)."""
    b, _, u = x.shape
    return x.reshape(b, chunks, height // chunks, width, u).mean(2).reshape(b, -1, u)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers' load report (the text tower's keys are expected to be unused)."""
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)


@register
class ClapAdapter(Adapter):
    """CLAP audio tower. Options: ``config`` (HF id/dir) when ``source`` is a laion checkpoint."""

    name = "clap"
    sample_rate = 48000
    default_source = "laion/clap-htsat-unfused"
    padding_safe = True  # each clip is repeat-padded to 10 s on its own; no batch statistics

    def __init__(self, source: str | None = None, site_kind: str = "ffn", **options: Any):
        super().__init__(source, site_kind, **options)
        self.fe: ClapFeatureExtractor | None = None
        self.fusion = False

    def load(self, device: torch.device | str = "cpu") -> nn.Module:
        path = local_path(self.source)
        if path is not None and path.is_file() and path.suffix in CHECKPOINT_SUFFIXES:
            fe_source = self.options.get("config", self.default_source)
            model = ClapAudioModelWithProjection(load_pretrained(ClapAudioConfig, fe_source))
            load_laion_audio(model, path)
        else:
            fe_source = self.source
            with _quiet():
                model, info = load_pretrained(
                    ClapAudioModelWithProjection, self.source, output_loading_info=True
                )
            if info["missing_keys"]:
                warnings.warn(
                    f"clap: {self.source!r} lacks weights {sorted(info['missing_keys'])}",
                    stacklevel=2,
                )
        try:
            self.fe = load_pretrained(ClapFeatureExtractor, fe_source)
        except WeightsUnavailableError:  # no preprocessor_config.json: laion's HTSAT front end
            self.fe = ClapFeatureExtractor(feature_size=model.config.num_mel_bins,
                                           frequency_min=LAION_FMIN_HZ,
                                           frequency_max=LAION_FMAX_HZ)
        self.fusion = bool(model.config.enable_fusion)
        return model.eval().to(device)

    def _fe(self) -> ClapFeatureExtractor:
        if self.fe is None:
            raise RuntimeError("clap: call load() first")
        return self.fe

    def column_ms(self, model: nn.Module) -> float:
        """ms between consecutive (time-interpolated) mel columns of the HTSAT input image."""
        fe, enc = self._fe(), model.get_submodule(ENCODER)
        n_mel = fe.nb_max_samples // fe.hop_length + 1  # centred STFT frames of 10 s
        width = enc.spec_size * enc.freq_ratio
        ratio = (n_mel - 1) / (width - 1) if n_mel < width else 1.0
        return ratio * 1000.0 * fe.hop_length / fe.sampling_rate

    # ----------------------------------------------------------------- sites
    def sites(self, model: nn.Module) -> dict[str, Site]:
        enc = model.get_submodule(ENCODER)
        col_ms, out = self.column_ms(model), {}
        for s, stage in enumerate(enc.layers):
            height, width = enc.input_resolutions[s]
            span = enc.patch_stride[1] * 2**s  # image columns per token
            fold = lambda x, h=height, w=width: time_columns(x, h, w, enc.freq_ratio)
            stage_sites = transformer_sites(
                model,
                f"{ENCODER}.layers.{s}.blocks",
                self.site_kind,
                ffn="intermediate.dense",
                act="intermediate.intermediate_act_fn",
                attention="attention.output.dense",
                hop_ms=span * col_ms,
                offset_ms=(span - 1) / 2 * col_ms,
            )
            for (name, site), block in zip(stage_sites.items(), stage.blocks, strict=True):
                pre = site.transform
                if site.kind == "attention":
                    pre = lambda x, lay=block, h=height, w=width: unwindow(x, lay, h, w)
                out[name] = dataclasses.replace(site, transform=compose(pre, fold))
        return out

    # ----------------------------------------------------------------- running
    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """``input_features`` ``[B, 1 or 4, T, n_mels]`` and ``is_longer`` ``[B, 1]`` (False);
        ``extra["real_samples"]``: samples of real audio after repeat-padding."""
        fe = self._fe()
        clips, real = [], []
        for w in waveforms:
            w = np.asarray(w, dtype=np.float64).reshape(-1)[: fe.nb_max_samples]
            if len(w) == 0:
                raise ValueError("clap: empty clip")
            clips.append(w)
            real.append(len(w) * (fe.nb_max_samples // len(w)))  # whole repeats
        # fused models take 4 identical mel channels for clips <= 10 s; unfused take 1
        feats = fe(
            clips,
            sampling_rate=fe.sampling_rate,
            return_tensors="pt",
            padding="repeatpad",
            truncation="fusion" if self.fusion else "rand_trunc",
        )
        inputs = {
            "input_features": feats["input_features"].float(),
            "is_longer": torch.zeros(len(clips), 1, dtype=torch.bool),
        }
        lengths = torch.tensor([len(np.asarray(w).reshape(-1)) for w in waveforms])
        return Batch(inputs, lengths, {"real_samples": torch.tensor(real)})

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor | None:
        model(**batch.inputs)
        return None

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        """Columns whose last mel column is centred within the real (repeated) audio."""
        real_ms = batch.extra["real_samples"].double() * 1000.0 / self.sample_rate
        end_ms = site.frame_times_ms(n_frames) + site.offset_ms
        valid = end_ms[None, :] <= real_ms[:, None] + 1e-3
        valid[:, 0] = True
        return valid
