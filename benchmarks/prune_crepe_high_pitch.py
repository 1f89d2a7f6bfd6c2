"""Reproduce the pruning experiment of docs/pruning.md: make CREPE full forget high pitch
(and, second, brass timbre) by pruning the conv channels whose descriptions say so.

Steps (all offline, CPU):

1. The dissection run: ``dissect run run_dir=RUN model.source=full probe.synth.n_clips=N
   llm.client=rules record.progress=false`` (skipped when RUN already has ``concepts.jsonl``).
2. Held-out evaluation clips: a second synth set rendered with another seed (``--eval-seed``),
   never seen by the run; only clips with a true f0 (notes, tones, harmonic complexes).
3. For each experiment, :func:`dissect.pruning.prune_run` selects the conv neurons, prunes them
   with forward hooks, and evaluates pitch accuracy (argmax bin within 50 cents of the true f0,
   from frame-averaged logits) on target vs other clips, along a forget/retain curve, against
   a random baseline of equal size and per-layer counts over ``--seeds`` seeds. Results go to
   ``RUN/prune/<name>.json`` (+ masks); a markdown summary is printed.

Usage::

    python benchmarks/prune_crepe_high_pitch.py --run-dir runs/crepe-full-synth180
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CONV = [f"conv{i}" for i in range(1, 7)]
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(midi: int) -> str:
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def ensure_run(run_dir: Path, n_clips: int) -> None:
    """Run the dissection with the CLI unless it already finished."""
    if (run_dir / "concepts.jsonl").is_file():
        print(f"[experiment] reusing the finished run {run_dir}", file=sys.stderr)
        return
    exe = Path(sys.executable).parent / "dissect"
    cmd = [str(exe) if exe.exists() else "dissect", "run", f"run_dir={run_dir}",
           "model.source=full", f"probe.synth.n_clips={n_clips}", "llm.client=rules",
           "record.progress=false"]
    print("[experiment] " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)


def heldout_clips(seed: int, n_clips: int) -> list[dict]:
    """Clip rows of a synth set rendered with ``seed`` (with a true f0 only)."""
    from dissect.config import SynthConfig
    from dissect.datasets.synth import load_synth

    probe = load_synth(SynthConfig(seed=seed, n_clips=n_clips), progress=False)
    return [{"id": c.id, "path": str(c.path), "labels": dict(c.labels),
             "concepts": dict(c.concepts)}
            for c in probe.clips if c.concepts.get("f0_hz") is not None]


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def summarize(name: str, out: dict) -> str:
    """A markdown block with the numbers docs/pruning.md quotes."""
    sel, ev = out["selection"], out["evaluation"]
    acc = out["report"]["measures"]["acc"]["clip_mean"]
    semi = out["report"]["measures"]["acc_semitone"]["clip_mean"]
    logit = out["report"]["measures"]["logit"]["clip_mean"]
    prob = out["report"]["measures"]["prob"]["clip_mean"]
    lines = [f"### {name}: {out['concept']!r} ({sel['method']})", "",
             f"- neurons pruned: {sel['n_neurons']} {sel['per_layer']}",
             f"- eval clips: {ev['n_clips']} ({ev['n_target']} target, {ev['n_rest']} rest), "
             f"target = {ev['target']}", "",
             "| measure | target before | target after | rest before | rest after | ΔA | ΔR |"
             " ΔR−ΔA |", "|---|---|---|---|---|---|---|---|"]
    for label, blk, f in (("pitch acc ±50 c (%)", acc, pct), ("pitch acc ±100 c (%)", semi, pct),
                          ("true-bin logit", logit, lambda v: f"{v:.3f}"),
                          ("true-bin sigmoid prob", prob, lambda v: f"{v:.3f}")):
        lines.append(f"| {label} | {f(blk['target']['before'])} | {f(blk['target']['after'])} | "
                     f"{f(blk['rest']['before'])} | {f(blk['rest']['after'])} | "
                     f"{f(blk['delta_A'])} | {f(blk['delta_R'])} | {f(blk['forget_gap'])} |")
    lines += ["", "Forget/retain curve (pitch acc ±50 c, %), selection vs random "
              f"(mean ± std over {len(out['random']['seeds']) if out['random'] else 0} seeds):",
              "", "| n pruned | target (sel) | rest (sel) | target (random) | rest (random) |",
              "|---|---|---|---|---|"]
    band = out["random"] or {"mean": [], "std": []}
    for i, p in enumerate(out["curve"]):
        m = band["mean"][i] if band["mean"] else {}
        s = band["std"][i] if band["std"] else {}
        rnd_t = f"{pct(m.get('acc_target'))} ± {pct(s.get('acc_target'))}" if m else "n/a"
        rnd_r = f"{pct(m.get('acc_rest'))} ± {pct(s.get('acc_rest'))}" if m else "n/a"
        lines.append(f"| {p['n']} | {pct(p['acc_target'])} | {pct(p['acc_rest'])} | {rnd_t} | "
                     f"{rnd_r} |")
    lines += ["", "True-bin logit change (ΔA target, ΔR rest, gap = ΔR − ΔA; positive = the target "
              "lost more), selection vs random (mean ± std):", "",
              "| n pruned | ΔA (sel) | ΔR (sel) | gap (sel) | ΔA (random) | ΔR (random) | "
              "gap (random) |", "|---|---|---|---|---|---|---|"]
    for i, p in enumerate(out["curve"]):
        m = band["mean"][i] if band["mean"] else {}
        s = band["std"][i] if band["std"] else {}

        def pm(key, m=m, s=s):
            return f"{m[key]:.3f} ± {s[key]:.3f}" if m.get(key) is not None else "n/a"

        lines.append(f"| {p['n']} | {p['logit_delta_A']:.3f} | {p['logit_delta_R']:.3f} | "
                     f"{p['logit_forget_gap']:.3f} | {pm('logit_delta_A')} | "
                     f"{pm('logit_delta_R')} | {pm('logit_forget_gap')} |")
    return "\n".join(lines)


def summarize_scores(s: dict) -> str:
    """The scores.json numbers docs/pruning.md quotes."""
    lines = ["### scores.json", "", f"settings: {json.dumps(s['settings'], sort_keys=True)}", ""]
    for method, ll in s["last_layer"].items():
        lines.append(f"last layer ({method}): {json.dumps(ll, sort_keys=True)}")
    lines += ["", "| layer | AUPRC | prevalence | Pearson | F1 | IoU | detection AUROC | "
              "interpretable | poly (clusters) | poly (concepts) | adjectives |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    for layer, st in s["layers"].items():
        ag = s["agreement"].get(layer, {}).get("mean", {})
        det = s["detection"].get(layer, {})
        lines.append(f"| {layer} | {f(ag.get('auprc'))} | {f(ag.get('prevalence'))} | "
                     f"{f(ag.get('pearson'))} | {f(ag.get('f1'))} | {f(ag.get('iou'))} | "
                     f"{f(det.get('mean_auroc'))} | {f(st['interpretable_fraction'])} | "
                     f"{f(st['mean_poly_clusters'])} | {f(st['mean_poly_concepts'])} | "
                     f"{f(st['mean_adjectives'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", default="runs/crepe-full-synth180")
    ap.add_argument("--n-clips", type=int, default=180, help="probe clips of the run")
    ap.add_argument("--eval-seed", type=int, default=1)
    ap.add_argument("--eval-clips", type=int, default=100,
                    help="synth clips rendered for evaluation (those with f0 are used)")
    ap.add_argument("--cutoff-midi", type=int, default=72, help="high pitch = MIDI >= this")
    ap.add_argument("--hop-ms", type=float, default=100.0, help="evaluation frame hop")
    ap.add_argument("--crop", type=float, nargs=2, default=(0.1, 0.2),
                    metavar=("START_S", "SECONDS"), help="evaluation window of each clip")
    ap.add_argument("--seeds", type=int, default=5, help="random-baseline seeds")
    ap.add_argument("--points", type=int, default=5,
                    help="forget/retain curve points (halving sizes: n/16, ..., n/2, n)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None, help="experiment names to run")
    ap.add_argument("--no-scores", action="store_true",
                    help="skip evaluate_run (scores.json) on the run")
    ap.add_argument("--summarize-only", action="store_true",
                    help="print the summary of results already in RUN/prune/ (no model runs)")
    args = ap.parse_args(argv)
    if args.summarize_only:
        names = args.only or ["high_pitch_concept", "high_pitch_keyword", "brass_concept"]
        for name in names:
            path = Path(args.run_dir) / "prune" / f"{name}.json"
            if path.is_file():
                print(summarize(name, json.loads(path.read_text())) + "\n")
        scores = Path(args.run_dir) / "scores.json"
        if scores.is_file():
            print(summarize_scores(json.loads(scores.read_text())))
        return 0

    import torch

    from dissect import artifacts
    from dissect.models import get_adapter
    from dissect.pruning import prune_run

    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    ensure_run(run_dir, args.n_clips)
    clips = heldout_clips(args.eval_seed, args.eval_clips)
    adapter = get_adapter("crepe", source="full", hop_ms=args.hop_ms)
    model = adapter.load("cpu")

    # the closed-set concepts that mean "high pitch": the synth set's notes >= the cut-off
    # (C5..C7) and its two high registers
    high = [note_name(m) for m in range(args.cutoff_midi, 97)] + ["high pitch", "very high pitch"]
    target_high = f"midi_note>={args.cutoff_midi}"
    experiments = {
        # top-1 only: 27 of the ~80 synth concepts mean "high", so top-3 would take 64 % of
        # the conv channels
        "high_pitch_concept": dict(concept="high pitch", method="concept", concepts=high,
                                   top_k=1, target=target_high),
        "high_pitch_keyword": dict(concept="high pitch", method="keyword",
                                   terms=["high register", "very high register",
                                          "high-pitched", "very high pitch"],
                                   target=target_high),
        # AND's rule (top-3); its ranking puts the top-1 hits first, so the curve's first
        # points are the top-1 neurons
        "brass_concept": dict(concept="brass", method="concept", top_k=3,
                              target="family=Brass"),
    }
    summaries = []
    for name, kw in experiments.items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        out = prune_run(run_dir, layers=CONV, eval_clips=clips, seeds=range(args.seeds),
                        points=args.points, spacing="geometric", crop=tuple(args.crop),
                        model=model, adapter=adapter, name=name, **kw)
        summaries.append(summarize(name, out))
        print(summaries[-1], flush=True)
        print(f"[experiment] {name}: {out['passes']} passes, "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not args.no_scores:
        from dissect.evaluation import evaluate_run

        summaries.append(summarize_scores(evaluate_run(run_dir)))
        print(summaries[-1], flush=True)
    artifacts.write_text(run_dir / "prune" / "summary.md", "\n\n".join(summaries) + "\n")
    print(json.dumps({"run_dir": str(run_dir), "eval_clips": len(clips)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
