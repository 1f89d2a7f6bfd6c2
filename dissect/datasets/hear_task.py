"""The ``hear`` layout: a task directory built by hearpreprocess (HEAR 2021).

Expected tree (see ``/work/shared/reference/hear-protocol.md``)::

    task_metadata.json         task_name, version, embedding_type ("scene" | "event"),
                               prediction_type, split_mode ("trainvaltest" | "presplit_kfold" |
                               "new_split_kfold"), splits (e.g. ["fold00", ...]), nfolds,
                               sample_duration, evaluation, ...
    labelvocabulary.csv        idx,label (not needed here)
    <split>.json               scene: {"<file>.wav": [label, ...]}
                               event: {"<file>.wav": [{"label": l, "start": ms, "end": ms}, ...]}
    <sample_rate>/<split>/<file>.wav    e.g. 48000/fold00/abc.wav, 16000/train/abc.wav

Split names come from ``splits`` in the metadata; failing that from ``nfolds`` (``fold00`` ...),
from ``split_mode == "trainvaltest"`` (train, valid, test), or else from the split directories
that have a label file.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.errors import ProbeSetError, require_dir, require_file
from dissect.datasets.folder import scan_audio_files


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProbeSetError(path, f"malformed JSON: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeSetError(path, f"cannot read ({exc})") from exc


def _rate_dir(root: Path, sample_rate: int | None) -> Path:
    rates = sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not rates:
        raise ProbeSetError(root, "no <sample_rate>/ audio directory (e.g. 48000/) found")
    if sample_rate is None:
        return root / str(rates[-1])
    if int(sample_rate) not in rates:
        raise ProbeSetError(root, f"no audio at sample_rate={sample_rate} (available: {rates})")
    return root / str(int(sample_rate))


def _task_splits(meta: dict[str, Any], root: Path, rate_dir: Path) -> list[str]:
    if isinstance(meta.get("splits"), list) and all(isinstance(s, str) for s in meta["splits"]):
        return sorted(meta["splits"])
    if isinstance(meta.get("nfolds"), int):
        return [f"fold{i:02d}" for i in range(meta["nfolds"])]
    if meta.get("split_mode") == "trainvaltest":
        return ["test", "train", "valid"]
    return sorted(p.name for p in rate_dir.iterdir() if (root / f"{p.name}.json").is_file())


def _labels(path: Path, key: str, value: Any, embedding_type: str) -> dict[str, Any]:
    if not isinstance(value, list):
        raise ProbeSetError(path, f"{key!r}: expected a list, got {type(value).__name__}")
    if embedding_type == "scene":
        return {"labels": list(value)}
    events = []
    for i, ev in enumerate(value):
        if not (isinstance(ev, dict) and {"label", "start", "end"} <= ev.keys()):
            raise ProbeSetError(path, f"{key!r} event {i}: expected {{label, start, end}}")
        try:
            start, end = float(ev["start"]), float(ev["end"])
        except (TypeError, ValueError):
            raise ProbeSetError(
                path, f"{key!r} event {i}: start/end must be numbers (ms)"
            ) from None
        events.append({"label": ev["label"], "start": start, "end": end})
    return {"events": events}


def load_hear_task(
    root: str | Path,
    *,
    splits: list[str] | None = None,
    sample_rate: int | None = None,
) -> ProbeSet:
    """Read a HEAR task directory.

    Clips: id = ``"<split>/<stem>"`` (``"fold00/abc"``), sorted by id; one per entry of each
    ``<split>.json`` plus any unlisted audio file in the split directory (empty labels). Labels:
    ``{"labels": [...]}`` for scene tasks, ``{"events": [{"label", "start", "end"}, ...]}`` for
    event tasks (times in ms, as float). Metadata: ``split``, ``task_name``. A listed file missing
    from disk stays a clip (it is recorded as a skip when loaded).

    Args:
        root: the task directory (holding ``task_metadata.json``).
        splits: read only these splits (``["fold00"]``, ``["train", "valid"]``); None/empty: all.
        sample_rate: which ``<sample_rate>/`` copy to read, in Hz; ``None`` takes the highest.

    Raises:
        ProbeSetError: root, ``task_metadata.json``, the sample-rate directory, a split's label
            file or audio directory missing; malformed JSON; unknown ``embedding_type``; a
            requested split that does not exist; no clips.
    """
    root = require_dir(root, "HEAR task directory")
    meta_path = require_file(root / "task_metadata.json", "HEAR task metadata")
    meta = _read_json(meta_path)
    if not isinstance(meta, dict):
        raise ProbeSetError(meta_path, "malformed task metadata: expected a JSON object")
    embedding_type = meta.get("embedding_type")
    if embedding_type not in ("scene", "event"):
        raise ProbeSetError(
            meta_path, f"embedding_type must be 'scene' or 'event', got {embedding_type!r}"
        )
    task_name = str(meta.get("task_name", root.name))
    rate_dir = _rate_dir(root, sample_rate)
    available = _task_splits(meta, root, rate_dir)
    if splits:
        unknown = [s for s in splits if s not in available]
        if unknown:
            raise ProbeSetError(meta_path, f"split(s) {unknown} not found (splits: {available})")
        available = [s for s in available if s in set(splits)]

    clips = []
    for split in available:
        label_path = require_file(root / f"{split}.json", f"label file of split {split!r}")
        split_dir = require_dir(rate_dir / split, f"audio directory of split {split!r}")
        table = _read_json(label_path)
        if not isinstance(table, dict):
            raise ProbeSetError(label_path, "malformed label file: expected an object file->labels")
        names = set(table) | set(scan_audio_files(split_dir, recursive=False))
        for name in names:
            labels = _labels(label_path, name, table[name], embedding_type) if name in table else {}
            clips.append(
                Clip(
                    id=f"{split}/{PurePosixPath(name).stem}",
                    path=split_dir / name,
                    labels=labels,
                    metadata={"split": split, "task_name": task_name},
                )
            )
    if not clips:
        raise ProbeSetError(root, f"no clips in split(s) {available}")
    clips.sort(key=lambda c: c.id)
    label_key = "labels" if embedding_type == "scene" else "events"
    return ProbeSet("hear", root, clips, [label_key])
