"""Adapter registry: name -> adapter class (a :class:`~dissect.registry.Registry`).
Registering a name twice is an error.

Every module of ``dissect/models/`` is imported on the first lookup (so importing
``dissect.models`` stays cheap): adding a model is one adapter file decorated with
:func:`register` plus its checkpoint lines in :mod:`dissect.models.bundles`.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any

from dissect.models.base import Adapter
from dissect.registry import DuplicateNameError, Registry

# Modules of dissect/models/ that declare no adapter (not imported by the registry).
_NOT_ADAPTERS = frozenset({"base", "registry", "bundles"})

#: Modules imported on the first lookup: every public module in ``dissect/models/``.
ADAPTER_MODULES: tuple[str, ...] = tuple(
    f"dissect.models.{m.name}" for m in pkgutil.iter_modules([str(Path(__file__).parent)])
    if not m.name.startswith("_") and m.name not in _NOT_ADAPTERS)

ADAPTERS: Registry[type[Adapter]] = Registry("model adapter", modules=ADAPTER_MODULES)

_REGISTRY = ADAPTERS._items  # the name -> class table itself (read-only use)

#: Raised when an adapter name is already registered (kept under its old name).
DuplicateAdapterError = DuplicateNameError


def register(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: register ``cls`` under ``cls.name``; refuse duplicates."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    return ADAPTERS.add(cls.name, cls)


def available() -> list[str]:
    """Registered adapter names, sorted."""
    return sorted(ADAPTERS.names())


def get_adapter(name: str, **kwargs: Any) -> Adapter:
    """Instantiate the adapter registered as ``name``.

    Raises:
        dissect.registry.UnknownNameError: (a ``KeyError``) the message lists the valid names.
    """
    return ADAPTERS.get(name)(**kwargs)
