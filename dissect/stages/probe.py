"""Stage ``probe``: index and validate the probe set -> ``clips.jsonl`` + ``skips.jsonl``.

Every clip is decoded once with the run's audio policy. Loadable clips become rows of
``clips.jsonl`` (id, path, labels, concepts, metadata, and what decoding measured); clips that
fail become rows of ``skips.jsonl`` with the error kind and message. The stage fails only when the
skipped fraction exceeds ``probe.max_skip_fraction``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dissect import artifacts
from dissect.audio import ClipPolicy
from dissect.datasets import ProbeSet, SkipLog


def _finite_or_none(x: float) -> float | None:
    return round(x, 3) if math.isfinite(x) else None


def input_hashes(probe: ProbeSet) -> dict[str, str]:
    """Content hash of every audio file of the probe set, in order (the stage's input).

    Each clip's own sha256 is also written into ``clips.jsonl``, so per-clip caches (captions)
    can tell a changed file from an unchanged one.
    """
    return {"audio_files": artifacts.hash_files(c.path for c in probe.clips)}


def write_clips(run_dir: Path, probe: ProbeSet, audio_cfg, max_skip_fraction: float,
                progress: bool = True, heldout: ProbeSet | None = None) -> dict[str, Any]:
    """Decode every clip; write ``clips.jsonl`` and ``skips.jsonl``; return summary info.

    ``heldout`` (``probe.holdout``): clips kept out of the dissection, listed undecoded in
    ``heldout.jsonl`` (id, path, labels, concepts, metadata, sha256; empty when None) for
    evaluations that must not use clips the descriptions saw.

    Raises:
        TooManySkipsError: more than ``max_skip_fraction`` of the clips failed to load.
    """
    policy = ClipPolicy.from_config(audio_cfg)
    skips = SkipLog(max_fraction=max_skip_fraction)
    rows: list[dict[str, Any]] = []
    n_silent = 0
    bar = tqdm(total=len(probe), desc="probe", unit="clip", disable=not progress, file=sys.stderr)
    try:
        for clip, audio in probe.iter_audio(audio_cfg.sample_rate, policy, skips):
            bar.update(1)
            n_silent += int(audio.is_silent)
            row = clip.to_record()
            row.update(
                sha256=artifacts.hash_file(clip.path),
                seconds=round(audio.seconds, 4),
                source_seconds=round(audio.source_seconds, 4),
                source_sample_rate=audio.source_sample_rate,
                source_channels=audio.source_channels,
                cropped=audio.cropped,
                peak_dbfs=_finite_or_none(audio.peak_dbfs),
                rms_dbfs=_finite_or_none(audio.rms_dbfs),
                silent=audio.is_silent,
            )
            rows.append(row)
    finally:
        bar.close()
        # skips are written even when the run fails on them, so the user can see why
        artifacts.write_jsonl(run_dir / artifacts.SKIPS, skips.rows)
    artifacts.write_jsonl(run_dir / artifacts.CLIPS, rows)
    held = [{**c.to_record(), "sha256": artifacts.hash_file(c.path) if c.path.is_file() else None}
            for c in (heldout or [])]
    artifacts.write_jsonl(run_dir / artifacts.HELDOUT, held)
    print(f"[probe] {len(rows)} clips indexed; {skips.summary()}; {n_silent} flagged silent"
          + (f"; {len(held)} held out" if held else ""), file=sys.stderr)
    return {"clips": len(rows), "skipped": len(skips.rows), "silent": n_silent,
            "heldout": len(held), "skip_summary": skips.summary()}
