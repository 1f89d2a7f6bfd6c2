"""Reading HEAR 2021 task directories (:func:`read_task`, :func:`find_tasks`,
:class:`HearTask`) and hear-eval-kit's fold bookkeeping (:func:`data_splits`).

The directory format is described in :mod:`dissect.hear.tasks`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dissect.datasets.errors import ProbeSetError, require_dir, require_file

TASK_METADATA = "task_metadata.json"
LABEL_VOCABULARY = "labelvocabulary.csv"
SPLIT_MODES = ("trainvaltest", "presplit_kfold", "new_split_kfold")


# --------------------------------------------------------------------------- fold bookkeeping


def data_splits_from_folds(folds: Sequence[str]) -> list[dict[str, list[str]]]:
    """hear-eval-kit's leave-one-out rotation: test = fold i, valid = fold i+1 (mod k), train =
    the rest (sorted folds). Raises ValueError on duplicate or fewer than 3 folds."""
    folds = sorted(folds)
    if len(set(folds)) != len(folds):
        raise ValueError(f"folds are not unique: {folds}")
    if len(folds) < 3:
        raise ValueError(f"k-fold evaluation needs at least 3 folds, got {folds}")
    k = len(folds)
    out = []
    for i, test in enumerate(folds):
        valid = folds[(i + 1) % k]
        train = [f for f in folds if f not in (test, valid)]
        out.append({"train": train, "valid": [valid], "test": [test]})
    return out


def data_splits(metadata: Mapping[str, Any]) -> list[dict[str, list[str]]]:
    """The train/valid/test split(s) a task is evaluated on (``get_splits_from_metadata``)."""
    mode = metadata.get("split_mode")
    if mode == "trainvaltest":
        return [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]
    if mode in ("new_split_kfold", "presplit_kfold"):
        folds = metadata.get("splits")
        if not isinstance(folds, list) or not all(isinstance(f, str) for f in folds):
            raise ValueError("k-fold task metadata needs 'splits': a list of fold names")
        return data_splits_from_folds(folds)
    raise ValueError(f"unknown split_mode {mode!r} (known: {', '.join(SPLIT_MODES)})")


# --------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProbeSetError(path, f"malformed JSON: {exc}") from exc


def _read_vocabulary(path: Path) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    if not rows or not {"idx", "label"} <= set(rows[0]):
        raise ProbeSetError(path, "expected an 'idx,label' CSV with at least one row")
    try:
        pairs = sorted((int(r["idx"]), str(r["label"])) for r in rows)
    except ValueError as exc:
        raise ProbeSetError(path, f"idx must be integers ({exc})") from None
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ProbeSetError(path, "idx must be 0..n-1 without gaps")
    return [label for _, label in pairs]


@dataclass
class HearTask:
    """A HEAR task directory.

    Attributes:
        root: the directory.
        metadata: ``task_metadata.json``.
        vocabulary: labels by index (``labelvocabulary.csv``), as strings.
    """

    root: Path
    metadata: dict[str, Any]
    vocabulary: list[str]
    _labels: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The directory name (``esc50-v2.0.0-full``)."""
        return self.root.name

    @property
    def task_name(self) -> str:
        return str(self.metadata.get("task_name", self.root.name))

    @property
    def embedding_type(self) -> str:
        return str(self.metadata["embedding_type"])

    @property
    def prediction_type(self) -> str:
        return str(self.metadata["prediction_type"])

    @property
    def evaluation(self) -> list[str]:
        return list(self.metadata["evaluation"])

    @property
    def splits(self) -> list[str]:
        """Split names in metadata order (the order heareval embeds them in)."""
        return list(self.metadata["splits"])

    @property
    def sample_duration(self) -> float | None:
        d = self.metadata.get("sample_duration")
        return None if d is None else float(d)

    def sample_rates(self) -> list[int]:
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    def audio_dir(self, split: str, sample_rate: int) -> Path:
        return self.root / str(int(sample_rate)) / split

    def labels(self, split: str) -> dict[str, Any]:
        """``<split>.json``: file name -> labels (scene) or events (event), file order kept."""
        if split not in self._labels:
            path = require_file(self.root / f"{split}.json", f"label file of split {split!r}")
            table = _read_json(path)
            if not isinstance(table, dict):
                raise ProbeSetError(path, "expected an object file -> labels")
            self._labels[split] = table
        return self._labels[split]

    def data_splits(self) -> list[dict[str, list[str]]]:
        return data_splits(self.metadata)

    def split_hash(self, split: str, sample_rate: int) -> str:
        """sha256 over the metadata, vocabulary, the split's label file and the bytes of every
        audio file it lists (at ``sample_rate``). Changes whenever anything the embeddings or
        the probe of this split depend on changes."""
        h = hashlib.sha256()
        h.update(json.dumps(self.metadata, sort_keys=True, default=str).encode())
        h.update(json.dumps(self.vocabulary).encode())
        h.update((self.root / f"{split}.json").read_bytes())
        audio_dir = self.audio_dir(split, sample_rate)
        for name in self.labels(split):
            h.update(name.encode() + b"\0")
            h.update(hashlib.sha256((audio_dir / name).read_bytes()).digest())
        return h.hexdigest()


def read_task(root: str | Path) -> HearTask:
    """Read a HEAR task directory (metadata, vocabulary; labels are read on demand).

    Raises:
        ProbeSetError: missing directory/metadata/vocabulary, malformed files, unknown
            embedding or prediction type, no split list that can be derived.
    """
    root = require_dir(root, "HEAR task directory")
    meta_path = require_file(root / TASK_METADATA, "HEAR task metadata")
    meta = _read_json(meta_path)
    if not isinstance(meta, dict):
        raise ProbeSetError(meta_path, "expected a JSON object")
    for key in ("embedding_type", "prediction_type", "evaluation"):
        if key not in meta:
            raise ProbeSetError(meta_path, f"missing {key!r}")
    if meta["embedding_type"] not in ("scene", "event"):
        raise ProbeSetError(meta_path, f"embedding_type {meta['embedding_type']!r} unknown")
    if meta["prediction_type"] not in ("multiclass", "multilabel"):
        raise ProbeSetError(meta_path, f"prediction_type {meta['prediction_type']!r} unknown")
    meta = dict(meta)
    if not isinstance(meta.get("splits"), list):
        if meta.get("split_mode") == "trainvaltest":
            meta["splits"] = ["train", "valid", "test"]
        elif isinstance(meta.get("nfolds"), int):
            meta["splits"] = [f"fold{i:02d}" for i in range(meta["nfolds"])]
        else:
            raise ProbeSetError(meta_path, "no 'splits' list and none can be derived")
    vocab = _read_vocabulary(require_file(root / LABEL_VOCABULARY, "label vocabulary"))
    return HearTask(root=root, metadata=meta, vocabulary=vocab)


def find_tasks(path: str | Path) -> list[Path]:
    """``path`` itself when it is a task directory, else its task subdirectories (sorted)."""
    path = require_dir(path, "HEAR tasks directory")
    if (path / TASK_METADATA).is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and (p / TASK_METADATA).is_file())
    if not found:
        raise ProbeSetError(path, f"no task directory (with {TASK_METADATA}) here or below")
    return found
