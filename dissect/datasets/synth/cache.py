"""The ``synth`` render cache: its key (:func:`synth_cache_key`), its root
(:func:`synth_cache_root`), and :func:`load_synth`, which renders what is missing or does not
match its recorded SHA-256 (the verified index and journal of
:mod:`dissect.datasets.render_cache`) and returns the probe set.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.render_cache import INDEX_NAME, JOURNAL_NAME, render_missing, write_index
from dissect.datasets.synth.plan import (
    LABEL_COLUMNS,
    RENDER_VERSION,
    SynthConfig,
    plan_synth,
)
from dissect.datasets.synth.render import render_clip, rms_dbfs, soundfont_path, speech_available
from dissect.util import cache_root, hash_file, wav_bytes

log = logging.getLogger("dissect.datasets.synth")

__all__ = ["INDEX_NAME", "JOURNAL_NAME", "load_synth", "synth_cache_key", "synth_cache_root"]


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
    sr = int(cfg.sample_rate)
    by_file = {spec.file_name: spec for spec in specs}

    def render(file_name: str) -> tuple[bytes, dict[str, Any]]:
        x = render_clip(by_file[file_name], sr)
        return wav_bytes(x, sr), {"loudness_dbfs": round(rms_dbfs(x), 4)}

    done = render_missing(root, key, RENDER_VERSION, list(by_file), render,
                          fields=("loudness_dbfs",), name="synth", progress=progress)  # fmt: skip
    records = done.records

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
                metadata={**spec.metadata(sr), **_group(concepts)},
            )
        )

    if done.needs_index:
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
        write_index(root, index)

    return ProbeSet(name="synth", root=root, clips=clips, label_columns=list(LABEL_COLUMNS))


def _group(concepts: dict[str, Any]) -> dict[str, str]:
    """How the explain stage splits a clip (:mod:`dissect.explain.splits`): a note's
    renderings of one instrument-note stay in one split (``group``) and notes are stratified by
    their MIDI note (``stratum``: every note in every split); other kinds: none (each clip
    alone, stratified by its kind)."""
    if concepts.get("instrument") and concepts.get("midi_note") is not None:
        return {"group": f"note:{concepts['instrument']}:{concepts['midi_note']}",
                "stratum": f"midi:{concepts['midi_note']}"}
    return {}
