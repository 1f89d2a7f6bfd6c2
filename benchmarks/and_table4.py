"""AND Table 4 (concept-specific pruning) on a finished run: a thin wrapper of
:func:`dissect.pruning.table4.prune_table`, which ``dissect prune`` runs too.

The same table from the CLI::

    .venv/bin/dissect prune run_dir=runs/yamnet_head methods=[evidence,keyword,concept] \\
        target_label=audioset max_neurons=256 \\
        'concept=[snare drum=Snare drum,hi-hat=Hi-hat,cymbal=Cymbal]'

and from this script::

    .venv/bin/python benchmarks/and_table4.py runs/yamnet_head --max-neurons 256 \\
        --concept "snare drum=Snare drum" --concept "hi-hat=Hi-hat" --concept "cymbal=Cymbal"

The pruning size and the retained-accuracy budget are chosen on the select half of the run's
held-out clips and reported on the report half with bootstrap 95 % intervals; the random
baseline gets the same choice (docs/pruning.md). A run without held-out clips is refused.
Writes ``<run>/prune/table4.json`` and ``<run>/prune/table4.md`` and prints the markdown.

``--concept NAME=CLASS[,CLASS...]``: NAME is searched in descriptions; the target clips are
those whose ``--target-label`` label (default ``audioset``) is one of the CLASSes.
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--concept", action="append", required=True,
                    help="NAME=CLASS[,CLASS...] (repeatable)")
    ap.add_argument("--methods", default="evidence,keyword,concept")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--points", type=int, default=6)
    ap.add_argument("--spacing", default="geometric")
    ap.add_argument("--max-neurons", type=int, default=None)
    ap.add_argument("--max-rest-acc-drop", type=float, default=0.02,
                    help="budget: the chosen size keeps retained-class accuracy within this "
                         "fraction on the select half (default 0.02 = 2 points; -1: no limit)")
    ap.add_argument("--fixed-size", type=int, default=None,
                    help="prune exactly this many neurons (nothing chosen, no select half)")
    ap.add_argument("--select-fraction", type=float, default=0.5)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--top-k", type=int, default=3, help="closed-set concepts looked at")
    ap.add_argument("--evidence-top-k", type=int, default=None,
                    help="shown-description terms looked at (default: all)")
    ap.add_argument("--target-label", default="audioset",
                    help="label column compared with the CLASSes ('' : any label)")
    ap.add_argument("--name", default="table4")
    args = ap.parse_args(argv)

    from dissect.pruning.table4 import prune_table

    try:
        out = prune_table(args.run_dir, args.concept, args.methods.split(","),
                          top_k=args.top_k, evidence_top_k=args.evidence_top_k,
                          max_neurons=args.max_neurons, target_label=args.target_label or None,
                          seeds=tuple(range(args.seeds)), points=args.points,
                          spacing=args.spacing,
                          max_rest_acc_drop=(None if args.max_rest_acc_drop < 0
                                             else args.max_rest_acc_drop),
                          select_fraction=args.select_fraction, split_seed=args.split_seed,
                          fixed_size=args.fixed_size, bootstrap=args.bootstrap, name=args.name,
                          log=lambda s: print(s, file=sys.stderr))
    except ValueError as exc:  # NoHeldOutClips included: a message, not a traceback
        print(f"and_table4: error: {exc}", file=sys.stderr)
        return 2
    print(out["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
