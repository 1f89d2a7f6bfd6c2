"""Adapter registry: name -> adapter class. Registering a name twice is an error."""

from __future__ import annotations

import importlib
from typing import Any

from dissect.models.base import Adapter

_REGISTRY: dict[str, type[Adapter]] = {}

# Adapter modules imported on first lookup (so importing dissect.models stays cheap).
# Adding a model = one file in dissect/models/ plus one line here.
ADAPTER_MODULES = (
    "dissect.models.crepe",
    "dissect.models.whisper",
    "dissect.models.ssl",
    "dissect.models.ast",
    "dissect.models.clap",
    "dissect.models.beats",
    "dissect.models.generic",
)


class DuplicateAdapterError(ValueError):
    """An adapter name is already registered."""


def register(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: register ``cls`` under ``cls.name``; refuse duplicates."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise DuplicateAdapterError(
            f"adapter name {cls.name!r} is already registered by {_REGISTRY[cls.name].__module__}"
        )
    _REGISTRY[cls.name] = cls
    return cls


def _import_all() -> None:
    for mod in ADAPTER_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a real missing dependency inside the module: surface it
                raise


def available() -> list[str]:
    """Registered adapter names, sorted."""
    _import_all()
    return sorted(_REGISTRY)


def get_adapter(name: str, **kwargs: Any) -> Adapter:
    """Instantiate the adapter registered as ``name``."""
    _import_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model adapter {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)
