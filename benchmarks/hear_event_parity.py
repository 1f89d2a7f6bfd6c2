#!/usr/bin/env python
"""Re-score the saved test-fold event predictions of a ``dissect hear`` run with
``heareval.score`` (hear-eval-kit 2021.1.3) and with ours, and report the largest difference.

``run_hear`` keeps every event test fold's predicted events (``predictions/<task>.json``,
``seeds.<seed>.folds.<fold>.predicted_events``), so the scores it reports can be checked
against heareval's own sed_eval code on the very same predictions:

    python benchmarks/hear_event_parity.py --out-dir runs/hear/whisper_tiny --tasks-dir tasks

Prints one line per (task, seed, fold, score) and a summary; exit code 1 when any score
differs by more than 1e-9 (NaN equal to NaN).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", required=True, help="the run_hear output directory")
    ap.add_argument("--tasks-dir", required=True, help="the tasks it evaluated")
    args = ap.parse_args(argv)

    import heareval.score as heareval_score

    from dissect.hear import metrics as M
    from dissect.hear.tasks import find_tasks, read_task

    tasks = {t.name: t for t in map(read_task, find_tasks(args.tasks_dir))}
    worst, n = 0.0, 0
    for pred_file in sorted((Path(args.out_dir) / "predictions").glob("*.json")):
        pred = json.loads(pred_file.read_text())
        task = tasks.get(pred["task"])
        if task is None or task.embedding_type != "event":
            continue
        labels = task.vocabulary
        for seed, res in pred["seeds"].items():
            for fold, f in res["folds"].items():
                if "predicted_events" not in f:
                    print(f"{task.name} seed {seed} {fold}: no saved events (older run)")
                    continue
                targets = {}
                for split in fold.split("|"):
                    targets.update(task.labels(split))
                preds = f["predicted_events"]
                for name in task.evaluation:
                    ours = M.score_all([name], preds, targets, labels)[name]
                    fn = heareval_score.available_scores[name](
                        label_to_idx={str(x): i for i, x in enumerate(labels)})
                    theirs = float(fn(preds, targets)[0][1])  # the score's primary value
                    same_nan = math.isnan(ours) and math.isnan(theirs)
                    diff = 0.0 if same_nan else abs(ours - theirs)
                    worst, n = max(worst, diff), n + 1
                    print(f"{task.name} seed {seed} {fold} {name}: ours {ours:.6f} heareval "
                          f"{theirs:.6f} |diff| {diff:.2e}  (reported "
                          f"{f['scores'].get(name)})")
    print(f"{n} scores compared; largest |ours - heareval| = {worst:.3e}")
    return 0 if n and worst <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
