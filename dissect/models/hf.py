"""Shared helpers for adapters backed by Hugging Face ``transformers`` models."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from dissect.models.base import (
    AND_SITE_KIND,
    TRANSFORMER_SITE_KINDS,
    Site,
    WeightsUnavailableError,
)

_TRUE = {"1", "true", "yes", "on"}


def hf_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for no network."""
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in flags)


def local_path(source: str) -> Path | None:
    """``source`` as an existing local path, else None (it is then a Hub id).

    Raises:
        WeightsUnavailableError: ``source`` looks like a path (``/``, ``.``, ``~``) but is missing.
    """
    path = Path(source).expanduser()
    if path.exists():
        return path
    if source.startswith(("/", ".", "~")):
        raise WeightsUnavailableError(f"local path {source!r} does not exist")
    return None


def load_pretrained(cls: Any, source: str, **kw: Any) -> Any:
    """``cls.from_pretrained(source, **kw)`` from a Hub id or a local directory.

    Only local files are read when ``HF_HUB_OFFLINE=1`` or ``source`` is a path; works for model,
    config and feature-extractor classes alike.

    Raises:
        WeightsUnavailableError: naming ``source`` and how to pass a local path instead.
    """
    path = local_path(source)
    try:
        return cls.from_pretrained(
            str(path) if path else source, local_files_only=path is not None or hf_offline(), **kw
        )
    except OSError as exc:
        where = "local path" if path else "offline cache" if hf_offline() else "Hugging Face Hub"
        raise WeightsUnavailableError(
            f"cannot load {cls.__name__} from {source!r} via {where}: {exc}. Download the "
            f"checkpoint once and pass its local path instead (e.g. model.source=/path/to/dir)."
        ) from exc


def _attr(obj: Any, dotted: str) -> Any:
    return functools.reduce(getattr, dotted.split("."), obj)


def transformer_sites(
    model: nn.Module,
    blocks: str,
    kind: str,
    *,
    ffn: str,
    act: str,
    attention: str,
    hop_ms: float,
    offset_ms: float = 0.0,
    linears: Sequence[str] = (),
) -> dict[str, Site]:
    """Sites of ``kind`` for every block of the ``nn.ModuleList`` at ``blocks``.

    Args:
        model: the network; ``blocks`` is the dotted name of its list of transformer blocks.
        kind: one of ``TRANSFORMER_SITE_KINDS``: ``ffn`` = ``ffn`` module + ``act`` transform,
            ``ffn_pre`` = the ``ffn`` module, ``attention`` = the ``attention`` module (the
            attention output projection), ``block`` = the block itself, ``and`` = one site per
            module of ``linears`` (AND's neurons: every output unit of each ``nn.Linear``,
            pre-activation, no transform).
        ffn, act, attention: paths relative to a block (``act`` may be a plain attribute).
        hop_ms, offset_ms: the frame timing of every site.
        linears: paths relative to a block of the ``nn.Linear`` modules recorded for ``and``,
            in forward order; empty when the adapter does not offer ``and``.

    Returns:
        ``{site name: Site}`` in block order (for ``and``, the ``linears`` order within a
        block); units = the FFN width for ffn kinds, ``out_features`` for ``and``, else the
        block width (the FFN input size).

    Raises:
        ValueError: an unknown ``kind``, or ``and`` with no ``linears``.
        TypeError: a module of ``linears`` is not an ``nn.Linear``.
    """
    if kind not in TRANSFORMER_SITE_KINDS:
        raise ValueError(f"unknown site kind {kind!r}; choose one of {TRANSFORMER_SITE_KINDS}")
    if kind == AND_SITE_KIND and not linears:
        others = [k for k in TRANSFORMER_SITE_KINDS if k != AND_SITE_KIND]
        raise ValueError(f"site kind 'and' is not available for {type(model).__name__}; "
                         f"choose one of {others}")
    out: dict[str, Site] = {}
    for i, block in enumerate(model.get_submodule(blocks)):
        prefix = f"{blocks}.{i}"
        if kind == AND_SITE_KIND:
            for path in linears:
                linear = block.get_submodule(path)
                if not isinstance(linear, nn.Linear):
                    raise TypeError(f"site kind 'and': {prefix}.{path} is a "
                                    f"{type(linear).__name__}, not an nn.Linear")
                name = f"{prefix}.{path}"
                out[name] = Site(name, name, linear.out_features, kind, hop_ms, offset_ms)
            continue
        dense = block.get_submodule(ffn)
        if kind in ("ffn", "ffn_pre"):
            name, units = f"{prefix}.{ffn}", dense.out_features
            transform = _attr(block, act) if kind == "ffn" else None
        elif kind == "attention":
            name, units, transform = f"{prefix}.{attention}", dense.in_features, None
        else:
            name, units, transform = prefix, dense.in_features, None
        out[name] = Site(name, name, units, kind, hop_ms, offset_ms, transform)
    return out


def compose(first: Callable | None, then: Callable) -> Callable:
    """``then(first(x))``, or ``then`` alone when ``first`` is None (for ``Site.transform``)."""
    return then if first is None else (lambda x: then(first(x)))


def first_module(model: nn.Module, *paths: str) -> str:
    """The first of ``paths`` that names a module of ``model`` (module layouts differ between
    transformers versions). Raises LookupError naming all candidates."""
    for p in paths:
        try:
            model.get_submodule(p)
            return p
        except AttributeError:
            continue
    raise LookupError(f"{type(model).__name__} has none of the modules {paths}")
