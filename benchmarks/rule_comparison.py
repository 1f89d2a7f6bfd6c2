"""Per layer: confirmed / unconfirmed / too few positives / no evidence, and the shown
description against AND's summary under both scoring rules, on the same neurons' test clips.

    .venv/bin/python benchmarks/rule_comparison.py RUN_DIR

Reads ``explanations.jsonl``. The comparison is paired: over the neurons with a shown
description whose AND summary was scored on the same test clips, the mean (and its standard
error) of the test correlation and detection of each, under the terms rule (``test``) and the
caption rule (``test_caption``). It also checks that no shown description has a validation
correlation at or below 0 or a p-value above the confirmation level.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dissect import artifacts
from dissect.explain.choice import STATUSES


def _ms(x: list[float]) -> str:
    a = np.asarray(x, dtype=float)
    if not len(a):
        return "-"
    se = a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
    return f"{a.mean():.3f} ± {se:.3f}"


def main(run_dir: str) -> None:
    rows = artifacts.read_jsonl(Path(run_dir) / artifacts.EXPLANATIONS)
    layers: dict[str, dict[str, int]] = {}
    for r in rows:
        d = layers.setdefault(r["layer"], dict.fromkeys(STATUSES, 0))
        d[r.get("status", "?")] = d.get(r.get("status", "?"), 0) + 1
    print("| layer | " + " | ".join(STATUSES) + " |")
    print("|---|" + "---|" * len(STATUSES))
    for lay, d in layers.items():
        print(f"| {lay} | " + " | ".join(str(d[s]) for s in STATUSES) + " |")
    tot = {s: sum(d[s] for d in layers.values()) for s in STATUSES}
    print("| all | " + " | ".join(str(tot[s]) for s in STATUSES) + " |")
    bad = [r for r in rows if not r["no_clear_concept"]
           and not ((r["val"].get("correlation") or 0) > 0 and r["val"].get("p") is not None)]
    print(f"\nshown descriptions without a positive, tested validation correlation: {len(bad)}")
    print("\n| rule | metric | shown | AND summary | neurons |")
    print("|---|---|---|---|---|")
    for rule, key in (("terms", "test"), ("caption", "test_caption")):
        for metric in ("correlation", "detection"):
            ours, theirs = [], []
            for r in rows:
                if r["no_clear_concept"]:
                    continue
                shown = next(c for c in r["candidates"] if c["kind"] == r["kind"]
                             and c["text"] == r["description"])
                andc = next((c for c in r["candidates"] if c["kind"] == "and"), None)
                a = ((andc or {}).get("scores") or {}).get(key, {}).get(metric)
                b = (shown.get("scores") or {}).get(key, {}).get(metric)
                if a is None or b is None:
                    continue
                ours.append(b)
                theirs.append(a)
            print(f"| {rule} | {metric} | {_ms(ours)} | {_ms(theirs)} | {len(ours)} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
