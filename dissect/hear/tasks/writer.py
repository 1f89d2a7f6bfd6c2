"""Writing a HEAR 2021 task directory from audio files or samples (:func:`write_task`,
:class:`TaskItem`), plus the helpers the dataset writers share: stratified folds, task directory
names, trimming and padding, deterministic WAV bytes.

The format and the write rules are described in :mod:`dissect.hear.tasks`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dissect.hear.tasks.reader import LABEL_VOCABULARY, TASK_METADATA, HearTask, read_task
from dissect.util import wav_bytes as _wav_bytes

SCENE_SCORES = ["top1_acc", "mAP", "d_prime", "aucroc"]


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class TaskItem:
    """One audio file of a task to write.

    Attributes:
        name: file name in the task (``"abc.wav"``); unique across the task.
        split: split it belongs to.
        labels: scene: list of labels; event: list of ``{"label", "start", "end"}`` (ms).
        source: audio file to read (any rate; mixed down and resampled).
        waveform: or the samples themselves (mono float), at ``source_rate``.
        source_rate: rate of ``waveform``.
    """

    name: str
    split: str
    labels: list[Any]
    source: Path | None = None
    waveform: np.ndarray | None = None
    source_rate: int | None = None


def wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """Mono 32-bit float WAV bytes, deterministic (no PEAK chunk)."""
    return _wav_bytes(np.asarray(x, dtype=np.float32), int(sample_rate))


def _load_item(item: TaskItem, sample_rate: int) -> np.ndarray:
    from dissect.audio import ClipPolicy, load_audio
    from dissect.audio.load import resample

    if item.waveform is not None:
        if not item.source_rate:
            raise ValueError(f"{item.name}: waveform given without source_rate")
        x = np.asarray(item.waveform, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"{item.name}: waveform must be mono 1-D, got shape {x.shape}")
        return resample(x, int(item.source_rate), int(sample_rate))
    if item.source is None:
        raise ValueError(f"{item.name}: neither source nor waveform given")
    return load_audio(item.source, sample_rate, ClipPolicy(max_seconds=None)).waveform


def trim_pad(x: np.ndarray, n: int) -> np.ndarray:
    """Trim the end, or zero-pad the end, to exactly ``n`` samples."""
    if len(x) >= n:
        return np.ascontiguousarray(x[:n], dtype=np.float32)
    return np.concatenate([x, np.zeros(n - len(x), dtype=np.float32)]).astype(np.float32)


def write_task(
    root: str | Path,
    metadata: Mapping[str, Any],
    items: Iterable[TaskItem],
    *,
    sample_rate: int = 16000,
    vocabulary: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> HearTask:
    """Write a HEAR task directory (replacing any previous one at ``root``).

    Args:
        root: the task directory to create.
        metadata: task metadata; needs ``task_name``, ``embedding_type``, ``prediction_type``,
            ``split_mode``, ``evaluation``, ``sample_duration`` (None keeps lengths); ``splits``
            is set from the items (folds sorted, or train/valid/test) unless given.
        items: the audio files.
        sample_rate: the one rate directory written.
        vocabulary: label order (default: sorted labels, as hearpreprocess).
        progress: called with a line per 100 files written.

    Returns:
        The task, read back.
    """
    root = Path(root)
    items = list(items)
    if not items:
        raise ValueError("write_task: no items")
    meta = dict(metadata)
    for key in ("task_name", "embedding_type", "prediction_type", "split_mode", "evaluation"):
        if key not in meta:
            raise ValueError(f"write_task: metadata needs {key!r}")
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[:5]
        raise ValueError(f"write_task: duplicate file names {dup}")
    bad = [n for n in names if "/" in n or not n.endswith(".wav")]
    if bad:
        raise ValueError(f"write_task: file names must be '<stem>.wav' without '/': {bad[:5]}")
    present = sorted({it.split for it in items})
    if "splits" not in meta:
        if meta["split_mode"] == "trainvaltest":
            meta["splits"] = ["train", "valid", "test"]
        else:
            meta["splits"] = present
    missing = [s for s in meta["splits"] if s not in present]
    if missing or set(present) - set(meta["splits"]):
        raise ValueError(f"write_task: splits {meta['splits']} vs items' splits {present}")
    if meta["split_mode"] != "trainvaltest":
        meta.setdefault("nfolds", len(meta["splits"]))
    meta.setdefault("version", "v1")
    meta.setdefault("mode", "full")
    meta.setdefault("default_mode", "full")
    meta.setdefault("sample_rate", int(sample_rate))

    def label_strings(it: TaskItem) -> list[str]:
        if meta["embedding_type"] == "scene":
            return [str(x) for x in it.labels]
        return [str(ev["label"]) for ev in it.labels]

    labels_used = sorted({lab for it in items for lab in label_strings(it)})
    if vocabulary is None:
        vocab = labels_used
    else:
        vocab = [str(v) for v in vocabulary]
        unknown = sorted(set(labels_used) - set(vocab))
        if unknown or len(set(vocab)) != len(vocab):
            raise ValueError(f"write_task: labels not in the vocabulary: {unknown[:5]}")
    if meta["embedding_type"] == "scene" and meta["prediction_type"] == "multiclass":
        wrong = [it.name for it in items if len(it.labels) != 1]
        if wrong:
            raise ValueError(f"write_task: multiclass items need exactly one label: {wrong[:5]}")

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        duration = meta.get("sample_duration")
        n_target = None if duration is None else int(round(float(duration) * sample_rate))
        tables: dict[str, dict[str, Any]] = {s: {} for s in meta["splits"]}
        for i, it in enumerate(items):
            x = _load_item(it, sample_rate)
            if n_target is not None:
                x = trim_pad(x, n_target)
            out = tmp / str(int(sample_rate)) / it.split / it.name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(wav_bytes(x, sample_rate))
            if meta["embedding_type"] == "scene":
                tables[it.split][it.name] = label_strings(it)
            else:
                tables[it.split][it.name] = [
                    {"label": str(ev["label"]), "start": float(ev["start"]),
                     "end": float(ev["end"])}
                    for ev in it.labels
                ]  # fmt: skip
            if progress and (i + 1) % 100 == 0:
                progress(f"{root.name}: {i + 1}/{len(items)} files")
        for split, table in tables.items():
            (tmp / f"{split}.json").write_text(json.dumps(table, indent=1) + "\n", "utf-8")
        vocab_csv = "idx,label\n" + "".join(f"{i},{_csv_field(v)}\n" for i, v in enumerate(vocab))
        (tmp / LABEL_VOCABULARY).write_text(vocab_csv, "utf-8")
        (tmp / TASK_METADATA).write_text(
            json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n", "utf-8"
        )
        old = None
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            os.replace(root, old)
        os.replace(tmp, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_task(root)


def _csv_field(v: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([v])
    return buf.getvalue()


def stratified_folds(
    keys: Sequence[str], labels: Sequence[str], nfolds: int = 5, seed: int = 0
) -> dict[str, str]:
    """Deterministic stratified fold names (``fold00`` ...) for ``keys`` (see module doc)."""
    if nfolds < 3:
        raise ValueError(f"nfolds must be >= 3, got {nfolds}")
    by_label: dict[str, list[str]] = {}
    for k, lab in zip(keys, labels, strict=True):
        by_label.setdefault(str(lab), []).append(k)
    out: dict[str, str] = {}
    counter = 0
    for lab in sorted(by_label):
        members = sorted(by_label[lab])
        random.Random(f"{seed}:{lab}").shuffle(members)
        for k in members:
            out[k] = f"fold{counter % nfolds:02d}"
            counter += 1
    return out


def task_dir_name(task_name: str, version: str = "v1", mode: str = "full") -> str:
    """HEAR's ``<task_name>-<version>-<mode>``."""
    return f"{task_name}-{version}-{mode}"
