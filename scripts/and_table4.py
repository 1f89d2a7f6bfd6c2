"""AND Table 4 (concept-specific pruning) on a finished run: forget a concept, keep the rest.

For every concept: select its neurons from the run's descriptions (``keyword``: the concept as
words of the AND summary or keywords, as AND's OCP does), from the closed-set labels
(``concept``: among the top-k DB concepts) and from the shown, checked descriptions
(``evidence``: the concept is a term of the shown description, ranked by that term's measured
effect size), prune growing prefixes of the ranking on the held-out clips (``probe.holdout``:
clips the dissection never saw, when the run has them), and compare with matched random pruning
(same per-layer counts, ``--seeds`` draws).
Per concept and method it reports, at the selection's best curve point (the prefix with the
largest forget gap ΔR - ΔA in class-mean logits among those that keep the retained classes'
accuracy within ``--max-rest-acc-drop``, 2 points by default: forget the concept, keep the
rest; the point is chosen on the evaluation clips, as AND's table is), ΔA, ΔR, the forget
ratio ΔA/ΔR and the gap in logits, probabilities and accuracy, class means as AND reports them
(clip means too), the same numbers for the random baseline at that size, and the retained
classes' accuracy change.
Writes ``<run>/prune/table4.json`` and prints a markdown table.

    .venv/bin/python scripts/and_table4.py runs/yamnet_free \\
        --concept "snare drum=Snare drum" --concept "hi-hat=Hi-hat" ...

``--concept NAME=CLASS[,CLASS...]``: NAME is searched in descriptions; the target clips are
those whose ``audioset`` label is one of the CLASSes (also the closed-set names).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

MEASURES = ("logit", "prob", "acc")


def _ratio(a, r):
    if a is None or r is None:
        return None
    if r >= 0:
        return math.inf if a < 0 else None
    return a / r


def _clean(x):
    """JSON-safe: infinities become the string "inf"."""
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def summarise(out: dict) -> dict:
    """Best point of the selection curve, the random mean at the same size, per measure."""
    n_best = (out.get("best") or {}).get("n")
    pt = next((p for p in out["curve"] if p["n"] == n_best), None)
    if pt is None:
        return {"n_selected": out["selection"]["n_neurons"], "best": None}
    band = out.get("random") or {}
    rnd = next((p for p in band.get("mean", []) if p["n"] == pt["n"]), None)
    res = {"n_selected": out["selection"]["n_neurons"], "n": pt["n"],
           "per_layer": out["selection"]["per_layer"],
           "n_target": out["evaluation"]["n_target"], "n_rest": out["evaluation"]["n_rest"]}
    for kind, pre in (("class_mean", "class_"), ("clip_mean", "")):
        blk = {}
        for m in MEASURES:
            a, r = pt.get(f"{pre}{m}_delta_A"), pt.get(f"{pre}{m}_delta_R")
            ra, rr = (rnd or {}).get(f"{pre}{m}_delta_A"), (rnd or {}).get(f"{pre}{m}_delta_R")
            blk[m] = {"delta_A": a, "delta_R": r, "ratio": _ratio(a, r),
                      "gap": None if a is None or r is None else r - a,
                      "random_delta_A": ra, "random_delta_R": rr, "random_ratio": _ratio(ra, rr)}
        res[kind] = blk
    acc = out["report"]["measures"]["acc"]["class_mean"]
    res["rest_acc_before"] = acc["rest"]["before"]
    res["rest_acc_after_best"] = (acc["rest"]["before"] + pt["class_acc_delta_R"]
                                  if pt.get("class_acc_delta_R") is not None else None)
    return res


def _fmt(x, pct=False):
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{100 * x:+.1f}" if pct else f"{x:+.2f}"


def markdown(rows: list[dict]) -> str:
    head = ("| concept | method | neurons (best n / selected) | ΔA logit | ΔR logit | ΔA/ΔR | "
            "random ΔA/ΔR | ΔA prob | ΔR prob | ΔA acc | ΔR acc | retained acc |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        s = r["summary"]
        if s.get("class_mean") is None:
            lines.append(f"| {r['concept']} | {r['method']} | 0 / {s['n_selected']} |"
                         + " - |" * 9)
            continue
        lg, pr, ac = (s["class_mean"][m] for m in MEASURES)
        ratio = "-" if lg["ratio"] is None else ("inf" if math.isinf(lg["ratio"])
                                                 else f"{lg['ratio']:.2f}")
        rr = lg["random_ratio"]
        rratio = "-" if rr is None else ("inf" if math.isinf(rr) else f"{rr:.2f}")
        ret = (f"{100 * s['rest_acc_before']:.1f} -> {100 * s['rest_acc_after_best']:.1f}"
               if s.get("rest_acc_after_best") is not None else "-")
        lines.append(f"| {r['concept']} | {r['method']} | {s['n']} / {s['n_selected']} | "
                     f"{_fmt(lg['delta_A'])} | {_fmt(lg['delta_R'])} | {ratio} | {rratio} | "
                     f"{_fmt(pr['delta_A'], True)} | {_fmt(pr['delta_R'], True)} | "
                     f"{_fmt(ac['delta_A'], True)} | {_fmt(ac['delta_R'], True)} | {ret} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--concept", action="append", required=True,
                    help="NAME=CLASS[,CLASS...] (repeatable)")
    ap.add_argument("--methods", default="keyword,concept,evidence")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--points", type=int, default=6)
    ap.add_argument("--spacing", default="geometric")
    ap.add_argument("--max-neurons", type=int, default=None)
    ap.add_argument("--max-rest-acc-drop", type=float, default=0.02,
                    help="best point only among points keeping retained-class accuracy "
                         "within this fraction (default 0.02 = 2 points; -1: no limit)")
    ap.add_argument("--random-sizes", default="best", choices=("all", "best"),
                    help="random baseline at every curve size or only at the best point")
    ap.add_argument("--top-k", type=int, default=3, help="closed-set concepts looked at")
    ap.add_argument("--evidence-top-k", type=int, default=None,
                    help="shown-description terms looked at (default: all)")
    ap.add_argument("--holdout", type=float, default=0.3)
    ap.add_argument("--reuse", action="store_true",
                    help="read prune/<concept>.<method>.json when it exists instead of pruning")
    args = ap.parse_args(argv)

    from dissect.prune.unlearn import _slug, prune_run

    run = Path(args.run_dir)
    rows = []
    for spec in args.concept:
        name, _, classes = spec.partition("=")
        classes = [c.strip() for c in (classes or name).split(",") if c.strip()]
        wanted = {c.lower() for c in classes}

        def target(clip, wanted=wanted) -> bool:
            return str((clip.get("labels") or {}).get("audioset", "")).lower() in wanted

        for method in args.methods.split(","):
            done = run / "prune" / f"{_slug(f'{name}.{method}')}.json"
            if args.reuse and done.is_file():  # a finished concept of an earlier call
                out = json.loads(done.read_text())
                print(f"[table4] {name} / {method}: reused {done}", file=sys.stderr)
            else:
                top_k = args.evidence_top_k if method == "evidence" else args.top_k
                out = prune_run(run, name, method, concepts=classes, top_k=top_k,
                                target=target, holdout=args.holdout, points=args.points,
                                spacing=args.spacing, seeds=tuple(range(args.seeds)),
                                max_neurons=args.max_neurons, name=f"{name}.{method}",
                                random_sizes=args.random_sizes,
                                max_rest_acc_drop=(None if args.max_rest_acc_drop < 0
                                                   else args.max_rest_acc_drop),
                                log=lambda s: print(s, file=sys.stderr))
            rows.append({"concept": name, "classes": classes, "method": method,
                         "evaluation": {k: out["evaluation"].get(k) for k in
                                        ("source", "n_clips", "n_target", "n_rest")},
                         "summary": summarise(out), "curve": out["curve"],
                         "random_mean": (out.get("random") or {}).get("mean")})
            print(f"[table4] {name} / {method}: {rows[-1]['summary'].get('n')} neurons",
                  file=sys.stderr)
    summ = [r for r in rows if r["summary"].get("class_mean")]
    mean = {}
    for method in args.methods.split(","):
        got = [r["summary"]["class_mean"]["logit"] for r in summ if r["method"] == method]
        fin = [g for g in got if g["ratio"] is not None and not math.isinf(g["ratio"])]
        mean[method] = {
            "concepts": len(got),
            "delta_A": sum(g["delta_A"] for g in got) / len(got) if got else None,
            "delta_R": sum(g["delta_R"] for g in got) / len(got) if got else None,
            "ratio_of_means": _ratio(sum(g["delta_A"] for g in got) / len(got),
                                     sum(g["delta_R"] for g in got) / len(got)) if got else None,
            "mean_finite_ratio": sum(g["ratio"] for g in fin) / len(fin) if fin else None,
            "random_ratio_of_means": _ratio(
                sum(g["random_delta_A"] for g in got) / len(got),
                sum(g["random_delta_R"] for g in got) / len(got)) if got else None,
        }
    table = markdown(rows)
    (run / "prune").mkdir(exist_ok=True)
    (run / "prune" / "table4.json").write_text(
        json.dumps(_clean({"rows": rows, "mean": mean, "markdown": table}), indent=1) + "\n")
    print(table)
    print(json.dumps(_clean(mean), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
