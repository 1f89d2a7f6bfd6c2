"""``Registry[T]``: one name -> object table per kind of plug-in (model adapters, checkpoint
bundles, captioners, LLM clients, probe layouts, similarity functions, closed-set methods,
scorers).

A registry refuses a second, different object under a taken name (the error names both owners),
and an unknown name raises :class:`UnknownNameError` (a ``KeyError`` that is also a
``ValueError``) whose message lists the valid names::

    SIMILARITIES = Registry("similarity")

    @SIMILARITIES.register("cos")
    def cos(U, P): ...

    SIMILARITIES.get("bogus")  # UnknownNameError: unknown similarity 'bogus'; valid: cos

``modules`` (a sequence of module names, or a callable returning one) are imported on the first
lookup, so entries that register themselves on import are found without importing them up front.

This module is the bottom layer: it imports nothing from ``dissect``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(ValueError):
    """A name is already registered by a different object."""


def owner_of(obj: Any) -> str:
    """``module.qualname`` of ``obj`` (of its type for instances), to name it in errors."""
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


class Registry(Generic[T]):
    """Named objects of one ``kind`` (used in error messages), in registration order."""

    def __init__(self, kind: str, modules: Sequence[str] | Callable[[], Sequence[str]] = ()):
        self.kind = kind
        self._modules = modules
        self._imported = not modules
        self._items: dict[str, T] = {}

    # ------------------------------------------------------------------ registering
    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` as ``name``; registering the same object again is a no-op.

        Raises:
            DuplicateNameError: ``name`` is taken by a different object (names both owners).
        """
        if not name:
            raise ValueError(f"{self.kind}: {owner_of(obj)} has no name")
        old = self._items.get(name)
        if old is not None and old is not obj:
            raise DuplicateNameError(f"{self.kind} {name!r} is already registered by "
                                     f"{owner_of(old)}; refusing {owner_of(obj)}")
        self._items[name] = obj
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REG.register("name")``."""
        return lambda obj: self.add(name, obj)

    # ------------------------------------------------------------------ looking up
    def _load(self) -> None:
        if self._imported:
            return
        self._imported = True  # before importing: the modules register into this registry
        mods = self._modules() if callable(self._modules) else self._modules
        for mod in mods:
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as exc:
                if exc.name != mod:  # a real missing dependency inside the module: surface it
                    self._imported = False
                    raise

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        self._load()
        return list(self._items)

    def unknown(self, name: Any) -> UnknownNameError:
        """The error for an unknown ``name`` (lists the valid names)."""
        return UnknownNameError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")

    def get(self, name: str) -> T:
        """The object registered as ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered (the message lists the valid names).
        """
        self._load()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise self.unknown(name) from None

    def check(self, name: Any) -> None:
        """Raise :class:`UnknownNameError` unless ``name`` is registered."""
        self.get(name)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def keys(self) -> list[str]:
        return self.names()

    def values(self) -> list[T]:
        self._load()
        return list(self._items.values())

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return list(self._items.items())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._items)})"
