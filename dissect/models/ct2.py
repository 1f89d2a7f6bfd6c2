"""CTranslate2 Whisper checkpoints: read a ``model.bin`` (:func:`read_ct2`) and map it onto
transformers Whisper (:func:`ct2_to_transformers`); no ctranslate2 package needed.

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

import json
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from dissect.models.base import WeightsUnavailableError


class CT2FormatError(WeightsUnavailableError):
    """A CTranslate2 model directory that cannot be read or mapped onto transformers Whisper."""


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
