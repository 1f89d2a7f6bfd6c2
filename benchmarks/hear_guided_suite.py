#!/usr/bin/env python
"""Description-guided units vs random units vs top-variance units vs all units, on HEAR tasks
of the offline suite (docs/hear.md, "Guided ensembles on the real suite").

The pool is every unit the given dissect runs recorded and described (e.g. CREPE tiny's 632 on
synth seed 1 and the Whisper tiny.en encoder's 6,144 FFN units on espeak digits seed 1), all
concatenated. At each size (a fraction of the pool) four selections are compared with the
same HEAR probe protocol:

* ``guided``: the units whose **confirmed** description (held-out permutation test passed) or
  evidence names one of the task's labels (:func:`dissect.hear.guided.label_terms`: note names
  for a pitch task, digit words for digits), best held-out test correlation first
  (:func:`dissect.ensemble.guided.select_for_labels`). When fewer units match than the size
  asks, guided keeps only those (it never pads), and the row says so; the random and
  top-variance rows then use that same smaller size;
* ``random``: as many units drawn uniformly from the whole pool (``--draws`` draws; mean of
  their fold means ± std across draws, and the range);
* ``top variance``: the units with the largest activation variance on their own run's probe
  clips (label-free, task-free);
* ``all units``: the whole pool.

Every selection is read from **one** cached embedding of the whole pool
(:meth:`dissect.hear.embed.EmbeddedTask.select`), so each row costs only its probes. The
dissection runs must not have seen the task's clips (the synth and espeak-digit runs for the
suite's tasks use probe seed 1; the suite's tasks are rendered from seed 0).

    python benchmarks/hear_guided_suite.py --runs RUN_CREPE,RUN_WHISPER \\
        --tasks-dir tasks --tasks nsynth_pitch,spoken_digit_voices --out runs/guided_suite

Writes ``<out>/table.md``, ``<out>/scores.csv`` and ``<out>/selection.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="comma-separated finished dissect runs")
    ap.add_argument("--tasks-dir", required=True)
    ap.add_argument("--tasks", default="nsynth_pitch,spoken_digit_voices")
    ap.add_argument("--out", default="runs/guided_suite")
    ap.add_argument("--fractions", default="0.05,0.10,0.25")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--grid", default="fast", choices=("default", "fast", "faster"))
    ap.add_argument("--grid-points", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="probe seed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crepe-hop-ms", type=float, default=50.0)
    args = ap.parse_args(argv)

    import random

    import torch

    from dissect.ensemble.guided import (
        select_for_labels,
        select_units,
        top_variance_units,
    )
    from dissect.ensemble.model import EnsembleModel
    from dissect.hear.embed import LoadedModule, embed_task
    from dissect.hear.evaluate import evaluate_embeddings, scores_csv, summarize
    from dissect.hear.guided import guided_member, label_terms
    from dissect.hear.tasks import find_tasks, read_task

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    runs = [r for r in args.runs.split(",") if r]

    # ---------------------------------------------------------------- the pool
    sels = [select_units(r, ["*"], fields=("description",)) for r in runs]  # population only
    pools = [s.population for s in sels]
    width = sum(sum(map(len, p.values())) for p in pools)
    log(f"pool: {width} units ({', '.join(str(sum(map(len, p.values()))) for p in pools)})")

    where = {}
    for i, p in enumerate(pools):
        for layer, us in p.items():
            for u in us:
                where[(i, layer, u)] = len(where)

    def cols(picked: list[tuple[int, str, int]]) -> list[int]:
        return [where[(i, layer, int(u))] for i, layer, u in picked]

    everything = [(i, layer, u) for i, p in enumerate(pools) for layer, us in p.items()
                  for u in us]
    topvar = sorted(((v, i, layer, u) for i, r in enumerate(runs)
                     for layer, u, v in top_variance_units(r, list(pools[i]))),
                    key=lambda x: (-x[0], x[1]))
    members = []
    for s in sels:
        opts = {"hop_ms": args.crepe_hop_ms} if s.model.get("name") == "crepe" else {}
        members.append(guided_member(replace(s, units=s.population), adapter_options=opts))
    pool_model = EnsembleModel(members, "cat", name="pool")
    lm = LoadedModule("dissect.hear.modules.guided[pool]",
                      importlib.import_module("dissect.hear.modules.guided"), pool_model)

    fractions = [float(f) for f in args.fractions.split(",")]
    wanted = set(args.tasks.split(","))
    tasks = [t for t in map(read_task, find_tasks(args.tasks_dir))
             if t.task_name in wanted or t.name in wanted]
    rows, selection, table = [], {}, []
    for task in tasks:
        emb = embed_task(lm, task, out / "embeddings" / task.name, log=log)
        terms = sorted({t for ts in label_terms(task.vocabulary, task.evaluation).values()
                        for t in ts})
        primary = task.evaluation[0]

        def probe(view, label, _task=task):
            per_seed = {args.seed: evaluate_embeddings(view, grid=args.grid,
                                                       grid_points=args.grid_points,
                                                       seed=args.seed, log=lambda m: None)}
            r = summarize(label, _task.name, _task.evaluation, per_seed)
            rows.extend(r)
            return next(x for x in r if x["primary"])

        full = probe(emb, f"all units {width}")
        for frac in fractions:
            n = max(1, round(frac * width))
            picked, info = select_for_labels(runs, terms, n)
            k = len(picked)
            sel_key = f"{task.task_name} {frac:.0%}"
            selection[sel_key] = {"asked": n, "kept": k, **info}
            g = probe(emb.select(cols(picked), f"guided {k}"), f"guided {k}") if k else None
            tv = probe(emb.select(cols([(i, la, u) for _, i, la, u in topvar[:k or n]])),
                       f"top variance {k or n}")
            draws = []
            for d in range(args.draws):
                rnd = random.Random(f"{d}:{k or n}").sample(everything, k or n)
                draws.append(probe(emb.select(cols(rnd)), f"random {k or n} (draw {d})")["mean"])
            mu = statistics.mean(draws)
            sd = statistics.stdev(draws) if len(draws) > 1 else 0.0
            gm = g["mean"] if g else None
            table.append({
                "task": task.task_name, "score": primary, "fraction": frac, "asked": n,
                "kept": k, "matched": info["matched"], "guided": gm,
                "guided_fold_std": g["std"] if g else None, "random_mean": mu,
                "random_std": sd, "random_min": min(draws), "random_max": max(draws),
                "top_variance": tv["mean"], "all_units": full["mean"],
                "guided_minus_random_in_sd": (None if gm is None or sd == 0
                                              else (gm - mu) / sd)})
            log(f"[guided-suite] {task.task_name} {frac:.0%}: guided {k}/{n} = {gm}, random "
                f"{mu:.3f} ± {sd:.3f}, top variance {tv['mean']:.3f}, all {full['mean']:.3f}")
    (out / "scores.csv").write_text(scores_csv(rows))
    (out / "selection.json").write_text(json.dumps({"runs": runs, "pool": width,
                                                    "selection": selection}, indent=1))
    (out / "table.json").write_text(json.dumps(table, indent=1))
    f3 = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["| task | size (of pool) | units kept (matched) | guided | random, "
             f"{args.draws} draws: mean ± sd [min, max] | top variance | all units | "
             "guided − random (sd) |", "|---|---|---|---|---|---|---|---|"]
    for r in table:
        z = r["guided_minus_random_in_sd"]
        lines.append(
            f"| {r['task']} ({r['score']}) | {r['fraction']:.0%} = {r['asked']} | {r['kept']} "
            f"({r['matched']}) | {f3(r['guided'])} | {r['random_mean']:.3f} ± "
            f"{r['random_std']:.3f} [{r['random_min']:.3f}, {r['random_max']:.3f}] | "
            f"{f3(r['top_variance'])} | {f3(r['all_units'])} | "
            f"{'–' if z is None else f'{z:+.1f}'} |")
    md = "\n".join(lines)
    (out / "table.md").write_text(md + "\n")
    print(md)
    log(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
