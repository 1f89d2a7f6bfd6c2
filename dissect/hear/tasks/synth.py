"""The ``synth`` probe set as HEAR tasks ``synth_pitch``, ``synth_family`` and
``synth_noise_colour`` (:func:`write_synth_tasks`): stratified folds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dissect.hear.tasks.reader import HearTask
from dissect.hear.tasks.writer import (
    SCENE_SCORES,
    TaskItem,
    stratified_folds,
    task_dir_name,
    write_task,
)

# --------------------------------------------------------------------------- synth

SYNTH_TASKS = ("pitch", "family", "noise_colour")


def synth_task_items(probe_set, task: str) -> tuple[list[Any], list[str], list[str] | None]:
    """Clips, labels and (for pitch) the vocabulary of one synth task.

    * ``pitch``: every clip with a MIDI note (notes, pure tones, harmonic complexes); label the
      MIDI number; vocabulary the contiguous MIDI range from the lowest to the highest note
      present, in numeric order (so heareval's index-based ``chroma_acc`` is pitch-class
      agreement, as for NSynth).
    * ``family``: instrument notes; label the General MIDI family (``Brass``, ...).
    * ``noise_colour``: noise clips; label ``white`` / ``pink`` / ``brown``.
    """
    if task == "pitch":
        clips = [c for c in probe_set if c.concepts.get("midi_note") is not None]
        labels = [str(int(c.concepts["midi_note"])) for c in clips]
        if not clips:
            return [], [], []
        notes = [int(x) for x in labels]
        return clips, labels, [str(m) for m in range(min(notes), max(notes) + 1)]
    if task == "family":
        clips = [c for c in probe_set if c.concepts.get("kind") == "note"]
        return clips, [str(c.concepts["family"]) for c in clips], None
    if task == "noise_colour":
        clips = [c for c in probe_set if c.concepts.get("kind") == "noise"]
        return clips, [str(c.concepts["noise_colour"]) for c in clips], None
    raise ValueError(f"unknown synth task {task!r} (known: {', '.join(SYNTH_TASKS)})")


def write_synth_tasks(
    out_dir: str | Path,
    cfg=None,
    *,
    tasks: Sequence[str] = SYNTH_TASKS,
    probe_set=None,
    sample_rate: int = 16000,
    nfolds: int = 5,
    seed: int = 0,
    max_clips: int | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, HearTask]:
    """Synth clips (``load_synth(cfg)``) as HEAR tasks ``synth_pitch``, ``synth_family``,
    ``synth_noise_colour``: scene, multiclass, ``nfolds`` stratified folds.

    Args:
        out_dir: the tasks directory; each task goes to ``<out_dir>/synth_<task>-v1-full``.
        cfg: a :class:`~dissect.datasets.synth.SynthConfig` (default ``SynthConfig()``);
            ignored when ``probe_set`` is given.
        tasks: which of :data:`SYNTH_TASKS`.
        probe_set: an already loaded synth probe set.
        sample_rate: rate of the written audio.
        nfolds: folds per task.
        seed: seed of the fold assignment.
        max_clips: keep at most this many clips per task (the first in probe-set order).
        cache_dir: synth render cache.

    Scores: pitch -> pitch_acc (primary), chroma_acc; family and noise colour -> top1_acc
    (primary), mAP, d_prime, aucroc. ``sample_duration`` = the config's ``max_seconds``.
    """
    from dissect.datasets.synth import SynthConfig, load_synth

    if probe_set is None:
        cfg = cfg or SynthConfig()
        probe_set = load_synth(cfg, cache_dir=cache_dir, progress=False)
    first = probe_set[0]
    duration = float(cfg.max_seconds) if cfg is not None else max(
        float(c.metadata.get("duration_s", 0.0)) for c in probe_set
    )
    out: dict[str, HearTask] = {}
    for task in tasks:
        clips, labels, vocab = synth_task_items(probe_set, task)
        if max_clips is not None:
            clips, labels = clips[:max_clips], labels[:max_clips]
            if vocab is not None and labels:
                notes = [int(x) for x in labels]
                vocab = [str(m) for m in range(min(notes), max(notes) + 1)]
        if len(clips) < nfolds:
            raise ValueError(f"synth task {task!r}: {len(clips)} clips < {nfolds} folds")
        folds = stratified_folds([c.id for c in clips], labels, nfolds, seed)
        items = [
            TaskItem(name=f"{c.id}.wav", split=folds[c.id], labels=[lab], source=c.path)
            for c, lab in zip(clips, labels, strict=True)
        ]
        task_name = f"synth_{task}"
        meta = {
            "task_name": task_name,
            "version": "v1",
            "embedding_type": "scene",
            "prediction_type": "multiclass",
            "split_mode": "new_split_kfold",
            "splits": [f"fold{i:02d}" for i in range(nfolds)],
            "sample_duration": duration,
            "evaluation": ["pitch_acc", "chroma_acc"] if task == "pitch" else list(SCENE_SCORES),
            "dissect": {
                "source": "synth",
                "synth_cache_key": probe_set.root.name,
                "synth_render_version": first.metadata.get("render_version"),
                "synth_config": None if cfg is None else {
                    k: getattr(cfg, k)
                    for k in ("seed", "n_clips", "sample_rate", "min_seconds", "max_seconds",
                              "speech")
                },
                "split_rule": f"stratified by label, seed {seed}",
            },
        }  # fmt: skip
        out[task_name] = write_task(
            Path(out_dir) / task_dir_name(task_name), meta, items,
            sample_rate=sample_rate, vocabulary=vocab,
        )  # fmt: skip
    return out
