"""Print shown neuron descriptions of a run as a markdown table, picked by a fixed rule.

Per listed layer (default: ``--n`` evenly spaced layers from the first to the head), the
neuron with the highest test detection AUROC (on the clips the description was neither fitted
nor chosen on) among those whose shown description's first term is carried by at least
``--min-support`` of the dissected clips, ties by unit. No hand-picking: the rule and the run
decide.

    .venv/bin/python scripts/show_descriptions.py runs/yamnet_free3 --n 10 --min-support 15
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _support(row: dict, shown: dict) -> int:
    """Fit clips carrying the shown description's first term (0 without terms)."""
    terms = (shown.get((row["layer"], int(row["unit"]))) or {}).get("terms") or []
    return int(terms[0].get("support") or 0) if terms else 0


def pick(rows: list[dict], layers: list[str], min_support: int, shown: dict) -> list[dict]:
    """One row per layer: max test detection with first-term support >= ``min_support``;
    ties by unit."""
    out = []
    for layer in layers:
        ok = [r for r in rows if r["layer"] == layer and r.get("kind") != "none"
              and _support(r, shown) >= min_support
              and (r.get("test") or {}).get("detection") is not None]
        if ok:
            out.append(max(ok, key=lambda r: (r["test"]["detection"], -int(r["unit"]))))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--n", type=int, default=10, help="layers to show (evenly spaced)")
    ap.add_argument("--min-support", type=int, default=15)
    ap.add_argument("--layers", nargs="*", default=None)
    args = ap.parse_args(argv)
    from dissect.evaluation.rundata import shown_descriptions

    path = Path(args.run_dir) / "explanations.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    shown = shown_descriptions(args.run_dir)  # the shown terms with their evidence
    order = list(dict.fromkeys(r["layer"] for r in rows))
    if args.layers:
        layers = args.layers
    else:
        step = (len(order) - 1) / max(1, args.n - 1)
        layers = list(dict.fromkeys(order[round(i * step)] for i in range(args.n)))
    print("| layer | unit | description | kind | test AUROC | test clips "
          "| fit clips with its first term |")
    print("|---|---|---|---|---|---|---|")
    for r in pick(rows, layers, args.min_support, shown):
        t = r["test"]
        text = str(r["description"]).replace("|", "\\|")
        print(f"| {r['layer']} | {r['unit']} | {text} | {r['kind']} | {t['detection']:.2f} | "
              f"{t['n_pos'] + t['n_neg']} | {_support(r, shown)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
