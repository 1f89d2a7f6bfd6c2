#!/usr/bin/env python
"""Description-guided ensemble vs full concatenation, on the synth HEAR tasks (docs/hear.md).

Members: CREPE tiny (a finished ``dissect run``, default recipe) and the Whisper tiny.en encoder
(a finished ``dissect run recipe=whisper_tiny_synth``). Both runs described every unit on the
synth probe set (seed 0). The HEAR tasks are rendered from a *different* synth seed (default 1),
so no task clip was seen while describing.

Compared, all with the HEAR protocol (hear-eval-kit's probe, ``fast`` grid, 8 points, 5 folds):

* ``full cat``: GURA's cat of the members' last layers (CREPE ``conv6`` 64-d + Whisper
  ``last_hidden_state`` 384-d = 448-d), and each member alone;
* ``all units``: every described unit of both runs concatenated (632 + 6144 = 6,776-d);
* ``guided D``: per run, ``size`` described units matching that run's concepts
  (:func:`dissect.ensemble.guided.select_units`, the concepts taking turns): CREPE's *pitch*
  concepts (the notes and registers of the synth concept set) and Whisper's *timbre* concepts
  (instrument families and noise colours), split between the members as in the full cat (1/7
  CREPE, 6/7 Whisper), for D = 448 (equal dimension) and smaller;
* ``random D``: the same number of units per run drawn at random from all of the run's
  described units (``random_units(pool="all")``), several draws.

Every unit subset is read from one cached embedding of *all* units
(:meth:`dissect.hear.embed.EmbeddedTask.select`): the scene embedding of a subset is exactly those
columns, so only the probes are retrained per variant.

    python benchmarks/hear_guided.py --crepe-run runs/default-XXXX \\
        --whisper-run runs/whisper_tiny_synth-XXXX --out runs/hear_guided

Writes ``<out>/table.md``, ``<out>/scores.csv`` and ``<out>/selection.json`` (the units of every
variant, with the matched terms and ranking scores).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

# The concept groups of the synth concept set (data/concepts/synth.txt): pitch = the 61 notes
# C2..C7 and the 5 registers; timbre = the 12 GM families and the 3 noise colours.
NOTES = [f"{n}{o}" for o in range(2, 8) for n in
         ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")][:61]
CREPE_TERMS = ", ".join(NOTES + ["very low pitch", "low pitch", "middle pitch", "high pitch",
                                 "very high pitch"])
WHISPER_TERMS = ("piano, chromatic percussion, organ, guitar, bass, strings, string ensemble, "
                 "brass, reed, pipe, synth lead, synth pad, white noise, pink noise, brown noise")


def summary_table(csv_text: str) -> str:
    """The compact table of a ``scores*.csv``: each variant's primary scores (mean ± std over
    folds), the random draws of one dimension folded into one row (mean over draws of their
    fold means ± std across draws, ddof 1)."""
    import csv
    import io
    import re
    import statistics

    rows = [r for r in csv.DictReader(io.StringIO(csv_text)) if r["primary"] == "True"]
    tasks = sorted({r["task"] for r in rows})
    prim = {r["task"]: r["score"] for r in rows}
    groups: dict[str, dict[str, list[float]]] = {}
    single: dict[str, dict[str, str]] = {}
    for r in rows:
        m = re.fullmatch(r"random (\d+) \(seed \d+\)", r["module"])
        if m:
            groups.setdefault(m.group(1), {}).setdefault(r["task"], []).append(float(r["mean"]))
        else:
            single.setdefault(r["module"], {})[r["task"]] = (f"{float(r['mean']):.3f} ± "
                                                            f"{float(r['std'] or 0):.3f}")
    for dim, per_task in groups.items():
        n = len(next(iter(per_task.values())))
        single[f"random {dim} ({n} draws)"] = {
            t: f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0:.3f}"
            for t, v in per_task.items()}
    dim_of = lambda name: int(re.search(r"\d+", name).group())  # noqa: E731
    order = sorted(single, key=lambda k: (not k.startswith(("full", "crepe", "whisper")),
                                          -dim_of(k), not k.startswith("guided"), k))
    head = "| variant | " + " | ".join(f"{t.split('-')[0]} {prim[t]}" for t in tasks) + " |"
    lines = [head, "|---|" + "---|" * len(tasks)]
    lines += [f"| {k} | " + " | ".join(single[k].get(t, "–") for t in tasks) + " |"
              for k in order]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table-from", default=None,
                    help="only print the compact table of this scores*.csv and exit")
    ap.add_argument("--crepe-run", required=True, help="finished dissect run of CREPE tiny")
    ap.add_argument("--whisper-run", required=True, help="finished dissect run of Whisper tiny")
    ap.add_argument("--out", default="runs/hear_guided")
    ap.add_argument("--crepe-terms", default=CREPE_TERMS)
    ap.add_argument("--whisper-terms", default=WHISPER_TERMS)
    ap.add_argument("--dims", default="448,112,28",
                    help="guided/random total dimensions (1/7 CREPE, 6/7 Whisper)")
    ap.add_argument("--random-seeds", default="0,1,2")
    ap.add_argument("--n-clips", type=int, default=300)
    ap.add_argument("--noise-clips", type=int, default=750)
    ap.add_argument("--seconds", type=float, default=0.25)
    ap.add_argument("--synth-seed", type=int, default=1)
    ap.add_argument("--grid", default="fast", choices=("default", "fast", "faster"))
    ap.add_argument("--grid-points", type=int, default=8)
    ap.add_argument("--seeds", default="0", help="probe seeds")
    ap.add_argument("--standardize", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    if argv is None:
        argv = sys.argv[1:]
    if "--table-from" in argv:  # no run needed: the other options may be absent
        print(summary_table(Path(argv[argv.index("--table-from") + 1]).read_text()))
        return 0
    args = ap.parse_args(argv)

    import torch

    from dissect.config import SynthConfig
    from dissect.ensemble.guided import random_units, select_units, unit_columns
    from dissect.ensemble.model import EnsembleModel
    from dissect.hear.embed import LoadedModule, embed_task, load_module
    from dissect.hear.evaluate import evaluate_embeddings, scores_csv, summarize
    from dissect.hear.guided import guided_member
    from dissect.hear.tasks import write_synth_tasks

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.perf_counter()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    # ---------------------------------------------------------------- tasks (unseen synth seed)
    cfg = SynthConfig(seed=args.synth_seed, n_clips=args.n_clips, min_seconds=args.seconds,
                      max_seconds=args.seconds, speech=False)
    tasks = write_synth_tasks(out / "tasks", cfg, tasks=("pitch", "family"))
    tasks.update(write_synth_tasks(out / "tasks", replace(cfg, n_clips=args.noise_clips),
                                   tasks=("noise_colour",)))
    log(f"tasks: { {k: sum(len(t.labels(s)) for s in t.splits) for k, t in tasks.items()} }")

    # ---------------------------------------------------------------- selections
    sel_c = select_units(args.crepe_run, args.crepe_terms)
    sel_w = select_units(args.whisper_run, args.whisper_terms)
    pop = [sum(map(len, s.population.values())) for s in (sel_c, sel_w)]
    log(f"matched: CREPE {sel_c.size}/{pop[0]} units, Whisper {sel_w.size}/{pop[1]} units")
    all_c, all_w = replace(sel_c, units=sel_c.population), replace(sel_w, units=sel_w.population)
    layout_width = pop[0]

    def columns(sc, sw) -> list[int]:
        return unit_columns(sc, all_c.units) + [layout_width + c
                                                for c in unit_columns(sw, all_w.units)]

    variants: dict[str, tuple[list[int], dict]] = {}
    for d in [int(x) for x in args.dims.split(",")]:
        dc, dw = max(1, round(d / 7)), d - max(1, round(d / 7))
        gc = select_units(args.crepe_run, args.crepe_terms, size=dc)
        gw = select_units(args.whisper_run, args.whisper_terms, size=dw)
        variants[f"guided {gc.size + gw.size}"] = (columns(gc, gw), {
            "crepe": gc.units, "whisper": gw.units, "crepe_scores": gc.scores,
            "whisper_scores": gw.scores, "matched": {**gc.matched, **gw.matched}})
        for s in [int(x) for x in args.random_seeds.split(",")]:
            rc = random_units(gc, seed=s, pool="all")
            rw = random_units(gw, seed=s, pool="all")
            variants[f"random {rc.size + rw.size} (seed {s})"] = (
                columns(rc, rw), {"crepe": rc.units, "whisper": rw.units})
    variants[f"all units {sum(pop)}"] = (list(range(sum(pop))), {})
    (out / "selection.json").write_text(json.dumps(
        {"crepe_run": args.crepe_run, "whisper_run": args.whisper_run,
         "crepe_terms": args.crepe_terms, "whisper_terms": args.whisper_terms,
         "variants": {k: v[1] for k, v in variants.items()}}, indent=1))

    # ---------------------------------------------------------------- embeddings
    every = EnsembleModel([guided_member(all_c, adapter_options={"hop_ms": 50.0}),
                           guided_member(all_w)], "cat", name="all-units")
    guided_module = importlib.import_module("dissect.hear.modules.guided")
    lm_all = LoadedModule("dissect.hear.modules.guided[all-units]", guided_module, every)
    lm_cat = load_module("dissect.hear.modules.gura_cat", device="cpu",
                         model_options={"members": "crepe_tiny,whisper_tiny"})
    probe = {"grid": args.grid, "grid_points": args.grid_points, "standardize": args.standardize}
    seeds = [int(s) for s in args.seeds.split(",")]
    rows, timing = [], {}
    for name, task in tasks.items():
        t1 = time.perf_counter()
        e_all = embed_task(lm_all, task, out / "embeddings" / "all-units" / name, log=log)
        e_cat = embed_task(lm_cat, task, out / "embeddings" / "gura_cat" / name, log=log)
        timing[f"embed {name}"] = time.perf_counter() - t1
        conv6 = unit_columns(replace(all_c, units={"conv6": all_c.units["conv6"]}), all_c.units)
        views = {"full cat 448 (crepe_tiny + whisper_tiny)": e_cat,
                 "crepe_tiny 64 (conv6)": e_all.select(conv6),
                 "whisper_tiny 384 (last)": e_cat.select(range(64, 448))}
        views.update({k: e_all.select(cols, k) for k, (cols, _) in variants.items()})
        for label, view in views.items():
            t2 = time.perf_counter()
            per_seed = {s: evaluate_embeddings(view, seed=s, log=lambda m: None, **probe)
                        for s in seeds}
            rows += summarize(label, name, task.evaluation, per_seed)
            timing[label] = timing.get(label, 0.0) + time.perf_counter() - t2
            log(f"[hear_guided] {name} {label}: {time.perf_counter() - t2:.0f} s")

    tag = "-standardized" if args.standardize else ""
    (out / f"scores{tag}.csv").write_text(scores_csv(rows))
    task_names = sorted({r["task"] for r in rows})
    prim = {t: next(r["score"] for r in rows if r["task"] == t and r["primary"])
            for t in task_names}
    cell = {(r["module"], r["task"], r["score"]): r for r in rows}
    lines = ["| variant | dim | " + " | ".join(f"{t.split('-')[0]} {prim[t]}"
                                                for t in task_names) + " |",
             "|---|---|" + "---|" * len(task_names)]
    for m in dict.fromkeys(r["module"] for r in rows):
        vals = []
        for t in task_names:
            r = cell[(m, t, prim[t])]
            vals.append(f"{r['mean']:.3f} ± {r['std'] or 0:.3f}")
        dim = next(int(w) for w in m.replace("(", " ").split() if w.isdigit())
        lines.append(f"| {m} | {dim} | " + " | ".join(vals) + " |")
    table = "\n".join(lines)
    (out / f"table{tag}.md").write_text(table + "\n")
    compact = summary_table(scores_csv(rows))
    (out / f"summary{tag}.md").write_text(compact + "\n")
    print(compact)
    log(f"total {time.perf_counter() - t0:.0f} s; timings {json.dumps(timing)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
