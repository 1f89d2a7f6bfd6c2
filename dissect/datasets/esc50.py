"""The ``esc50`` layout: ESC-50 (Piczak 2015), 2000 five-second clips in 50 classes, 5 folds.

Expected tree (the GitHub archive ``ESC-50-master/`` or its parent)::

    meta/esc50.csv    filename,fold,target,category,esc10,src_file,take
    audio/<filename>  e.g. audio/1-100032-A-0.wav
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.errors import ProbeSetError, require_dir, require_file
from dissect.datasets.folder import csv_value, read_csv_table, select_folds

ESC50_COLUMNS = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def load_esc50(root: str | Path, *, folds: list[int] | None = None) -> ProbeSet:
    """Read ESC-50 from ``root`` (the dir holding ``meta/`` and ``audio/``, or its parent).

    Clips: id = filename stem (``"1-100032-A-0"``), sorted by id. Labels: ``category`` (str),
    ``target`` (int class index 0-49). Metadata: ``fold`` (int 1-5), ``esc10`` (bool),
    ``src_file`` (str, the freesound clip id), ``take`` (str, ``"A"``...).

    Args:
        root: dataset directory.
        folds: keep only these folds; ``None``/empty keeps all.

    Raises:
        ProbeSetError: root, ``meta/esc50.csv`` or ``audio/`` missing; malformed CSV or values; a
            requested fold absent from the CSV; no rows.
    """
    root = require_dir(root)
    if not (root / "meta").is_dir() and (root / "ESC-50-master" / "meta").is_dir():
        root = root / "ESC-50-master"
    table = require_file(root / "meta" / "esc50.csv", "ESC-50 metadata file")
    audio_dir = require_dir(root / "audio", "ESC-50 audio directory")
    _, rows = read_csv_table(table, required=ESC50_COLUMNS)
    if not rows:
        raise ProbeSetError(table, "no clips listed")

    parsed = [(ln, r, csv_value(table, ln, r, "fold", int)) for ln, r in rows]
    keep = select_folds(table, {fold for _, _, fold in parsed}, folds)
    clips = []
    for ln, r, fold in parsed:
        if fold not in keep:
            continue
        name = r["filename"]
        clips.append(
            Clip(
                id=PurePosixPath(name).stem,
                path=audio_dir / name,
                labels={
                    "category": r["category"],
                    "target": csv_value(table, ln, r, "target", int),
                },
                metadata={
                    "fold": fold,
                    "esc10": csv_value(table, ln, r, "esc10", bool),
                    "src_file": r["src_file"],
                    "take": r["take"],
                    # clips cut from one freesound recording stay in one split
                    "group": f"src:{r['src_file']}",
                },
            )
        )
    clips.sort(key=lambda c: c.id)
    return ProbeSet("esc50", root, clips, ["category", "target"])
