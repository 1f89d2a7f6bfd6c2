"""Stage ``caption``: one caption per clip and captioner -> ``captions.jsonl``.

Captions are per clip, not per neuron, so captioning costs O(clips). Rows carry a cache key:
the clip's audio sha256 plus the captioner's name and config hash. When the stage reruns (other
captioners, a changed config, new clips), rows whose key still matches are reused and only the
rest are computed. Finished rows are journalled as they are made, so a killed run resumes where it
stopped. A captioner that fails on one clip records the error in its row; the run goes on.

Before any clip is captioned, each captioner sees the whole probe set
(:func:`~dissect.description.captioners.combine.fit_probe_set`): the label captioner drops numeric
label columns that are a function of a named one (ESC-50's ``target`` of ``category``), logs
each with its reason and reports them in the stage info (``dropped_label_columns``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dissect import artifacts
from dissect.audio import AudioError, ClipPolicy, load_audio
from dissect.description.captioners.base import annotate

JOURNAL = "captions.journal.jsonl"


def caption_key(clip_row: dict, captioner_name: str, captioner_config: dict) -> str:
    """Cache key of one caption: audio content + captioner identity and settings."""
    return artifacts.hash_config({"sha256": clip_row.get("sha256"), "clip": clip_row["id"],
                                  "captioner": captioner_name, "config": captioner_config})


def _clip_from_row(row: dict):
    from dissect.datasets import Clip

    return Clip(row["id"], Path(row["path"]), row.get("labels", {}), row.get("concepts", {}),
                row.get("metadata", {}))


def build_captioners(caption_cfg) -> list:
    from dissect.description.captioners import build_captioner

    options = dict(caption_cfg.options or {})
    unknown = set(options) - set(caption_cfg.captioners)
    if unknown:
        raise ValueError(f"caption.options names captioners not in caption.captioners: "
                         f"{sorted(unknown)}")
    return [build_captioner(name, **dict(options.get(name) or {}))
            for name in caption_cfg.captioners]


def write_captions(run_dir: Path, caption_cfg, audio_cfg, progress: bool = True) -> dict[str, Any]:
    """Caption every clip of ``clips.jsonl`` with every configured captioner."""
    from dissect.description.captioners.combine import fit_probe_set

    clips = artifacts.read_jsonl(run_dir / artifacts.CLIPS)
    captioners = build_captioners(caption_cfg)
    decided = fit_probe_set(captioners, clips)
    configs = {c.name: c.config() for c in captioners}
    previous: dict[str, dict] = {}
    out_path = run_dir / artifacts.CAPTIONS
    if out_path.exists():
        try:
            previous.update({r["key"]: r for r in artifacts.read_jsonl(out_path) if "key" in r})
        except ValueError:
            pass  # an unreadable old artifact is simply not reused
    journal = artifacts.Journal(run_dir / JOURNAL)
    previous.update({r["key"]: r for r in journal.rows() if "key" in r})
    policy = ClipPolicy.from_config(audio_cfg)
    rows, reused, failed = [], 0, 0
    bar = tqdm(total=len(clips), desc="caption", unit="clip", disable=not progress,
               file=sys.stderr)
    try:
        for crow in clips:
            clip = _clip_from_row(crow)
            audio_by_sr: dict[int, Any] = {}
            for cap in captioners:
                key = caption_key(crow, cap.name, configs[cap.name])
                if (key in previous and previous[key].get("error") is None
                        and "terms" in previous[key]):  # rows from before terms: recompute
                    rows.append(previous[key])
                    reused += 1
                    continue
                row = {"clip": clip.id, "captioner": cap.name, "key": key, "text": None,
                       "terms": [], "error": None}
                try:
                    audio = None
                    if cap.sample_rate:
                        if cap.sample_rate not in audio_by_sr:
                            audio_by_sr[cap.sample_rate] = load_audio(clip.path, cap.sample_rate,
                                                                      policy)
                        audio = audio_by_sr[cap.sample_rate]
                    ann = annotate(cap, clip, audio)
                    row["text"], row["terms"] = ann.text, list(ann.terms)
                    if ann.info:
                        row["info"] = ann.info
                except (AudioError, Exception) as exc:  # one clip's failure never stops the run
                    row["error"] = f"{type(exc).__name__}: {exc}"[:500]
                    failed += 1
                rows.append(row)
                journal.append(row)
            bar.update(1)
    finally:
        bar.close()
        journal.close()
    artifacts.write_jsonl(out_path, rows)
    journal.discard()
    print(f"[caption] {len(rows)} captions ({reused} reused, {failed} failed) from "
          f"{', '.join(configs)}", file=sys.stderr)
    out = {"captions": len(rows), "reused": reused, "failed": failed, "captioners": configs}
    if decided.get("labels"):
        out["dropped_label_columns"] = {
            col: f"numeric, a function of {named!r}" for col, named in decided["labels"].items()}
    return out
