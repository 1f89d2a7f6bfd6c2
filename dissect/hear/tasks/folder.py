"""Any labelled folder of audio files as a HEAR scene task (:func:`write_folder_task`).

The metadata file (CSV) names each file (a path relative to the folder) and its label; rows
with an empty label are left out (unlabelled). Folds are stratified by label and *grouped*: all
files of one group (one source recording, sample kit, speaker, ...: the ``group`` column) fall in
one fold, so no source spans two folds (scikit-learn's ``StratifiedGroupKFold``, seeded). Classes
with fewer files than ``min_clips`` (default: one per fold), or found in fewer than
``min_groups`` groups, are left out and listed in the task's metadata
(``dissect.dropped_classes``, ``dissect.dropped_by_groups``), as are the rows whose file is
missing.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dissect.fields import COUNT, COUNT_OR_NULL, Range, check, option
from dissect.hear.tasks.reader import HearTask
from dissect.hear.tasks.writer import SCENE_SCORES, TaskItem, task_dir_name, write_task


@dataclass
class FolderTaskConfig:
    """The settings of ``dissect hear-tasks folder`` (``key=value`` on the command line)."""

    root: str = "???"
    """The folder of audio files (any format soundfile/torchaudio reads). Required."""
    metadata: str = "metadata.csv"
    """The CSV file naming each file and its label: a path, or a name inside ``root``."""
    label: str = "???"
    """The metadata column holding the class label. Required."""
    path_column: str = "filename"
    """The metadata column holding each file's path relative to ``root``."""
    group: str | None = None
    """A metadata column whose value keeps files together in one fold (source recording,
    sample kit, speaker); null: every file is its own group."""
    out: str = "tasks"
    """Where the task directory (``<task_name>-v1-full``) is written."""
    task_name: str | None = None
    """The task's name; null: the folder's name and the label column, e.g.
    ``free_sounds_category``."""
    folds: int = option(5, Range(3, integer=True))
    """Number of folds (HEAR's presplit_kfold; at least 3)."""
    min_clips: int | None = option(None, COUNT_OR_NULL)
    """Classes with fewer files are left out; null: one per fold."""
    min_groups: int = option(1, COUNT)
    """Classes found in fewer distinct groups are left out (a class held by one source cannot
    be tested on a source the probe never saw)."""
    seed: int = 0
    """Seed of the fold assignment."""
    sample_rate: int = option(16000, COUNT)
    """The sample rate the task's audio is written at, in Hz."""
    sample_duration: float | None = option(None, Range(0, low_open=True, none_ok=True))
    """Every clip is cut or zero-padded to this many seconds; null: the longest clip."""

    def __post_init__(self) -> None:
        check(type(self), self, "")


def _rows(meta_path: Path) -> list[dict[str, str]]:
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: no such metadata file")
    with meta_path.open(newline="", encoding="utf-8") as f:
        lines = [ln for ln in f if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def grouped_fold_items(
    rows: list[dict[str, str]], root: Path, *, label: str, path_column: str = "filename",
    group: str | None = None, folds: int = 5, min_clips: int | None = None,
    min_groups: int = 1, seed: int = 0, where: str = "metadata",
) -> tuple[list[TaskItem], dict]:
    """Metadata rows as task items with folds stratified by label and grouped by ``group``
    (scikit-learn's ``StratifiedGroupKFold``, seeded), and what was left out.

    Args:
        rows: one dict per file (``path_column`` relative to ``root``, ``label``, ``group``).
        root: the folder the paths are relative to.
        min_clips: classes with fewer files are dropped (None: one per fold).
        min_groups: classes found in fewer distinct groups are dropped too (a class held by one
            source cannot be tested on a source the probe never saw).
        where: names the metadata in error messages.

    Returns:
        ``(items, left_out)``; ``left_out`` has ``dropped_classes`` (label -> files),
        ``dropped_by_groups`` (label -> groups), ``missing_files`` and ``unlabelled``.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    labelled = [r for r in rows if (r.get(label) or "").strip()]
    missing = sorted(r[path_column] for r in labelled if not (root / r[path_column]).is_file())
    present = [r for r in labelled if (root / r[path_column]).is_file()]

    def group_of(r: dict[str, str]) -> str:
        return r[group] if group else r[path_column]

    counts = Counter(r[label].strip() for r in present)
    n_groups = {lab: len({group_of(r) for r in present if r[label].strip() == lab})
                for lab in counts}
    need = min_clips if min_clips is not None else folds
    dropped = {lab: n for lab, n in sorted(counts.items()) if n < need}
    few_groups = {lab: n_groups[lab] for lab in sorted(counts)
                  if lab not in dropped and n_groups[lab] < min_groups}
    kept = [r for r in present if r[label].strip() not in dropped and
            r[label].strip() not in few_groups]
    if len({r[label].strip() for r in kept}) < 2:
        raise ValueError(f"{where}: fewer than two classes of {label!r} have at least {need} "
                         f"files in at least {min_groups} groups (counts: {dict(counts)})")
    labels = np.array([r[label].strip() for r in kept])
    groups = np.array([group_of(r) for r in kept])
    if len(set(groups.tolist())) < folds:
        raise ValueError(f"{where}: {len(set(groups.tolist()))} groups of {group!r} cannot fill "
                         f"{folds} folds")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold = np.empty(len(kept), dtype=int)
    for i, (_, test) in enumerate(splitter.split(np.zeros(len(kept)), labels, groups)):
        fold[test] = i
    items = []
    for r, lab, f in zip(kept, labels, fold, strict=True):
        rel = r[path_column]
        name = rel.replace("/", "__").replace("\\", "__")
        name = name if name.lower().endswith(".wav") else f"{name}.wav"
        items.append(TaskItem(name=name, split=f"fold{int(f):02d}", labels=[str(lab)],
                              source=root / rel))
    left_out = {"dropped_classes": dropped, "dropped_by_groups": few_groups,
                "missing_files": missing, "unlabelled": len(rows) - len(labelled)}
    return items, left_out


def folder_task_items(cfg: FolderTaskConfig) -> tuple[list[TaskItem], dict]:
    """The task's items with their folds, and what was left out (``dropped_classes``,
    ``dropped_by_groups``, ``missing_files``, ``unlabelled``).

    Raises:
        FileNotFoundError: the folder or metadata file is missing.
        ValueError: a named column is not in the metadata (the columns are listed), or fewer
            than two classes are left.
    """
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    meta_path = Path(cfg.metadata).expanduser()
    if not meta_path.is_absolute() and not meta_path.is_file():
        meta_path = root / cfg.metadata
    rows = _rows(meta_path)
    columns = list(rows[0]) if rows else []
    for what, col in (("label", cfg.label), ("path_column", cfg.path_column),
                      ("group", cfg.group)):
        if col is not None and col not in columns:
            raise ValueError(f"{meta_path}: {what}={col!r} is not a column; columns: {columns}")
    return grouped_fold_items(rows, root, label=cfg.label, path_column=cfg.path_column,
                              group=cfg.group, folds=cfg.folds, min_clips=cfg.min_clips,
                              min_groups=cfg.min_groups, seed=cfg.seed, where=str(meta_path))


def write_folder_task(cfg: FolderTaskConfig, progress=None) -> HearTask:
    """Write the folder as a HEAR scene task (multiclass; presplit k folds; scores top1_acc
    (primary), mAP, d_prime, aucroc) under ``cfg.out``; returns it, read back."""
    import soundfile as sf

    items, left_out = folder_task_items(cfg)
    name = cfg.task_name or f"{Path(cfg.root).expanduser().resolve().name}_{cfg.label}"
    duration = cfg.sample_duration
    if duration is None:
        duration = max(sf.info(str(it.source)).duration for it in items)
    meta = {
        "task_name": name,
        "version": "v1",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "presplit_kfold",
        "sample_duration": float(duration),
        "evaluation": list(SCENE_SCORES),
        "dissect": {"source": "folder", "root": str(Path(cfg.root).expanduser()),
                    "label": cfg.label, "group": cfg.group, "seed": cfg.seed, **left_out},
    }
    return write_task(Path(cfg.out).expanduser() / task_dir_name(name), meta, items,
                      sample_rate=cfg.sample_rate, progress=progress)
