"""Neuron_Eval's sanity tests on a real run: for every confirmed description, its concept
vector on the test clips (the clips its claims match) against one with a random half of its
clips removed (missing labels) and one with as many random other clips added (extra labels).

    .venv/bin/python benchmarks/sanity_real_run.py RUN_DIR [--seed 0]

Prints, per metric, the share of neurons whose score falls under each test and the median
normalised decrease. The activations are the neuron's real pooled values, so unlike the
simulation the "true" description is itself imperfect.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from dissect import artifacts
from dissect.description.captions import terms_by_clip
from dissect.explain.candidates import term_matrix
from dissect.explain.metrics import METRICS
from dissect.explain.scoring import claim_prediction
from dissect.explain.splits import assign_splits, split_keys
from dissect.recording.store import load_activations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    run = Path(args.run_dir)
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    d = {k: artifacts.config_setting(cfg, "explain", k) for k in ("splits", "split_seed")}
    clips = artifacts.read_jsonl(run / artifacts.CLIPS)
    ids = [c["id"] for c in clips]
    terms, X = term_matrix(ids, terms_by_clip(run))
    index = {t.lower(): j for j, t in enumerate(terms)}
    split = assign_splits(ids, tuple(d["splits"] or (0.6, 0.2, 0.2)), d["split_seed"] or 0,
                          *split_keys(clips))
    test = split == "test"
    rng = np.random.default_rng(args.seed)
    res = {m: {"missing": [], "extra": []} for m in METRICS}
    acts: dict[str, np.ndarray] = {}
    for r in artifacts.read_jsonl(run / artifacts.EXPLANATIONS):
        if r.get("status") != "confirmed":
            continue
        shown = next(c for c in r["candidates"] if c["kind"] == r["kind"]
                     and c["text"] == r["description"])
        if r["layer"] not in acts:
            acts[r["layer"]] = load_activations(run, r["layer"]).numpy()
        a = acts[r["layer"]][test, r["unit"]].astype(np.float64)
        c = (claim_prediction(X, index, shown["claims"])[test] > 0).astype(float)
        pos, neg = np.flatnonzero(c), np.flatnonzero(c == 0)
        if len(pos) < 2 or len(neg) < len(pos):
            continue
        miss, extra = c.copy(), c.copy()
        miss[rng.choice(pos, len(pos) // 2, replace=False)] = 0
        extra[rng.choice(neg, len(pos), replace=False)] = 1
        alpha = len(pos) / len(c)
        for name, fn in METRICS.items():
            base = fn(a, c, alpha)
            for t, cc in (("missing", miss), ("extra", extra)):
                res[name][t].append((base - fn(a, cc, alpha)) / abs(base) if base else 0.0)
    n = len(res["correlation"]["missing"])
    print(f"{n} confirmed descriptions with >= 2 test clips\n")
    print("| metric | falls under missing | median decrease | falls under extra | "
          "median decrease |")
    print("|---|---|---|---|---|")
    for name, r in res.items():
        mi, ex = np.asarray(r["missing"]), np.asarray(r["extra"])
        print(f"| {name} | {np.mean(mi > 0):.1%} | {np.median(mi):.3f} | {np.mean(ex > 0):.1%} "
              f"| {np.median(ex):.3f} |")


if __name__ == "__main__":
    main()
