"""A verified cache of rendered probe-set files, shared by the rendered layouts (``synth``,
``espeak_digits``).

One directory holds the files of one rendered probe set (its name is the caller's cache key).
Every file is written atomically. While rendering, each finished file appends its record
(SHA-256 and the caller's extra fields) to :data:`JOURNAL_NAME`; :data:`INDEX_NAME` is written
last (:func:`write_index`) and the journal removed. On every load each file is hashed and compared
with the index (or the journal of an interrupted render); a missing or mismatching file is
rendered again (:func:`render_missing`), so an interrupted render resumes and a file is never
trusted merely because it exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dissect.util import hash_file, write_bytes

INDEX_NAME = "index.json"
JOURNAL_NAME = "index.partial.jsonl"

#: ``render(file_name)`` -> (the file's bytes, extra fields of its record, e.g. loudness).
RenderFn = Callable[[str], tuple[bytes, dict[str, Any]]]


def sha256_file(path: Path) -> str | None:
    """SHA-256 of a file, or None when it cannot be read."""
    try:
        return hash_file(path)
    except OSError:
        return None


def read_known(
    root: Path, key: str, version: int, fields: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], bool]:
    """Recorded ``{file: {sha256, *fields}}`` from index.json and the journal.

    Returns the records and whether a valid ``index.json`` (same ``key`` and ``render_version``)
    was found.
    """
    keep = ("sha256", *fields)
    known: dict[str, dict[str, Any]] = {}
    have_index = False
    try:
        index = json.loads((root / INDEX_NAME).read_text())
        if index.get("key") == key and index.get("render_version") == version:
            for rec in index["clips"]:
                known[rec["file"]] = {k: rec[k] for k in keep}
            have_index = True
    except (OSError, ValueError, KeyError, TypeError):
        known = {}
    try:
        lines = (root / JOURNAL_NAME).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:  # a line torn by a kill is skipped
        try:
            rec = json.loads(line)
            known[rec["file"]] = {k: rec[k] for k in keep}
        except (ValueError, KeyError, TypeError):
            continue
    return known, have_index


def clean_stale_temps(root: Path, older_than_s: float = 3600.0) -> None:
    """Remove temporary files (``.*.tmp``) older than ``older_than_s`` left by killed writes."""
    now = time.time()
    for p in root.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()


@dataclass
class Rendered:
    """What :func:`render_missing` found and did.

    Attributes:
        records: ``{file: {sha256, *fields}}`` for every requested file.
        rendered: the files rendered by this call (empty: everything came from the cache).
        have_index: whether a valid index.json was there before.
    """

    records: dict[str, dict[str, Any]]
    rendered: list[str]
    have_index: bool

    @property
    def needs_index(self) -> bool:
        return bool(self.rendered) or not self.have_index


def render_missing(
    root: Path,
    key: str,
    version: int,
    files: Sequence[str],
    render: RenderFn,
    *,
    fields: Sequence[str] = (),
    name: str = "probe set",
    progress: bool = True,
) -> Rendered:
    """Render the files of ``files`` that are missing from ``root`` or do not match their record.

    Args:
        root: the cache directory of this probe set (created if needed).
        key: its cache key (stored in, and checked against, index.json).
        version: the caller's render version (likewise).
        files: file names, in probe-set order.
        render: renders one file: returns its bytes and the extra record ``fields``.
        fields: extra record fields kept from the index and journal besides ``sha256``.
        name: probe-set name for the log line and progress bar.
        progress: show a tqdm bar while rendering.
    """
    root.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(root)
    known, have_index = read_known(root, key, version, fields)
    records: dict[str, dict[str, Any]] = {}
    todo: list[str] = []
    for f in files:
        rec = known.get(f)
        if rec is not None and sha256_file(root / f) == rec["sha256"]:
            records[f] = rec
        else:
            todo.append(f)

    if todo:
        from tqdm.auto import tqdm

        logging.getLogger(f"dissect.datasets.{name}").info(
            "%s: rendering %d of %d clips into %s", name, len(todo), len(files), root
        )
        with open(root / JOURNAL_NAME, "ab+") as journal:
            if journal.tell() > 0:  # end a line torn by a kill, so the next one parses
                journal.seek(-1, os.SEEK_END)
                if journal.read(1) != b"\n":
                    journal.write(b"\n")
            for f in tqdm(todo, desc=f"{name}: rendering", unit="clip", disable=not progress):
                data, extra = render(f)
                write_bytes(root / f, data)
                rec = {"sha256": hashlib.sha256(data).hexdigest(), **extra}
                records[f] = rec
                journal.write((json.dumps({"file": f, **rec}) + "\n").encode())
                journal.flush()
    return Rendered(records, todo, have_index)


def write_index(root: Path, index: dict[str, Any]) -> None:
    """Write ``index.json`` atomically (it must hold ``key``, ``render_version`` and ``clips``,
    each clip with ``file`` and ``sha256``), then remove the journal."""
    write_bytes(root / INDEX_NAME, json.dumps(index, indent=1).encode())
    with contextlib.suppress(OSError):
        (root / JOURNAL_NAME).unlink()
