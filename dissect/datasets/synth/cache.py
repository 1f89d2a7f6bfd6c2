"""The ``synth`` render cache: its key (:func:`synth_cache_key`), its root
(:func:`synth_cache_root`), the verified index and journal, and :func:`load_synth`, which renders
what is missing or does not match its recorded SHA-256 and returns the probe set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.synth.plan import (
    LABEL_COLUMNS,
    RENDER_VERSION,
    SynthConfig,
    SynthSpec,
    plan_synth,
)
from dissect.datasets.synth.render import render_clip, rms_dbfs, soundfont_path, speech_available
from dissect.util import cache_root, hash_file, wav_bytes, write_bytes

log = logging.getLogger("dissect.datasets.synth")

INDEX_NAME = "index.json"
JOURNAL_NAME = "index.partial.jsonl"


@lru_cache(maxsize=4)
def _file_sha256(path: str) -> str:
    return hash_file(path)


def synth_cache_key(cfg: SynthConfig, speech_available: bool) -> str:
    """Cache key of a rendered probe set, e.g. ``v1-3f9c0a1b2c4d5e6f``.

    It hashes the config fields that change audio (seed, n_clips, sample_rate, min/max
    seconds), :data:`RENDER_VERSION`, whether speech is rendered (``cfg.speech and
    speech_available``) and the soundfont's SHA-256 (a pretty_midi upgrade that changed the
    soundfont would otherwise reuse stale audio). ``cache_dir`` and ``progress`` do not count.
    """
    payload = {
        "render_version": RENDER_VERSION,
        "seed": int(cfg.seed),
        "n_clips": int(cfg.n_clips),
        "sample_rate": int(cfg.sample_rate),
        "min_seconds": float(cfg.min_seconds),
        "max_seconds": float(cfg.max_seconds),
        "speech": bool(cfg.speech and speech_available),
        "soundfont_sha256": _file_sha256(str(soundfont_path())),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"v{RENDER_VERSION}-{digest[:16]}"


# --------------------------------------------------------------------------------------------
# cache


def synth_cache_root(cfg: SynthConfig, cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``cfg.cache_dir``, else ``$DISSECT_CACHE/synth``, else
    ``~/.cache/dissect/synth``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    return cache_root("synth")


def _sha256_file(path: Path) -> str | None:
    try:
        return hash_file(path)
    except OSError:
        return None


def _read_known(root: Path, key: str) -> tuple[dict[str, dict[str, Any]], bool]:
    """Recorded ``{file: {sha256, loudness_dbfs}}`` from index.json and the journal.

    Returns the records and whether a valid ``index.json`` was found.
    """
    known: dict[str, dict[str, Any]] = {}
    have_index = False
    try:
        index = json.loads((root / INDEX_NAME).read_text())
        if index.get("key") == key and index.get("render_version") == RENDER_VERSION:
            for rec in index["clips"]:
                known[rec["file"]] = {
                    "sha256": rec["sha256"],
                    "loudness_dbfs": rec["loudness_dbfs"],
                }
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
            known[rec["file"]] = {"sha256": rec["sha256"], "loudness_dbfs": rec["loudness_dbfs"]}
        except (ValueError, KeyError, TypeError):
            continue
    return known, have_index


def _clean_stale_temps(root: Path, older_than_s: float = 3600.0) -> None:
    now = time.time()
    for p in root.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()


def load_synth(
    cfg: SynthConfig, cache_dir: str | Path | None = None, progress: bool = True
) -> ProbeSet:
    """Render (once) and load the ``synth`` probe set.

    Args:
        cfg: the synth config; ``seed`` fixes every random choice.
        cache_dir: cache root; default ``cfg.cache_dir``, ``$DISSECT_CACHE/synth`` or
            ``~/.cache/dissect/synth``. Clips go to ``<cache root>/<synth_cache_key>/``.
        progress: show a tqdm bar while rendering.

    Returns:
        ``ProbeSet(name="synth", label_columns=["kind", "family"])`` in plan order.
    """
    have_espeak = speech_available()
    if cfg.speech and not have_espeak:
        log.warning(
            "synth: espeak-ng is not installed, so the probe set has no speech clips "
            "(their slots are instrument notes); install espeak-ng to add them"
        )
    elif not cfg.speech:
        log.info("synth: speech disabled by config (synth.speech=false); no speech clips")
    with_speech = bool(cfg.speech and have_espeak)
    specs = plan_synth(cfg, with_speech)
    key = synth_cache_key(cfg, with_speech)
    root = synth_cache_root(cfg, cache_dir) / key
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(root)
    sr = int(cfg.sample_rate)

    known, have_index = _read_known(root, key)
    records: dict[str, dict[str, Any]] = {}
    todo: list[SynthSpec] = []
    for spec in specs:
        rec = known.get(spec.file_name)
        if rec is not None and _sha256_file(root / spec.file_name) == rec["sha256"]:
            records[spec.file_name] = rec
        else:
            todo.append(spec)

    if todo:
        from tqdm.auto import tqdm

        log.info("synth: rendering %d of %d clips into %s", len(todo), len(specs), root)
        with open(root / JOURNAL_NAME, "ab+") as journal:
            if journal.tell() > 0:  # end a line torn by a kill, so the next one parses
                journal.seek(-1, os.SEEK_END)
                if journal.read(1) != b"\n":
                    journal.write(b"\n")
            for spec in tqdm(todo, desc="synth: rendering", unit="clip", disable=not progress):
                x = render_clip(spec, sr)
                data = wav_bytes(x, sr)
                write_bytes(root / spec.file_name, data)
                rec = {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "loudness_dbfs": round(rms_dbfs(x), 4),
                }
                records[spec.file_name] = rec
                journal.write((json.dumps({"file": spec.file_name, **rec}) + "\n").encode())
                journal.flush()

    clips = []
    for spec in specs:
        rec = records[spec.file_name]
        concepts = dict(spec.concepts)
        concepts["loudness_dbfs"] = rec["loudness_dbfs"]
        clips.append(
            Clip(
                id=spec.id,
                path=root / spec.file_name,
                labels={"kind": spec.kind, "family": concepts["family"]},
                concepts=concepts,
                metadata=spec.metadata(sr),
            )
        )

    if todo or not have_index:
        index = {
            "render_version": RENDER_VERSION,
            "key": key,
            "config": {
                "seed": cfg.seed,
                "n_clips": cfg.n_clips,
                "sample_rate": sr,
                "min_seconds": cfg.min_seconds,
                "max_seconds": cfg.max_seconds,
                "speech": with_speech,
            },
            "format": "wav float32 mono",
            "clips": [
                {"file": c.path.name, **records[c.path.name], **c.to_record()} for c in clips
            ],
        }
        for rec in index["clips"]:
            rec.pop("path", None)
        write_bytes(root / INDEX_NAME, json.dumps(index, indent=1).encode())
        with contextlib.suppress(OSError):
            (root / JOURNAL_NAME).unlink()

    return ProbeSet(name="synth", root=root, clips=clips, label_columns=list(LABEL_COLUMNS))
