"""A run's captions read back from ``captions.jsonl``: one combined caption per clip."""

from __future__ import annotations

from pathlib import Path

from dissect import artifacts


def captions_by_clip(run_dir: str | Path) -> dict[str, str]:
    """clip id -> the combined caption of all its captioners (failed ones left out)."""
    from dissect.describe.captioners import combine

    per_clip: dict[str, dict[str, str]] = {}
    for r in artifacts.read_jsonl(Path(run_dir) / artifacts.CAPTIONS):
        if r.get("error") is None and r.get("text"):
            per_clip.setdefault(r["clip"], {})[r["captioner"]] = r["text"]
    return {clip: combine(caps) for clip, caps in per_clip.items()}
