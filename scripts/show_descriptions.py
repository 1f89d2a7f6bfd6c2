"""Print shown neuron descriptions of a run as a markdown table, picked by a fixed rule.

Per listed layer (default: an evenly spaced third of the run's layers plus the head), the
neuron with the highest test detection AUROC among those whose shown description has at least
``--min-pos`` positive test clips (the clips the description was neither fitted nor chosen on),
ties by unit. No hand-picking: the rule and the run decide.

    .venv/bin/python scripts/show_descriptions.py runs/yamnet_free3 --n 10 --min-pos 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def pick(rows: list[dict], layers: list[str], min_pos: int) -> list[dict]:
    """One row per layer: max test detection with ``n_pos >= min_pos``; ties by unit."""
    out = []
    for layer in layers:
        ok = [r for r in rows if r["layer"] == layer and r.get("kind") != "none"
              and (r.get("test") or {}).get("n_pos", 0) >= min_pos
              and (r.get("test") or {}).get("detection") is not None]
        if ok:
            out.append(max(ok, key=lambda r: (r["test"]["detection"], -int(r["unit"]))))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--n", type=int, default=10, help="layers to show (evenly spaced)")
    ap.add_argument("--min-pos", type=int, default=5)
    ap.add_argument("--layers", nargs="*", default=None)
    args = ap.parse_args(argv)
    path = Path(args.run_dir) / "explanations.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order = list(dict.fromkeys(r["layer"] for r in rows))
    if args.layers:
        layers = args.layers
    else:
        step = (len(order) - 1) / max(1, args.n - 1)
        layers = list(dict.fromkeys(order[round(i * step)] for i in range(args.n)))
    print("| layer | unit | description | kind | test AUROC | test clips with / without |")
    print("|---|---|---|---|---|---|")
    for r in pick(rows, layers, args.min_pos):
        t = r["test"]
        text = str(r["description"]).replace("|", "\\|")
        print(f"| {r['layer']} | {r['unit']} | {text} | {r['kind']} | {t['detection']:.2f} | "
              f"{t['n_pos']} / {t['n_neg']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
