"""A run's captions read back from ``captions.jsonl``: one combined caption per clip."""

from __future__ import annotations

from pathlib import Path

from dissect import artifacts


def captions_by_clip(run_dir: str | Path, named: bool = True) -> dict[str, str]:
    """clip id -> the combined caption of all its captioners (failed ones left out);
    ``named=False``: without the captioner names (:func:`~dissect.describe.captioners.combine`,
    the text DB embeds)."""
    from dissect.describe.captioners import combine

    per_clip: dict[str, dict[str, str]] = {}
    for r in artifacts.read_jsonl(Path(run_dir) / artifacts.CAPTIONS):
        if r.get("error") is None and r.get("text"):
            per_clip.setdefault(r["clip"], {})[r["captioner"]] = r["text"]
    return {clip: combine(caps, named) for clip, caps in per_clip.items()}


def terms_by_clip(run_dir: str | Path) -> dict[str, list[str]]:
    """clip id -> the evidence terms of all its captioners (failed captions left out; rows
    written before captioners gave terms contribute none)."""
    out: dict[str, list[str]] = {}
    for r in artifacts.read_jsonl(Path(run_dir) / artifacts.CAPTIONS):
        if r.get("error") is None:
            out.setdefault(r["clip"], []).extend(r.get("terms") or [])
    return {clip: list(dict.fromkeys(t)) for clip, t in out.items()}
