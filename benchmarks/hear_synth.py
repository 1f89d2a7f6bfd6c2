#!/usr/bin/env python
"""Reproduce the HEAR synth table of docs/hear.md.

Writes the three synth HEAR tasks (pitch, instrument family, noise colour) from the embedded
synth probe set (0.25 s clips; pitch and family from 300 rendered clips, noise colour from the
noise clips of 750), then runs the HEAR protocol (:func:`dissect.hear.evaluate.run_hear`: embedding
cache, hear-eval-kit's probe, "fast" grid, 8 grid points, 5 folds) for each HEAR module, and
writes ``<out>/table.md`` and ``<out>/scores.csv`` (all modules; ``--standardize``: the
``-standardized`` variants). Offline; CPU is enough.

    python benchmarks/hear_synth.py --out runs/hear_synth

Re-running reuses the synth render cache and every module's embedding cache (hash-checked), so
only the probes are trained again.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

MODULES = ("crepe_full", "crepe_tiny", "logmel", "gura_avg", "gura_cat", "gura_fusion")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/hear_synth", help="output directory")
    ap.add_argument("--modules", default=",".join(MODULES),
                    help="HEAR modules under dissect.hear.modules (comma separated)")
    ap.add_argument("--n-clips", type=int, default=300,
                    help="synth clips rendered for the pitch and family tasks")
    ap.add_argument("--noise-clips", type=int, default=750,
                    help="synth clips rendered for the noise-colour task (8%% are noise)")
    ap.add_argument("--seconds", type=float, default=0.25, help="clip duration (s)")
    ap.add_argument("--synth-seed", type=int, default=0, help="synth seed")
    ap.add_argument("--grid", default="fast", choices=("default", "fast", "faster"))
    ap.add_argument("--grid-points", type=int, default=8)
    ap.add_argument("--seeds", default="0", help="probe seeds, comma separated")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: leave)")
    ap.add_argument("--cache-dir", default=None, help="synth render cache")
    ap.add_argument("--standardize", action="store_true",
                    help="z-score probe inputs with training-fold statistics (deviation)")
    args = ap.parse_args(argv)

    from dissect.config import SynthConfig
    from dissect.hear.evaluate import CSV_COLUMNS, run_hear, scores_csv
    from dissect.hear.tasks import write_synth_tasks

    out = Path(args.out)
    cfg = SynthConfig(seed=args.synth_seed, n_clips=args.n_clips, min_seconds=args.seconds,
                      max_seconds=args.seconds, speech=False)
    t0 = time.perf_counter()
    tasks = write_synth_tasks(out / "tasks", cfg, tasks=("pitch", "family"),
                              cache_dir=args.cache_dir)
    noise_cfg = replace(cfg, n_clips=args.noise_clips)
    tasks.update(write_synth_tasks(out / "tasks", noise_cfg, tasks=("noise_colour",),
                                   cache_dir=args.cache_dir))
    sizes = {k: sum(len(t.labels(s)) for s in t.splits) for k, t in tasks.items()}
    print(f"tasks: {sizes} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    rows, timings = [], {}
    tag = "-standardized" if args.standardize else ""
    results = out / f"results{tag}"
    for m in [x.strip() for x in args.modules.split(",") if x.strip()]:
        t1 = time.perf_counter()
        rows += run_hear(f"dissect.hear.modules.{m}", out / "tasks", results / m,
                         grid=args.grid, grid_points=args.grid_points,
                         seeds=[int(s) for s in args.seeds.split(",")],
                         standardize=args.standardize, embeddings_dir=out / "embeddings" / m,
                         threads=args.threads or None)
        timings[m] = time.perf_counter() - t1
        print(f"[hear_synth] {m}: {timings[m]:.0f} s", file=sys.stderr)
    for r in rows:
        r["module"] = r["module"].rsplit(".", 1)[-1]

    (out / f"scores{tag}.csv").write_text(scores_csv(rows))
    task_names = sorted({r["task"] for r in rows})
    mods = list(dict.fromkeys(r["module"] for r in rows))
    cols = [(t, s) for t in task_names for s in dict.fromkeys(
        r["score"] for r in rows if r["task"] == t and r["score"] in ("pitch_acc", "chroma_acc",
                                                                        "top1_acc", "mAP"))]
    cell = {(r["module"], r["task"], r["score"]): r for r in rows}
    head = "| module | " + " | ".join(f"{t.split('-')[0]} {s}" for t, s in cols) + " | time |"
    lines = [head, "|---" * (len(cols) + 2) + "|"]
    for m in mods:
        vals = []
        for t, s in cols:
            r = cell.get((m, t, s))
            vals.append("–" if r is None or r["mean"] is None
                        else f"{r['mean']:.3f} ± {r['std'] or 0:.3f}")
        lines.append(f"| {m} | " + " | ".join(vals) + f" | {timings[m]:.0f} s |")
    table = "\n".join(lines)
    (out / f"table{tag}.md").write_text(table + "\n")
    print(table)
    print(f"total {time.perf_counter() - t0:.0f} s; columns {CSV_COLUMNS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
