"""FSDD-style spoken digits as the HEAR tasks ``spoken_digit`` and ``spoken_digit_speaker``
(:func:`write_spoken_digit_tasks`): folds by take index."""

from __future__ import annotations

from pathlib import Path

from dissect.hear.tasks.reader import HearTask
from dissect.hear.tasks.writer import TaskItem, task_dir_name, write_task

# --------------------------------------------------------------------------- spoken digits


def write_spoken_digit_tasks(
    root: str | Path,
    out_dir: str | Path,
    *,
    sample_rate: int = 16000,
    nfolds: int = 5,
    sample_duration: float = 1.0,
) -> dict[str, HearTask]:
    """FSDD-style recordings as two tasks, ``spoken_digit`` (10 digits) and
    ``spoken_digit_speaker`` (speaker id): scene, multiclass, ``nfolds`` folds by take index,
    ``sample_duration`` s (hearpreprocess used 1.0 s), score top1_acc."""
    from dissect.datasets.spoken_digit import load_spoken_digit

    ps = load_spoken_digit(root)
    out: dict[str, HearTask] = {}
    for task_name, key in (("spoken_digit", "digit"), ("spoken_digit_speaker", "speaker")):
        items = [
            TaskItem(
                name=f"{Path(c.id).name}.wav",
                split=f"fold{int(c.metadata['index']) % nfolds:02d}",
                labels=[str(c.labels[key])],
                source=c.path,
            )
            for c in ps
        ]
        meta = {
            "task_name": task_name,
            "version": "v1",
            "embedding_type": "scene",
            "prediction_type": "multiclass",
            "split_mode": "new_split_kfold",
            "splits": [f"fold{i:02d}" for i in range(nfolds)],
            "sample_duration": float(sample_duration),
            "evaluation": ["top1_acc"],
            "dissect": {"source": "spoken_digit", "root": ps.root.name, "label": key,
                        "split_rule": f"fold = take index % {nfolds}"},
        }  # fmt: skip
        out[task_name] = write_task(
            Path(out_dir) / task_dir_name(task_name), meta, items, sample_rate=sample_rate
        )
    return out
