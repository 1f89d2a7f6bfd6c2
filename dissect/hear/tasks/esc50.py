"""ESC-50 as the HEAR ``esc50`` task (:func:`write_esc50_task`): its own 5 folds."""

from __future__ import annotations

from pathlib import Path

from dissect.hear.tasks.reader import HearTask
from dissect.hear.tasks.writer import SCENE_SCORES, TaskItem, task_dir_name, write_task

# --------------------------------------------------------------------------- ESC-50


def write_esc50_task(
    esc50_root: str | Path,
    out_dir: str | Path,
    *,
    sample_rate: int = 16000,
    folds: list[int] | None = None,
) -> HearTask:
    """ESC-50 as the HEAR ``esc50`` task: scene, multiclass (50 categories), its own 5 folds,
    5.0 s clips, scores top1_acc (primary), mAP, d_prime, aucroc."""
    from dissect.datasets.esc50 import load_esc50

    ps = load_esc50(esc50_root, folds=folds)
    items = [
        TaskItem(
            name=f"{c.id}.wav",
            split=f"fold{int(c.metadata['fold']) - 1:02d}",
            labels=[c.labels["category"]],
            source=c.path,
        )
        for c in ps
    ]
    meta = {
        "task_name": "esc50",
        "version": "v2.0.0",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "presplit_kfold",
        "sample_duration": 5.0,
        "evaluation": list(SCENE_SCORES),
        "dissect": {"source": "esc50", "root": ps.root.name},
    }
    return write_task(Path(out_dir) / task_dir_name("esc50", "v2.0.0"), meta, items,
                      sample_rate=sample_rate)  # fmt: skip
