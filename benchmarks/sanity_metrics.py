"""Neuron_Eval's missing-labels and extra-labels sanity tests on dissect's metric functions.

    .venv/bin/python benchmarks/sanity_metrics.py [--n 100000] [--draws 5]

Prints, per metric, the mean normalised decrease at every concept frequency gamma and whether
it passes (every decrease >= 0.001), as a markdown table (docs/descriptions.md).
"""

from __future__ import annotations

import argparse

from dissect.explain.metrics import GAMMAS, METRICS, passes, sanity_test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--draws", type=int, default=5)
    args = ap.parse_args()
    head = " | ".join(f"γ={g}" for g in GAMMAS)
    print(f"| metric | test | {head} | passes |")
    print("|---|---|" + "---|" * len(GAMMAS) + "---|")
    for name, fn in METRICS.items():
        res = sanity_test(fn, n=args.n, draws=args.draws)
        ok = passes(res)
        for t in ("missing", "extra"):
            vals = " | ".join(f"{res[t][g]:.4f}" for g in GAMMAS)
            print(f"| {name} | {t} | {vals} | {'yes' if ok[t] else '**no**'} |")


if __name__ == "__main__":
    main()
