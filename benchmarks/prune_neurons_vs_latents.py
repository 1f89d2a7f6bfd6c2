"""Concept pruning, neurons against SAE latents: Table 4 rows side by side.

    python benchmarks/prune_neurons_vs_latents.py RUN_DIR NEURONS LATENTS [NEURONS LATENTS ...]

Each NEURONS / LATENTS pair names two tables of ``dissect prune`` in ``RUN_DIR/prune`` (``name=``)
made with the same concepts, methods and protocol settings, one with ``layers=[L]`` and one with
``layers=[sae:L]``. A pair must have been evaluated on the same clips with the same select /
report split (checked: the clip ids and the select ids are equal; refused otherwise), so the
two sides are measured alike. Pairs usually differ by ``split_seed``.

Prints, per pair, one line per concept and method where either side selected something
(chosen / selected units, ΔA and ΔR in class-mean logits and the forget ratio ΔA/ΔR, each with
its 95 % bootstrap interval over the report half), then, for every pair, the mean over all
concepts (none dropped) per method for both sides and their random baselines.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _num(x: Any, signed: bool = True) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def ci(stat: Mapping[str, Any] | None, signed: bool = True) -> str:
    """``value [lo, hi]``, two decimals."""
    if not stat:
        return "-"
    return (f"{_num(stat.get('value'), signed)} [{_num(stat.get('lo'), signed)}, "
            f"{_num(stat.get('hi'), signed)}]")


def load(run_dir: Path, name: str) -> dict[str, Any]:
    path = run_dir / "prune" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such table (dissect prune ... name={name})")
    return json.loads(path.read_text(encoding="utf-8"))


def check_alike(a: Mapping[str, Any], b: Mapping[str, Any], names: Sequence[str]) -> None:
    """Refuse a pair not evaluated on the same clips and split, or with other settings."""
    for key in ("clip_ids", "select_ids"):
        if a["evaluation"][key] != b["evaluation"][key]:
            raise ValueError(f"{names[0]} and {names[1]}: different evaluation {key}; make both "
                             "with the same concepts, split_seed and evaluation settings")
    sa = {k: v for k, v in a["settings"].items() if k not in ("layers", "features")}
    sb = {k: v for k, v in b["settings"].items() if k not in ("layers", "features")}
    if sa != sb:
        diff = sorted(k for k in sa.keys() | sb.keys() if sa.get(k) != sb.get(k))
        raise ValueError(f"{names[0]} and {names[1]}: different settings {diff}")


def pair_lines(neurons: Mapping[str, Any], latents: Mapping[str, Any]) -> list[str]:
    """One markdown line per concept and method where either side selected units."""
    lines = []
    for rn, rl in zip(neurons["rows"], latents["rows"], strict=True):
        if not (rn["n_selected"] or rl["n_selected"]):
            continue
        c = rn["counts"]
        cells = [rn["concept"], rn["method"], f"{c['select_target']} / {c['report_target']}"]
        for r in (rn, rl):
            rep = r["report"]
            cells += [f"{r['choice']['n']} / {r['n_selected']}", ci(rep["logit_delta_A"]),
                      ci(rep["logit_delta_R"]), ci(rep["logit_ratio"], signed=False)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("tables", nargs="+", help="NEURONS LATENTS [NEURONS LATENTS ...]")
    a = ap.parse_args(argv)
    if len(a.tables) % 2:
        ap.error("give the tables in pairs: NEURONS LATENTS")
    pairs = []
    for i in range(0, len(a.tables), 2):
        names = a.tables[i: i + 2]
        try:
            n, lat = (load(a.run_dir, x) for x in names)
            check_alike(n, lat, names)
        except (OSError, ValueError) as exc:
            print(f"prune_neurons_vs_latents: error: {exc}", file=sys.stderr)
            return 2
        pairs.append((names, n, lat))
    head = ("| concept | method | target clips (select / report) | neurons: n chosen / selected "
            "| ΔA | ΔR | ΔA/ΔR | latents: n chosen / selected | ΔA | ΔR | ΔA/ΔR |")
    for names, n, lat in pairs:
        ev = n["evaluation"]
        print(f"### {names[0]} ({', '.join(n['settings']['layers'])}) vs {names[1]} "
              f"({', '.join(lat['settings']['layers'])}): split seed {ev['split']['seed']}, "
              f"{ev['n_clips']} clips, {ev['split']['n_select']} select / "
              f"{ev['split']['n_report']} report\n")
        print(head)
        print("|" + "---|" * 11)
        print("\n".join(pair_lines(n, lat)) or "| (nothing selected on either side) |")
        print()
    print("| split seed | method | neurons ΔA | neurons ΔR | neurons ratio of means | random "
          "ratio | latents ΔA | latents ΔR | latents ratio of means | random ratio |")
    print("|" + "---|" * 10)
    for _, n, lat in pairs:
        for method in n["mean"]:
            cells = [str(n["evaluation"]["split"]["seed"]), method]
            for t in (n, lat):
                rep, rnd = t["mean"][method]["report"] or {}, t["mean"][method]["random"] or {}
                cells += [ci(rep.get("logit_delta_A")), ci(rep.get("logit_delta_R")),
                          ci(rep.get("logit_ratio"), signed=False),
                          ci(rnd.get("logit_ratio"), signed=False)]
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
