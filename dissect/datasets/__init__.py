"""Probe sets: deterministic, ordered clip collections with labels and ground-truth concepts.

:func:`build_probe_set` turns a :class:`~dissect.config.ProbeConfig` into a :class:`ProbeSet`.
Each layout lives in its own module and is imported only when used.
"""

from __future__ import annotations

from pathlib import Path

from dissect.datasets.base import (
    Clip,
    DuplicateClipIdError,
    ProbeSet,
    SkipLog,
    TooManySkipsError,
)

LAYOUTS = ("synth", "folder", "esc50", "urbansound8k", "gtzan", "spoken_digit", "hear")


def build_probe_set(cfg, progress: bool = True) -> ProbeSet:
    """Build the probe set described by ``cfg`` (a ProbeConfig or a DictConfig with its fields).

    Raises:
        ValueError: unknown layout, or a layout that needs ``root`` without one.
    """
    layout = cfg.layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown probe layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "synth":
        from dissect.datasets.synth import load_synth

        probe = load_synth(cfg.synth, progress=progress)
        return probe.subset(cfg.limit)
    if not cfg.root:
        raise ValueError(f"probe layout {layout!r} needs probe.root=<dataset directory>")
    root = Path(cfg.root).expanduser()
    folds = list(cfg.folds) if cfg.folds is not None else None
    if layout == "folder":
        from dissect.datasets.folder import load_folder

        probe = load_folder(
            root,
            metadata=cfg.metadata,
            path_column=cfg.path_column,
            label_columns=list(cfg.label_columns) or None,
        )
    elif layout == "esc50":
        from dissect.datasets.esc50 import load_esc50

        probe = load_esc50(root, folds=folds)
    elif layout == "urbansound8k":
        from dissect.datasets.urbansound8k import load_urbansound8k

        probe = load_urbansound8k(root, folds=folds)
    elif layout == "gtzan":
        from dissect.datasets.gtzan import load_gtzan

        probe = load_gtzan(root)
    elif layout == "spoken_digit":
        from dissect.datasets.spoken_digit import load_spoken_digit

        probe = load_spoken_digit(root)
    else:
        from dissect.datasets.hear_task import load_hear_task

        splits = list(cfg.splits) if cfg.splits is not None else None
        probe = load_hear_task(root, splits=splits)
    return probe.subset(cfg.limit)


__all__ = [
    "LAYOUTS",
    "Clip",
    "DuplicateClipIdError",
    "ProbeSet",
    "SkipLog",
    "TooManySkipsError",
    "build_probe_set",
]
