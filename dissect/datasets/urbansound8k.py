"""The ``urbansound8k`` layout: UrbanSound8K (Salamon et al. 2014), 8732 slices <= 4 s, 10 classes.

Expected tree::

    metadata/UrbanSound8K.csv   slice_file_name,fsID,start,end,salience,fold,classID,class
    audio/fold<N>/<file>        (or fold<N>/<file> directly under the root)
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.errors import ProbeSetError, require_dir, require_file
from dissect.datasets.folder import csv_value, read_csv_table, select_folds

US8K_COLUMNS = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]


def load_urbansound8k(root: str | Path, *, folds: list[int] | None = None) -> ProbeSet:
    """Read UrbanSound8K from ``root``.

    Clips: id = file stem (``"100032-3-0-0"``), sorted by id. Labels: ``class`` (str),
    ``classID`` (int 0-9). Metadata: ``fold`` (int 1-10), ``salience`` (int: 1 foreground,
    2 background), ``fsID`` (int, freesound id), ``start`` / ``end`` (float, seconds in the
    freesound recording).

    Args:
        root: dataset directory.
        folds: keep only these folds; ``None``/empty keeps all.

    Raises:
        ProbeSetError: root or the CSV missing; neither ``audio/`` nor any ``fold<N>/`` directory;
            malformed CSV or values; a requested fold absent from the CSV; no rows.
    """
    root = require_dir(root)
    table = require_file(root / "metadata" / "UrbanSound8K.csv", "UrbanSound8K metadata file")
    if (root / "audio").is_dir():
        audio_dir = root / "audio"
    elif any(p.is_dir() and p.name.startswith("fold") for p in root.iterdir()):
        audio_dir = root
    else:
        raise ProbeSetError(
            root, "UrbanSound8K audio not found (expected audio/fold<N>/ or fold<N>/)"
        )
    _, rows = read_csv_table(table, required=US8K_COLUMNS)
    if not rows:
        raise ProbeSetError(table, "no clips listed")

    parsed = [(ln, r, csv_value(table, ln, r, "fold", int)) for ln, r in rows]
    keep = select_folds(table, {fold for _, _, fold in parsed}, folds)
    clips = []
    for ln, r, fold in parsed:
        if fold not in keep:
            continue
        name = r["slice_file_name"]
        clips.append(
            Clip(
                id=PurePosixPath(name).stem,
                path=audio_dir / f"fold{fold}" / name,
                labels={"class": r["class"], "classID": csv_value(table, ln, r, "classID", int)},
                metadata={
                    "fold": fold,
                    "salience": csv_value(table, ln, r, "salience", int),
                    "fsID": csv_value(table, ln, r, "fsID", int),
                    "start": csv_value(table, ln, r, "start", float),
                    "end": csv_value(table, ln, r, "end", float),
                    # slices of one freesound recording stay in one split
                    "group": f"fsID:{r['fsID']}",
                },
            )
        )
    clips.sort(key=lambda c: c.id)
    return ProbeSet("urbansound8k", root, clips, ["class", "classID"])
