"""Probe sets: deterministic, ordered clip collections with labels and ground-truth concepts.

:func:`build_probe_set` turns a :class:`~dissect.config.ProbeConfig` into a :class:`ProbeSet`.
Each layout lives in its own module and is imported only when used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dissect.datasets.base import (
    Clip,
    DuplicateClipIdError,
    ProbeSet,
    SkipLog,
    TooManySkipsError,
)
from dissect.registry import Registry

#: Probe-set loaders by layout: ``PROBE_LAYOUTS.get(layout)(cfg, progress)`` -> a ProbeSet
#: (before ``probe.limit``). Each layout's module is imported only when it is used.
PROBE_LAYOUTS: Registry[Callable[..., ProbeSet]] = Registry("probe layout")


@PROBE_LAYOUTS.register("synth")
def _synth(cfg, progress: bool) -> ProbeSet:
    from dissect.datasets.synth import load_synth

    return load_synth(cfg.synth, progress=progress)


@PROBE_LAYOUTS.register("espeak_digits")
def _espeak_digits(cfg, progress: bool) -> ProbeSet:
    from dissect.datasets.espeak_digits import load_espeak_digits

    return load_espeak_digits(cfg.espeak_digits, progress=progress)


def _root(cfg) -> Path:
    if not cfg.root:
        raise ValueError(f"probe layout {cfg.layout!r} needs probe.root=<dataset directory>")
    return Path(cfg.root).expanduser()


def _folds(cfg) -> list[int] | None:
    return list(cfg.folds) if cfg.folds is not None else None


@PROBE_LAYOUTS.register("folder")
def _folder(cfg, progress: bool) -> ProbeSet:
    from dissect.datasets.folder import load_folder

    return load_folder(_root(cfg), metadata=cfg.metadata, path_column=cfg.path_column,
                       label_columns=list(cfg.label_columns) or None)


@PROBE_LAYOUTS.register("esc50")
def _esc50(cfg, progress: bool) -> ProbeSet:
    from dissect.datasets.esc50 import load_esc50

    return load_esc50(_root(cfg), folds=_folds(cfg))


@PROBE_LAYOUTS.register("urbansound8k")
def _urbansound8k(cfg, progress: bool) -> ProbeSet:
    from dissect.datasets.urbansound8k import load_urbansound8k

    return load_urbansound8k(_root(cfg), folds=_folds(cfg))


@PROBE_LAYOUTS.register("gtzan")
def _gtzan(cfg, progress: bool) -> ProbeSet:
    from dissect.datasets.gtzan import load_gtzan

    return load_gtzan(_root(cfg))


@PROBE_LAYOUTS.register("spoken_digit")
def _spoken_digit(cfg, progress: bool) -> ProbeSet:
    from dissect.datasets.spoken_digit import load_spoken_digit

    return load_spoken_digit(_root(cfg))


@PROBE_LAYOUTS.register("hear")
def _hear(cfg, progress: bool) -> ProbeSet:
    from dissect.datasets.hear_task import load_hear_task

    return load_hear_task(_root(cfg), splits=list(cfg.splits) if cfg.splits is not None else None)


LAYOUTS = tuple(PROBE_LAYOUTS.names())


def build_probe_set(cfg, progress: bool = True) -> ProbeSet:
    """Build the probe set described by ``cfg`` (a ProbeConfig or a DictConfig with its fields).

    Raises:
        ValueError: unknown layout (:class:`~dissect.registry.UnknownNameError`, listing the
            valid ones), or a layout that needs ``root`` without one.
    """
    return PROBE_LAYOUTS.get(cfg.layout)(cfg, progress).subset(cfg.limit)


__all__ = [
    "LAYOUTS",
    "PROBE_LAYOUTS",
    "Clip",
    "DuplicateClipIdError",
    "ProbeSet",
    "SkipLog",
    "TooManySkipsError",
    "build_probe_set",
]
