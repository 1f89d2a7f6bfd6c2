"""BEATs (Chen et al. 2022, "BEATs: Audio Pre-Training with Acoustic Tokenizers") in plain torch.

BEATs is not in ``transformers``. This module is a fresh implementation of the encoder that
loads the official checkpoint format of ``microsoft/unilm/beats`` (a torch file holding ``cfg``,
a dict of :class:`BEATsConfig` fields, and ``model``, a state dict) with strict key checking:
module and parameter names follow the official code exactly.

Pipeline (shapes for one batch; ``B`` clips, ``N`` samples at 16 kHz):

1. kaldi fbank: 128 mel bins, 25 ms window, 10 ms hop, input scaled to int16 range, then
   ``(fbank - 15.41663) / (2 * 6.55582)``: ``[B, T, 128]`` with ``T = 1 + (N - 400) // 160``.
2. ``patch_embedding``: Conv2d 16x16 stride 16 over (time x mel): ``[B, E, T // 16, 8]``,
   flattened **time-major**: token ``n = t * 8 + f`` (``t`` time patch, ``f`` frequency patch),
   so ``[B, (T // 16) * 8, E]``; then ``layer_norm`` and ``post_extract_proj`` (E -> D).
3. ``encoder``: wav2vec2-style convolutional positional embedding (weight-normalised grouped
   Conv1d + GELU, added), layer norm, then ``encoder_layers`` transformer layers with a
   T5-style bucketed relative position bias shared by all layers, gated per query
   (``gru_rel_pos``), and DeepNorm residual scaling (``x * alpha + f(x)``, post-norm).
4. fine-tuned checkpoints only: ``predictor`` Linear on every token, averaged over the valid
   tokens, sigmoid.

Differences from the official code (outputs are otherwise the same):

* Batch-first layout ``[B, N, D]`` inside the encoder (the official one uses ``[N, B, D]``),
  so forward hooks on ``encoder.layers.{i}`` and its sub-modules see batch-first tensors.
* Padding mask: the official ``forward_padding_mask`` reshapes the sample-level mask into
  equal chunks per token, which in the time-major token order marks roughly 2 fbank frames per
  token and can misplace the boundary by one time patch. Here a time patch is padding exactly
  when it is not fully covered by real fbank frames (``t >= n_valid_frames // 16``), which is
  also the set of patches a clip has when run alone, so a zero-padded clip inside a batch gives
  the same valid tokens as the clip alone (padded tokens are zeroed before the positional conv
  and masked as attention keys, and everything else is per token).
* The FFN activation ``glu`` (not used by any released checkpoint) is not supported.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as ta_kaldi
from torch import nn

SAMPLE_RATE = 16000
N_MELS = 128
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
WINDOW_SAMPLES = 400  # 25 ms at 16 kHz
HOP_SAMPLES = 160  # 10 ms at 16 kHz
ATTN_ALPHA = 32.0  # the official attention rescaling constant (keeps fp16 logits in range)


class BEATsCheckpointError(ValueError):
    """A file is not a loadable BEATs checkpoint; the message names the file."""


@dataclass
class BEATsConfig:
    """The fields of the official ``BEATsConfig`` (defaults as there).

    ``extra`` keeps keys of a checkpoint's ``cfg`` that this implementation does not use.
    """

    input_patch_size: int = -1  # patch size of the patch embedding (16 in all checkpoints)
    embed_dim: int = 512  # patch embedding dimension
    conv_bias: bool = False  # bias in the patch embedding conv
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 1.0  # training only
    layer_norm_first: bool = False  # pre-norm layers (else post-norm)
    deep_norm: bool = False  # DeepNorm residual scaling (post-norm only)
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0  # training only
    dropout_input: float = 0.0
    conv_pos: int = 128  # kernel size of the convolutional positional embedding
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False  # gated relative position bias
    finetuned_model: bool = False  # has the ``predictor`` head
    predictor_dropout: float = 0.1
    predictor_class: int = 527
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> BEATsConfig:
        """Build from a checkpoint's ``cfg`` dict; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in cfg.items() if k in names}
        return cls(**known, extra={k: v for k, v in cfg.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        """The ``cfg`` dict as stored in official checkpoints."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out

    @property
    def freq_patches(self) -> int:
        """Patches along the mel axis (8 for 16x16 patches over 128 mel bins)."""
        return N_MELS // self.input_patch_size


# --------------------------------------------------------------------------- preprocessing
def fbank(waveform: torch.Tensor) -> torch.Tensor:
    """Normalised kaldi fbank of one or more equal-length waveforms.

    Args:
        waveform: float ``[N]`` or ``[B, N]`` in [-1, 1] at 16 kHz.

    Returns:
        float32 ``[T, 128]`` or ``[B, T, 128]``, ``T = 1 + (N - 400) // 160`` frames
        (10 ms hop; 0 frames when ``N < 400``).
    """
    batched = waveform.dim() == 2
    waves = waveform if batched else waveform[None]
    feats = [
        ta_kaldi.fbank(
            w[None].float() * 2**15,
            num_mel_bins=N_MELS,
            sample_frequency=SAMPLE_RATE,
            frame_length=25,
            frame_shift=10,
        )
        for w in waves
    ]
    out = (torch.stack(feats) - FBANK_MEAN) / (2 * FBANK_STD)
    return out if batched else out[0]


def n_fbank_frames(n_samples: torch.Tensor | int) -> torch.Tensor:
    """Kaldi frames (``snip_edges``) of ``n_samples`` samples: ``1 + (n - 400) // 160``, >= 0."""
    n = torch.as_tensor(n_samples, dtype=torch.long)
    return torch.where(n >= WINDOW_SAMPLES, 1 + (n - WINDOW_SAMPLES) // HOP_SAMPLES, 0)


# --------------------------------------------------------------------------- building blocks
class WeightNormConv1d(nn.Module):
    """Conv1d with weight normalisation over dim 2 (``nn.utils.weight_norm(..., dim=2)``).

    Stores ``weight_g`` ``[1, 1, K]``, ``weight_v`` ``[C_out, C_in / groups, K]`` and ``bias``,
    the names of the official checkpoints. ``weight = g * v / ||v||``, the norm taken over the
    output and input channels for each kernel tap.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        self.padding = kernel_size // 2
        self.groups = groups
        std = math.sqrt(4.0 / (kernel_size * channels))
        v = torch.randn(channels, channels // groups, kernel_size) * std
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(v.norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(channels))

    def weight(self) -> torch.Tensor:
        v = self.weight_v
        return v * (self.weight_g / v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, N]`` -> ``[B, C, N + 1 - K % 2]`` (zero padding ``K // 2`` on both sides)."""
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)


class TrimLast(nn.Module):
    """Drop the last step of ``[B, C, N]`` for an even kernel ("same" padding)."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : x.shape[2] - self.remove]


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x.float()).type_as(x)


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x.float(), approximate="tanh").type_as(x)


ACTIVATIONS = {
    "relu": F.relu,
    "gelu": _gelu,
    "gelu_fast": _gelu_tanh,
    "gelu_accurate": _gelu_tanh,
    "tanh": torch.tanh,
    "linear": lambda x: x,
}


def activation(name: str):
    """The FFN activation called ``name`` in a BEATs config."""
    if name not in ACTIVATIONS:
        raise ValueError(f"BEATs activation {name!r} is not supported; use one of "
                         f"{sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def relative_position_bucket(relative: torch.Tensor, num_buckets: int, max_distance: int
                             ) -> torch.Tensor:
    """Bidirectional T5 buckets of ``relative = key_pos - query_pos`` (long, any shape).

    Half of the buckets for each sign; within a half, exact buckets below ``num_buckets // 4``
    and logarithmic ones up to ``max_distance`` beyond.
    """
    half = num_buckets // 2
    bucket = (relative > 0).long() * half
    dist = relative.abs()
    max_exact = half // 2
    log_ratio = torch.log(dist.clamp(min=1).float() / max_exact)
    log_ratio = log_ratio / math.log(max_distance / max_exact)
    large = (max_exact + (log_ratio * (half - max_exact)).long()).clamp(max=half - 1)
    return bucket + torch.where(dist < max_exact, dist, large)


class MultiheadAttention(nn.Module):
    """Self-attention with an optional (gated) relative position bias; batch-first.

    Parameters as in the official model: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``,
    ``relative_attention_bias`` (Embedding ``[num_buckets, heads]``, shared by all layers),
    and for the gate ``grep_linear`` (head_dim -> 8) and ``grep_a`` ``[1, H, 1, 1]``.
    """

    def __init__(self, cfg: BEATsConfig, has_relative_attention_bias: bool):
        super().__init__()
        d, h = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        if d % h:
            raise ValueError(f"encoder_embed_dim {d} is not divisible by {h} heads")
        self.num_heads, self.head_dim = h, d // h
        self.scaling = self.head_dim**-0.5
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        self.dropout = nn.Dropout(cfg.attention_dropout)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.q_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, h)
        self.gru_rel_pos = cfg.gru_rel_pos
        if self.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, h, 1, 1))

    def compute_bias(self, n_query: int, n_key: int) -> torch.Tensor:
        """Relative position bias ``[H, n_query, n_key]`` from the shared embedding."""
        dev = self.relative_attention_bias.weight.device
        rel = torch.arange(n_key, device=dev)[None, :] - torch.arange(n_query, device=dev)[:, None]
        buckets = relative_position_bucket(rel, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
                position_bias: torch.Tensor | None = None) -> torch.Tensor:
        """Attend ``x`` ``[B, N, D]`` to itself.

        Args:
            key_padding_mask: bool ``[B, N]``, True for padding keys (never attended to).
            position_bias: ``[H, N, N]`` (see :meth:`compute_bias`) or None.

        Returns:
            ``out_proj`` output ``[B, N, D]``.
        """
        B, N, D = x.shape
        H, hd = self.num_heads, self.head_dim

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, N, H, hd).transpose(1, 2)  # [B, H, N, hd]

        q_raw = heads(self.q_proj(x))
        k, v = heads(self.k_proj(x)), heads(self.v_proj(x))
        # scores * scaling, computed as in the official code: q scaled down by alpha before the
        # product and the row max subtracted before scaling back up (same softmax, fp16-safe)
        w = (q_raw * (self.scaling / ATTN_ALPHA)) @ k.transpose(-1, -2)
        w = (w - w.amax(dim=-1, keepdim=True)) * ATTN_ALPHA
        if key_padding_mask is not None:
            w = w.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        if position_bias is not None:
            bias = position_bias[None]  # [1, H, N, N]
            if self.gru_rel_pos:
                g = torch.sigmoid(self.grep_linear(q_raw).view(B, H, N, 2, 4).sum(-1))
                gate_a, gate_b = g.chunk(2, dim=-1)  # [B, H, N, 1] each
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias
            w = w + bias
        attn = self.dropout(F.softmax(w, dim=-1).type_as(w))
        out = (attn @ v).transpose(1, 2).reshape(B, N, D)
        return self.out_proj(out)


class TransformerSentenceEncoderLayer(nn.Module):
    """One transformer layer: ``self_attn`` and FFN ``fc1`` -> activation -> ``fc2``.

    Post-norm (default, with DeepNorm when ``deep_norm``): ``LN(x * alpha + f(x))`` with
    ``alpha = (2 * layers) ** 0.25``; pre-norm when ``layer_norm_first``. Batch-first.
    """

    def __init__(self, cfg: BEATsConfig, has_relative_attention_bias: bool):
        super().__init__()
        d = cfg.encoder_embed_dim
        self.activation_fn = activation(cfg.activation_fn)
        self.self_attn = MultiheadAttention(cfg, has_relative_attention_bias)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.activation_dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)
        self.layer_norm_first = cfg.layer_norm_first
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.deep_norm_alpha = (2 * cfg.encoder_layers) ** 0.25 if cfg.deep_norm else 1.0

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(self.fc2(self.dropout2(self.activation_fn(self.fc1(x)))))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                position_bias: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, N, D]`` -> ``[B, N, D]`` (the residual stream after this layer)."""
        if self.layer_norm_first:
            x = x + self.dropout1(self.self_attn(self.self_attn_layer_norm(x), padding_mask,
                                                 position_bias))
            return x + self._ffn(self.final_layer_norm(x))
        a = self.deep_norm_alpha
        x = self.self_attn_layer_norm(x * a + self.dropout1(self.self_attn(x, padding_mask,
                                                                           position_bias)))
        return self.final_layer_norm(x * a + self._ffn(x))


class TransformerEncoder(nn.Module):
    """Positional conv + ``encoder_layers`` layers (``layers``) + ``layer_norm``; batch-first."""

    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        d = cfg.encoder_embed_dim
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(d, cfg.conv_pos, cfg.conv_pos_groups),
            TrimLast(cfg.conv_pos),
            nn.GELU(),
        )
        self.relative_position_embedding = cfg.relative_position_embedding
        self.layers = nn.ModuleList(
            TransformerSentenceEncoderLayer(cfg, cfg.relative_position_embedding)
            for _ in range(cfg.encoder_layers)
        )
        if self.relative_position_embedding:  # one bias table, shared (and saved per layer)
            shared = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = shared
        self.layer_norm_first = cfg.layer_norm_first
        self.layer_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                return_layers: bool = False
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Encode ``x`` ``[B, N, D]`` (bool ``padding_mask`` ``[B, N]``, True = padding).

        Returns:
            ``(x, layer_results)``: the final ``[B, N, D]`` and, with ``return_layers``, the
            input of layer 0 followed by the output of every layer (else ``[]``).
        """
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[:, :, None], 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        bias = None
        if self.relative_position_embedding:
            bias = self.layers[0].self_attn.compute_bias(x.shape[1], x.shape[1])
        results = [x] if return_layers else []
        for layer in self.layers:
            x = layer(x, padding_mask, bias)
            if return_layers:
                results.append(x)
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x, results


class BEATs(nn.Module):
    """The BEATs model (encoder, plus the ``predictor`` head of fine-tuned checkpoints)."""

    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        if cfg.input_patch_size <= 0 or N_MELS % cfg.input_patch_size:
            raise ValueError(f"BEATs input_patch_size must divide {N_MELS}, got "
                             f"{cfg.input_patch_size}")
        if cfg.deep_norm and cfg.layer_norm_first:
            raise ValueError("BEATs: deep_norm and layer_norm_first are exclusive")
        self.cfg = cfg
        e, d = cfg.embed_dim, cfg.encoder_embed_dim
        self.post_extract_proj = nn.Linear(e, d) if e != d else None
        p = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, e, kernel_size=p, stride=p, bias=cfg.conv_bias)
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = TransformerEncoder(cfg)
        self.layer_norm = nn.LayerNorm(e)
        if cfg.finetuned_model:
            self.predictor_dropout = nn.Dropout(cfg.predictor_dropout)
            self.predictor = nn.Linear(d, cfg.predictor_class)
        else:
            self.predictor = None
        self.label_dict: dict | None = None  # set by load_beats_checkpoint

    def token_padding_mask(self, n_valid_frames: torch.Tensor, n_time_patches: int
                           ) -> torch.Tensor:
        """Bool ``[B, n_time_patches * F]``, True for tokens of time patches not fully covered
        by the ``n_valid_frames`` ``[B]`` real fbank frames (at least one patch stays valid)."""
        p, f = self.cfg.input_patch_size, self.cfg.freq_patches
        n_valid = (n_valid_frames.to(torch.long) // p).clamp(min=1)
        t = torch.arange(n_time_patches, device=n_valid.device)
        pad = t[None, :] >= n_valid[:, None]  # [B, T_p]
        return pad[:, :, None].expand(-1, -1, f).reshape(pad.shape[0], -1)

    def encode(self, source: torch.Tensor, padding_mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the encoder.

        Args:
            source: waveform ``[B, N]`` (16 kHz, [-1, 1]) or normalised fbank ``[B, T, 128]``
                (see :func:`fbank`).
            padding_mask: bool, True for padding at the end of a clip: ``[B, N]`` samples for a
                waveform, ``[B, T]`` frames for an fbank; None when nothing is padded.

        Returns:
            ``(x, token_mask)``: ``[B, T_p * F, D]`` tokens in time-major order (token
            ``t * F + f``; ``T_p = T // 16`` time patches, ``F = 8`` frequency patches) and the
            bool token padding mask ``[B, T_p * F]`` (None without ``padding_mask``).
        """
        if source.dim() == 2:
            feats = fbank(source)
            if padding_mask is not None:
                padding_mask = padding_mask.to(source.device)
                n_frames = n_fbank_frames((~padding_mask).sum(1))
        elif source.dim() == 3:
            feats = source
            if padding_mask is not None:
                n_frames = (~padding_mask.to(source.device)).sum(1)
        else:
            raise ValueError(f"BEATs input must be [B, N] audio or [B, T, 128] fbank, got "
                             f"{tuple(source.shape)}")
        if feats.shape[1] < self.cfg.input_patch_size:
            raise ValueError(f"BEATs needs at least {self.cfg.input_patch_size} fbank frames "
                             f"({self.cfg.input_patch_size * 10 + 15} ms), got {feats.shape[1]}")
        x = self.patch_embedding(feats[:, None])  # [B, E, T_p, F]
        n_time_patches = x.shape[2]
        x = self.layer_norm(x.flatten(2).transpose(1, 2))  # [B, T_p * F, E], time-major
        mask = None
        if padding_mask is not None:
            mask = self.token_padding_mask(n_frames, n_time_patches)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        x, _ = self.encoder(self.dropout_input(x), mask)
        return x, mask

    def clip_logits(self, x: torch.Tensor, token_mask: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """Head logits ``[B, C]``: ``predictor`` per token, averaged over valid tokens."""
        if self.predictor is None:
            raise ValueError("this BEATs checkpoint has no predictor head (finetuned_model=False)")
        logits = self.predictor(self.predictor_dropout(x))  # [B, N, C]
        if token_mask is None:
            return logits.mean(1)
        keep = (~token_mask)[:, :, None].to(logits.dtype)
        return (logits * keep).sum(1) / keep.sum(1)

    def extract_features(self, source: torch.Tensor, padding_mask: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Official semantics: ``(features [B, N, D], token_mask)`` for a pre-trained model,
        ``(sigmoid(clip_logits) [B, C], token_mask)`` for a fine-tuned one."""
        x, mask = self.encode(source, padding_mask)
        if self.predictor is None:
            return x, mask
        return torch.sigmoid(self.clip_logits(x, mask)), mask

    def forward(self, source: torch.Tensor, padding_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same as :meth:`extract_features`."""
        return self.extract_features(source, padding_mask)


def _format_keys(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_beats_checkpoint(path: str | Path, device: torch.device | str = "cpu",
                          trust_pickle: bool = False) -> tuple[BEATs, BEATsConfig]:
    """Load an official BEATs checkpoint (``{"cfg": dict, "model": state_dict, ...}``).

    Args:
        path: the ``.pt`` file (e.g. ``BEATs_iter3.pt``, ``BEATs_iter3_plus_AS2M.pt``).
        device: where the model goes; it is returned in eval mode.
        trust_pickle: load with ``weights_only=False`` (runs arbitrary pickled code; only for
            files you trust) when the safe loader refuses the file.

    Returns:
        ``(model, cfg)``. ``model.label_dict`` is the checkpoint's ``label_dict`` (fine-tuned
        checkpoints: class index -> AudioSet label id) or None.

    Raises:
        FileNotFoundError: no such file.
        BEATsCheckpointError: unreadable, not a BEATs checkpoint (no ``cfg``/``model``), or
            state-dict keys that do not match the config (missing and unexpected keys listed).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"BEATs checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        raise BEATsCheckpointError(
            f"{path}: the safe loader (weights_only=True) refused this file ({exc}). If you "
            f"trust it, load it with trust_pickle=True (model option trust_pickle=true)."
        ) from exc
    except Exception as exc:  # any other read failure: not a torch checkpoint
        raise BEATsCheckpointError(f"{path}: cannot read as a torch checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or "cfg" not in ckpt or "model" not in ckpt:
        found = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise BEATsCheckpointError(
            f"{path} is not a BEATs checkpoint: expected a dict with 'cfg' and 'model' entries "
            f"(the official microsoft/unilm format), found {found}"
        )
    cfg_raw = ckpt["cfg"]
    if not isinstance(cfg_raw, dict):
        cfg_raw = getattr(cfg_raw, "__dict__", None)
    if not isinstance(cfg_raw, dict) or not isinstance(ckpt["model"], dict):
        raise BEATsCheckpointError(f"{path}: 'cfg' and 'model' must be dicts")
    cfg = BEATsConfig.from_dict(cfg_raw)
    try:
        model = BEATs(cfg)
    except ValueError as exc:
        raise BEATsCheckpointError(f"{path}: bad BEATs config: {exc}") from exc
    state = ckpt["model"]
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise BEATsCheckpointError(
            f"{path}: state dict does not match the BEATs config "
            f"(finetuned_model={cfg.finetuned_model}, layers={cfg.encoder_layers}). "
            f"Missing keys: [{_format_keys(missing)}]. Unexpected keys: "
            f"[{_format_keys(unexpected)}]"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatches
        raise BEATsCheckpointError(f"{path}: {exc}") from exc
    labels = ckpt.get("label_dict")
    model.label_dict = dict(labels) if isinstance(labels, dict) else None
    return model.to(device).eval(), cfg
