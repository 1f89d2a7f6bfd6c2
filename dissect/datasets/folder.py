"""The ``folder`` layout: every audio file under a directory, optionally joined with a table.

Also holds the helpers the named layouts share: :func:`scan_audio_files` (deterministic recursive
scan), :func:`read_csv_table` / :func:`csv_value` (CSV rows with line numbers for messages) and
:func:`select_folds`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from dissect.audio import supported_extensions
from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.errors import ProbeSetError, require_dir, require_file
from dissect.limits import MAX_LABEL_CHARS, cut_labels


def scan_audio_files(root: Path, recursive: bool = True) -> list[str]:
    """Relative POSIX paths of the audio files under ``root``, sorted.

    A file counts as audio when its lower-cased extension is in
    :func:`dissect.audio.supported_extensions`. Hidden files and directories (name starting with
    ``.``, e.g. macOS ``._x.wav`` resource forks) are ignored; symlinked files are kept, symlinked
    directories are not followed.
    """
    exts = supported_extensions()
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")] if recursive else []
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            if name.startswith("."):
                continue
            if Path(name).suffix.lower().lstrip(".") in exts:
                found.append((rel_dir / name).as_posix())
    return sorted(found)


def strip_extension(relpath: str) -> str:
    """``"a/b.wav"`` -> ``"a/b"`` (POSIX separators kept)."""
    p = PurePosixPath(relpath)
    return p.with_suffix("").as_posix() if p.suffix else relpath


def read_csv_table(
    path: Path, required: list[str] | None = None, delimiter: str = ","
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a CSV file with a header row.

    Returns:
        ``(columns, rows)``: the header, and one ``(line_number, {column: value})`` per data row
        (values are stripped strings; blank lines are skipped).

    Raises:
        ProbeSetError: unreadable or malformed file (no header, duplicate or empty column names,
            a row with too many or too few fields), or a ``required`` column is missing.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            header: list[str] | None = None
            rows: list[tuple[int, dict[str, str]]] = []
            for fields in reader:
                if not any(v.strip() for v in fields):
                    continue
                if header is None:
                    header = [h.strip() for h in fields]
                    if "" in header or len(set(header)) != len(header):
                        raise ProbeSetError(
                            path, f"malformed CSV: bad header {header} (empty or repeated names)"
                        )
                    continue
                if len(fields) != len(header):
                    raise ProbeSetError(
                        path,
                        f"malformed CSV: line {reader.line_num} has {len(fields)} fields, "
                        f"the header has {len(header)}",
                    )
                rows.append(
                    (reader.line_num, {h: v.strip() for h, v in zip(header, fields, strict=True)})
                )
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ProbeSetError(path, f"malformed CSV: {exc}") from exc
    except OSError as exc:
        raise ProbeSetError(path, f"cannot read ({exc.strerror or exc})") from exc
    if header is None:
        raise ProbeSetError(path, "malformed CSV: the file has no header row")
    missing = [c for c in (required or []) if c not in header]
    if missing:
        raise ProbeSetError(path, f"metadata column(s) {missing} missing (columns: {header})")
    return header, rows


def csv_value(path: Path, line: int, row: dict[str, str], column: str, kind: Callable) -> Any:
    """Convert ``row[column]`` with ``kind`` (``int``, ``float``, ``bool`` or ``str``).

    ``bool`` accepts ``true/false``, ``1/0``, ``yes/no`` (any case). Raises
    :class:`ProbeSetError` naming the file, line and column when the value does not parse.
    """
    text = row[column]
    try:
        if kind is bool:
            low = text.lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        return kind(text)
    except ValueError:
        raise ProbeSetError(
            path, f"line {line}: column {column!r} has {text!r}, expected {kind.__name__}"
        ) from None


def select_folds(table: Path, available: set[int], folds: list[int] | None) -> set[int]:
    """The folds to keep: all of ``available`` when ``folds`` is None/empty.

    Raises:
        ProbeSetError: a requested fold does not occur in ``table``.
    """
    if not folds:
        return set(available)
    unknown = sorted(set(folds) - available)
    if unknown:
        raise ProbeSetError(table, f"fold(s) {unknown} not found (folds: {sorted(available)})")
    return set(folds)


def _metadata_rows(
    path: Path, path_column: str
) -> tuple[list[str], list[tuple[str, str, dict[str, Any]]]]:
    """Read a CSV/TSV/JSON table: ``(columns, [(where, path_value, row), ...])``."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        header, rows = read_csv_table(
            path, required=[path_column], delimiter="\t" if suffix == ".tsv" else ","
        )
        return header, [(f"line {ln}", r[path_column], r) for ln, r in rows]
    if suffix != ".json":
        raise ProbeSetError(path, f"unsupported metadata format {suffix!r} (use .csv, .tsv, .json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ProbeSetError(path, f"malformed JSON: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeSetError(path, f"cannot read ({exc})") from exc
    if isinstance(data, dict):
        items = [(f"key {k!r}", k, v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(f"item {i}", None, v) for i, v in enumerate(data)]
    else:
        raise ProbeSetError(path, "malformed JSON: expected a list of rows or an object path->row")
    columns: dict[str, None] = {}
    out: list[tuple[str, str, dict[str, Any]]] = []
    for where, key, row in items:
        if not isinstance(row, dict):
            raise ProbeSetError(path, f"malformed JSON: {where} is not an object")
        if key is None:
            if path_column not in row:
                raise ProbeSetError(path, f"{where}: metadata column {path_column!r} missing")
            key = row[path_column]
        if not isinstance(key, str):
            raise ProbeSetError(path, f"{where}: {path_column!r} must be a string, got {key!r}")
        row = {k: v for k, v in row.items() if k != path_column}
        columns.update(dict.fromkeys(row))
        out.append((where, key, row))
    return [path_column, *columns], out


def _relpath(root: Path, value: str, table: Path, where: str) -> str:
    """Normalise a table's path value to a POSIX path relative to ``root``."""
    text = value.strip().replace("\\", "/")
    p = PurePosixPath(text)
    if p.is_absolute():
        try:
            p = PurePosixPath(Path(text).resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            raise ProbeSetError(table, f"{where}: path {value!r} is outside {root}") from None
    parts = [s for s in p.parts if s != "."]
    if not parts or ".." in parts:
        raise ProbeSetError(table, f"{where}: path {value!r} is not a path under {root}")
    return "/".join(parts)


def load_folder(
    root: str | Path,
    *,
    metadata: str | Path | None = None,
    path_column: str = "filename",
    label_columns: list[str] | None = None,
) -> ProbeSet:
    """Every audio file under ``root`` (recursive), optionally labelled from a table.

    Clip ids are the POSIX paths relative to ``root`` without extension (``"dogs/bark_01"``); clips
    are sorted by relative path.

    Args:
        root: dataset directory.
        metadata: optional ``.csv``/``.tsv`` (header row) or ``.json`` table, relative to ``root``
            or absolute. JSON is either a list of row objects or an object ``{path: row}``.
        path_column: the column holding each audio path relative to ``root`` (the join key).
        label_columns: columns copied into ``Clip.labels``; ``None``/empty means every column but
            ``path_column``. The remaining columns go to ``Clip.metadata``. CSV values stay
            strings; JSON values keep their JSON types.

    Files without a metadata row get empty labels. A metadata row naming a file that does not
    exist still becomes a clip (loading it raises ``AudioMissingError``, so the run records it as
    a skip rather than silently shrinking the probe set). A row whose file lies in a directory
    that resolves outside ``root`` (a symlinked directory inside it) also becomes a clip that
    the run skips (``PathOutsideRootError``, kind ``outside_root``): every clip carries ``root``
    (:attr:`Clip.root`). A path with ``..`` or an absolute path outside ``root`` is refused
    outright (``ProbeSetError``).

    Every value of a row but its path is cut to
    :data:`~dissect.limits.MAX_LABEL_CHARS` characters (:func:`dissect.limits.cut_text`: a
    visible marker and a warning naming the table, the row and the clip id).

    Raises:
        ProbeSetError: root or metadata file missing; unsupported or malformed table; a requested
            column missing; duplicate rows for one path; no audio file under ``root``; or a table
            none of whose rows names an existing file (wrong ``path_column`` or root).
    """
    root = require_dir(root)
    files = scan_audio_files(root)
    if not files:
        known = ", ".join(sorted(supported_extensions()))
        raise ProbeSetError(root, f"no audio files found (extensions searched: {known})")
    if metadata is None:
        clips = [Clip(id=strip_extension(f), path=root / f, root=root) for f in files]
        return ProbeSet("folder", root, clips, [])

    table = Path(metadata).expanduser()
    table = require_file(table if table.is_absolute() else root / table)
    columns, rows = _metadata_rows(table, path_column)
    wanted = list(label_columns) if label_columns else [c for c in columns if c != path_column]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise ProbeSetError(table, f"metadata column(s) {missing} missing (columns: {columns})")

    by_path: dict[str, dict[str, Any]] = {}
    row_of: dict[str, str] = {}
    for where, value, row in rows:
        rel = _relpath(root, value, table, where)
        if rel in by_path:
            raise ProbeSetError(table, f"{where}: second row for {rel!r}")
        by_path[rel] = row
        row_of[rel] = where
    on_disk = set(files)
    if by_path and not on_disk & by_path.keys():
        example = next(iter(by_path))
        raise ProbeSetError(
            table,
            f"none of its {len(by_path)} rows names an audio file under {root} (e.g. {example!r});"
            f" column {path_column!r} must hold paths relative to the root",
        )

    clips = []
    for rel in sorted(on_disk | by_path.keys()):
        row = by_path.get(rel, {})
        cid = strip_extension(rel)
        where = f"{table}, {row_of.get(rel)} (clip {cid!r})"
        labels = cut_labels({c: row[c] for c in wanted if c in row}, where, MAX_LABEL_CHARS)
        meta = cut_labels({c: v for c, v in row.items() if c not in wanted and c != path_column},
                          where, MAX_LABEL_CHARS)
        clips.append(Clip(id=cid, path=root / rel, labels=labels, metadata=meta, root=root))
    return ProbeSet("folder", root, clips, wanted)
