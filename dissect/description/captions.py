"""A run's captions read back from ``captions.jsonl``: one combined caption per clip.

Captions are cut to :data:`~dissect.limits.MAX_CAPTION_CHARS` when they are made
(:func:`~dissect.description.captioners.base.annotate`); a ``captions.jsonl`` written before that
limit (or by hand) is cut again here, per captioner and clip, with a warning naming the file
and the clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dissect import artifacts
from dissect.limits import MAX_CAPTION_CHARS, cut_text


def captions_by_clip(run_dir: str | Path, named: bool = True) -> dict[str, str]:
    """clip id -> the combined caption of all its captioners (failed ones left out);
    ``named=False``: without the captioner names (:func:`~dissect.description.captioners.combine`,
    the text DB embeds)."""
    from dissect.description.captioners import combine

    path = Path(run_dir) / artifacts.CAPTIONS
    per_clip: dict[str, dict[str, str]] = {}
    for r in artifacts.read_jsonl(path):
        if r.get("error") is None and r.get("text"):
            where = f"{path}, captioner {r.get('captioner')!r}, clip {r['clip']!r}"
            text = cut_text(str(r["text"]), MAX_CAPTION_CHARS, where, "caption")
            per_clip.setdefault(r["clip"], {})[r["captioner"]] = text
    return {clip: combine(caps, named) for clip, caps in per_clip.items()}


def terms_by_clip(run_dir: str | Path) -> dict[str, list[str]]:
    """clip id -> the evidence terms of all its captioners (failed captions left out; rows
    written before captioners gave terms contribute none)."""
    out: dict[str, list[str]] = {}
    for r in artifacts.read_jsonl(Path(run_dir) / artifacts.CAPTIONS):
        if r.get("error") is None:
            out.setdefault(r["clip"], []).extend(r.get("terms") or [])
    return {clip: list(dict.fromkeys(t)) for clip, t in out.items()}


#: The captioner whose terms are the dataset's labels
#: (:class:`~dissect.description.captioners.labels.LabelCaptioner`).
LABELS_CAPTIONER = "labels"


def label_terms_of_parts(parts: Mapping[str, Mapping[str, Any]] | None) -> set[str]:
    """:func:`label_terms` of in-memory captions: ``parts`` is ``{clip: {captioner: {"terms":
    [...]}}}`` (:class:`dissect.api.Captions`' ``parts``; None: no label terms)."""
    return {str(t).lower() for by in (parts or {}).values()
            for t in ((by.get(LABELS_CAPTIONER) or {}).get("terms") or [])}


def label_terms(run_dir: str | Path) -> set[str]:
    """The evidence terms (lower case) that a dataset label gave: those of the ``labels``
    captioner's rows, which :func:`~dissect.explain.candidates.labels_first` prefers to
    transcript terms at nearly equal strength."""
    return {str(t).lower() for r in artifacts.read_jsonl(Path(run_dir) / artifacts.CAPTIONS)
            if r.get("error") is None and r.get("captioner") == LABELS_CAPTIONER
            for t in r.get("terms") or []}
