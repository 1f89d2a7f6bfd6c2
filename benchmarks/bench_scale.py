"""Benchmark dissect at AND's size: every stage of `dissect run` vs clips and vs neurons.

Usage:
    python benchmarks/bench_scale.py --out runs/bench_scale                  # N = 200 500 2000
    python benchmarks/bench_scale.py --out runs/bench_scale --clips 200 500 --browser
    python benchmarks/bench_scale.py --tiny --clips 4 8 --neuron-fractions 0.5 1 --out /tmp/bs

The model is a full-size, randomly initialised AST (``transformers.ASTConfig()`` defaults: 12
blocks, hidden 768, FFN 3072, 1024 fbank frames) with a 50-class head, saved once (seeded) with
its feature extractor under ``<out>/model/`` and dissected with ``model.site=and``: AND's neurons,
``12 x (768 + 3072 + 768) + 50 = 55,346``. ``--tiny`` uses a 2-block, hidden-32 AST instead
(``2 x (32 + 64 + 32) + 50 = 306`` neurons) so the whole benchmark runs in seconds.

For every N in ``--clips`` the real pipeline runs on N synthetic clips of ``--seconds`` s (the
``synth`` probe set: notes, tones, noise, clicks, chirps, silence; no espeak speech; rendered into
a fresh per-run cache, so rendering is part of the probe stage) with ``llm=rules``, one child
``python -m dissect.cli run ... stages=[<stage>]`` per stage, in order, on one fresh run
directory. Per stage it records:

* ``stage_s``: the stage's own time from ``manifest.json`` (``seconds``; it leaves out the
  stage's input hashing, which for the probe stage includes rendering the clips);
* ``wall_s``: the child process's wall time (interpreter start, imports, config, hashing, stage);
* ``cpu_s`` (user + system) and ``peak_rss_mb`` (``ru_maxrss``) of that child and everything it
  waited for, from ``os.wait4`` (Linux: ``ru_maxrss`` is in KiB; it survives fork and exec, so
  this process never imports torch: the model is built and inspected in a setup child);
* the size of every top-level artifact of the run directory (file, or all files of a folder),
  and of the report (``report/index.html`` and the whole ``report/`` folder).

Then a second sweep at a fixed N (``--neuron-clips``, default the smallest N) records the first
``round(f * blocks)`` blocks (all three ``and`` sites of each) plus the head for every f in
``--neuron-fractions`` (``model.layers=[...]``; the forward pass always runs every block). Growth
exponents ``b`` of ``t ~ N^b`` and ``t ~ neurons^b`` come from a least-squares line in log-log
space, for ``stage_s`` (floored at the manifest's 1 ms resolution) and for ``wall_s``.

``--browser`` also opens each report in headless Chromium (:mod:`dissect.report.browser`, no
network) and measures, from the page's time origin, when the first element matching
``--card-selector`` is visible, and how long after setting ``--filter-text`` in
``--filter-selector`` (one ``input`` event) the number of visible cards changes.

Writes ``<out>/bench_scale.json`` (everything, plus the machine: CPUs, torch threads, versions)
and ``<out>/bench_scale.md``, and prints the markdown tables (stage x N: stage / wall / CPU
seconds and peak RSS; exponents; sizes) with the exact command on top, ready for
docs/benchmarks.md. Child logs go to ``<out>/logs/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("probe", "record", "caption", "summarize", "concepts", "explain", "evaluate", "report")
N_LABELS = 50  # ESC-50's head, as in AND's AST
#: The tiny AST of --tiny (num_attention_heads must divide hidden_size).
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64}
STAGE_S_FLOOR = 0.001  # manifest seconds are rounded to 1 ms


# --------------------------------------------------------------------------- the model


def and_neurons(hidden: int, intermediate: int, layers: int, labels: int = N_LABELS) -> int:
    """AND's neuron count of an AST: per block attention out + FFN in + FFN out, plus the head."""
    return layers * (hidden + intermediate + hidden) + labels


def build_model(path: Path, tiny: bool, seed: int = 0) -> dict[str, Any]:
    """Save a random-initialised ``ASTForAudioClassification`` (``N_LABELS`` classes) and an
    ``ASTFeatureExtractor`` to ``path`` (reused when its config matches); return its shape."""
    import torch
    import transformers

    kw = dict(TINY) if tiny else {}
    labels = {i: f"class_{i:02d}" for i in range(N_LABELS)}
    cfg = transformers.ASTConfig(**kw, id2label=labels, label2id={v: k for k, v in labels.items()})
    want = {"hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers,
            "intermediate_size": cfg.intermediate_size, "max_length": cfg.max_length,
            "num_mel_bins": cfg.num_mel_bins, "num_labels": cfg.num_labels, "seed": seed}
    stamp = path / "bench_scale_model.json"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == want):
        shutil.rmtree(path, ignore_errors=True)
        torch.manual_seed(seed)
        model = transformers.ASTForAudioClassification(cfg).eval()
        model.save_pretrained(path)
        transformers.ASTFeatureExtractor(max_length=cfg.max_length,
                                         num_mel_bins=cfg.num_mel_bins).save_pretrained(path)
        stamp.write_text(json.dumps(want))
    params = sum(p.numel() for p in transformers.ASTForAudioClassification(cfg).parameters())
    return {**want, "path": str(path), "parameters": params,
            "neurons_formula": and_neurons(cfg.hidden_size, cfg.intermediate_size,
                                           cfg.num_hidden_layers, cfg.num_labels)}


def and_sites(source: Path) -> tuple[list[tuple[str, int, int | None]], str]:
    """``[(site, units, block index or None for the head)]`` of the ``and`` preset, and the
    head's site name, from the adapter itself (site names follow the installed transformers)."""
    from dissect.models import get_adapter

    adapter = get_adapter("ast", source=str(source), site_kind="and")
    model = adapter.load("cpu")
    head = adapter.head_layer(model)
    return [(name, site.units, None if name == head else block_of(name))
            for name, site in adapter.sites(model).items()], head


def block_of(name: str) -> int | None:
    """The block index in a site name (``....layers.3.mlp.fc1`` -> 3), None for the head."""
    parts = name.split(".")
    for a, b in zip(parts, parts[1:], strict=False):
        if a in ("layers", "layer") and b.isdigit():
            return int(b)
    return None


def layer_subset(sites: list[tuple[str, int, int | None]], fraction: float
                 ) -> tuple[list[str], int]:
    """The sites of the first ``round(fraction * blocks)`` blocks (at least one) plus the head,
    and their neuron count."""
    blocks = sorted({b for _, _, b in sites if b is not None})
    keep = max(1, round(fraction * len(blocks)))
    chosen = [(n, u) for n, u, b in sites if b is None or b < keep]
    return [n for n, _ in chosen], sum(u for _, u in chosen)


# --------------------------------------------------------------------------- running


def child_env(out: Path, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TQDM_DISABLE="1",
               DISSECT_CACHE=str(out / "cache"))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + pp if pp else "")
    return env


def run_child(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time, CPU time and peak RSS (with everything it waited for)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        fh.write(shlex.join(cmd) + "\n")
        fh.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}; log {log}:\n{tail}")
    return {"wall_s": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
            "user_s": round(ru.ru_utime, 3), "sys_s": round(ru.ru_stime, 3),
            "peak_rss_mb": round(ru.ru_maxrss / 1024, 1)}


def overrides(args: argparse.Namespace, source: Path, n: int, run_dir: Path,
              layers: list[str] | None = None) -> list[str]:
    """The ``dissect run`` overrides of one benchmark run (``stages=`` added per stage)."""
    s = args.seconds
    out = ["recipe=default", "model=ast_esc50", f"model.source={source}", "model.site=and",
           f"model.device={args.device}", "llm=rules", "probe.layout=synth",
           f"probe.synth.n_clips={n}", f"probe.synth.min_seconds={s}",
           f"probe.synth.max_seconds={s}", "probe.synth.speech=false",
           f"probe.synth.seed={args.seed}",
           f"probe.synth.cache_dir={run_dir.parent / 'synth-cache' / run_dir.name}",
           f"audio.max_seconds={max(10.0, s)}", "record.progress=false",
           f"record.batch_size={args.batch_size}", f"run_dir={run_dir}"]
    if layers:
        out.append(f"model.layers=[{','.join(layers)}]")
    return out + list(args.set)


def tree_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sizes(run_dir: Path) -> dict[str, Any]:
    """Bytes per top-level artifact of the run directory, the report's, and the total."""
    entries = {p.name: tree_bytes(p) for p in sorted(run_dir.iterdir())}
    report = run_dir / "report"
    return {"artifacts": entries, "total": sum(entries.values()),
            "report": {"index_html": tree_bytes(report / "index.html"),
                       "total": tree_bytes(report),
                       "files": sum(1 for p in report.rglob("*") if p.is_file())}}


def run_pipeline(args: argparse.Namespace, source: Path, n: int, run_dir: Path, env: dict,
                 layers: list[str] | None = None) -> dict[str, Any]:
    """Every stage in its own child on a fresh ``run_dir``; per-stage measurements + sizes."""
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(run_dir.parent / "synth-cache" / run_dir.name, ignore_errors=True)
    # a fresh DISSECT_CACHE per run: the text-embedding and LLM tables start empty, so every
    # run pays for what it computes (the stages of one run share them, as in `dissect run`)
    cache = run_dir.parent / "cache" / run_dir.name
    shutil.rmtree(cache, ignore_errors=True)
    env = {**env, "DISSECT_CACHE": str(cache)}
    base = [sys.executable, "-m", "dissect.cli", "run", *overrides(args, source, n, run_dir,
                                                                   layers)]
    stages: dict[str, Any] = {}
    for stage in args.stages:
        cmd = [*base, f"stages=[{stage}]"]
        print(f"[bench] {run_dir.name}: {stage} ...", file=sys.stderr, flush=True)
        stages[stage] = run_child(cmd, env, Path(args.out) / "logs" / run_dir.name
                                  / f"{stage}.log")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for stage, row in stages.items():
        entry = manifest["stages"][stage]
        row["stage_s"] = entry["seconds"]
        if stage == "record":
            row["info"] = {k: v for k, v in entry.get("info", {}).items()
                           if isinstance(v, (int, float, str))}
    recorded = manifest["stages"]["record"]["info"]["layers"]
    result = {"clips": n, "run_dir": str(run_dir), "command": shlex.join(base + ["stages=[...]"]),
              "recorded_neurons": sum(v["units"] for v in recorded.values()),
              "recorded_sites": len(recorded), "stages": stages, "sizes": sizes(run_dir)}
    if args.browser:
        result["browser"] = browser_timing(run_dir / "report" / "index.html", args.card_selector,
                                           args.filter_selector, args.filter_text)
    return result


# --------------------------------------------------------------------------- browser

# Installed before the page's own scripts: on every animation frame until one is visible, note
# when an element matching the card selector first has a layout box.
FIRST_CARD_JS = """
(() => { const sel = %s; const visible = () => Array.from(document.querySelectorAll(sel))
    .filter(e => !e.hidden && e.getClientRects().length > 0).length;
  window.__bench = {visible, first: null};
  const tick = () => { if (document.documentElement && visible() > 0) {
      window.__bench.first = performance.now(); } else { requestAnimationFrame(tick); } };
  requestAnimationFrame(tick); })();
"""
WAIT_FIRST_JS = """
new Promise(resolve => { const t0 = performance.now(); const poll = () => {
  if (window.__bench && window.__bench.first !== null) resolve(window.__bench.first);
  else if (performance.now() - t0 > %d) resolve(null); else setTimeout(poll, 5); }; poll(); })
"""
FILTER_JS = """
(async () => { const f = document.querySelector(%s), text = %s, limit = %d;
  if (!f) return {error: 'no filter input'};
  const before = window.__bench.visible(), t0 = performance.now();
  f.focus(); f.value = text; f.dispatchEvent(new Event('input', {bubbles: true}));
  while (performance.now() - t0 < limit) {
    await new Promise(r => requestAnimationFrame(r));
    const n = window.__bench.visible();
    if (n !== before) return {ms: performance.now() - t0, before, after: n};
  }
  return {ms: null, before, after: window.__bench.visible()}; })()
"""


def browser_timing(index: Path, card_selector: str, filter_selector: str, filter_text: str,
                   timeout_ms: int = 60000) -> dict[str, Any]:
    """Headless-Chromium load and filter timings of a report (ms from the page's time origin)."""
    from dissect.report.browser import Chromium, find_chromium

    if find_chromium() is None:
        return {"error": "no Chromium binary (set DISSECT_CHROMIUM)"}
    with Chromium(width=1280, height=900, timeout_s=timeout_ms / 1000 + 30) as b:
        b.send("Page.addScriptToEvaluateOnNewDocument",
               {"source": FIRST_CARD_JS % json.dumps(card_selector)})
        t0 = time.perf_counter()
        b.goto(index.as_uri())
        load_ms = (time.perf_counter() - t0) * 1000
        first = b.evaluate(WAIT_FIRST_JS % timeout_ms, await_promise=True)
        filt = b.evaluate(FILTER_JS % (json.dumps(filter_selector), json.dumps(filter_text),
                                       timeout_ms), await_promise=True)
        errors = [e["text"][:300] for e in b.errors()]
    return {"card_selector": card_selector, "filter_selector": filter_selector,
            "filter_text": filter_text, "load_event_ms": round(load_ms, 1),
            "first_card_ms": None if first is None else round(first, 1),
            "filter": {k: round(v, 1) if isinstance(v, float) else v for k, v in filt.items()},
            "console_errors": errors}


# --------------------------------------------------------------------------- analysis


def fit_exponent(xs: list[float], ys: list[float], floor: float = 0.0) -> float | None:
    """``b`` of ``y ~ x^b`` (least squares in log-log space); None with < 2 distinct x or a
    non-positive y (after ``floor``)."""
    ys = [max(y, floor) for y in ys]
    if len(set(xs)) < 2 or min(xs) <= 0 or min(ys) <= 0:
        return None
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    b = sum((a - mx) * (c - my) for a, c in zip(lx, ly, strict=True)) / sum(
        (a - mx) ** 2 for a in lx)
    return round(b, 3) if math.isfinite(b) else None


def exponents(runs: list[dict[str, Any]], key: str) -> dict[str, dict[str, float | None]]:
    """Per stage: the exponents of ``stage_s`` and ``wall_s`` over ``run[key]``."""
    xs = [r[key] for r in runs]
    return {s: {"stage_s": fit_exponent(xs, [r["stages"][s]["stage_s"] for r in runs],
                                        STAGE_S_FLOOR),
                "wall_s": fit_exponent(xs, [r["stages"][s]["wall_s"] for r in runs])}
            for s in runs[0]["stages"]}


def machine() -> dict[str, Any]:
    """CPU, memory, torch threads (as the stage children get them), versions, git commit."""
    import numpy
    import torch
    import transformers

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), platform.processor()) \
        if Path("/proc/cpuinfo").is_file() else platform.processor()
    mem = None
    if Path("/proc/meminfo").is_file():
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = round(kb / 2**20, 1)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True,
                                    text=True, cwd=ROOT).stdout.strip())
    except OSError:
        commit, dirty = None, None
    return {"cpu": cpu, "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "memory_gib": mem, "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "cuda": torch.cuda.is_available(), "python": platform.python_version(),
            "platform": platform.platform(), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__,
            "git_commit": commit, "git_dirty": dirty}


# --------------------------------------------------------------------------- markdown


def human(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n} B"


def _fmt(b: float | None) -> str:
    return "n/a" if b is None else f"{b:.2f}"


def markdown(res: dict[str, Any]) -> str:
    runs, nruns = res["clip_sweep"], res["neuron_sweep"]["runs"]
    m = res["model"]
    lines = [f"Command: `{res['command']}`", "",
             f"AST {'tiny' if res['tiny'] else 'full-size'} random init "
             f"({m['num_hidden_layers']} blocks, hidden {m['hidden_size']}, FFN "
             f"{m['intermediate_size']}, {m['parameters']:,} parameters), `model.site=and`: "
             f"{res['neurons']:,} neurons; synth clips of {res['seconds']:g} s, `llm=rules`, "
             f"device {res['device']}. Machine: {res['machine']['cpu']}, "
             f"{res['machine']['cpus_usable']} CPUs usable, torch threads "
             f"{res['machine']['torch_threads']}, torch {res['machine']['torch']}.", "",
             "Per stage (stage = manifest seconds, wall / CPU = the stage's child process):", ""]
    head = "| stage |" + "".join(f" N={r['clips']} stage s | wall s | CPU s | RSS MB |"
                                 for r in runs)
    lines += [head, "|---|" + "---:|" * 4 * len(runs)]
    for s in res["stages"]:
        cells = "".join(f" {r['stages'][s]['stage_s']:.2f} | {r['stages'][s]['wall_s']:.2f} | "
                        f"{r['stages'][s]['cpu_s']:.2f} | {r['stages'][s]['peak_rss_mb']:.0f} |"
                        for r in runs)
        lines.append(f"| {s} |{cells}")
    tot = "".join(f" {sum(x['stage_s'] for x in r['stages'].values()):.2f} | "
                  f"{sum(x['wall_s'] for x in r['stages'].values()):.2f} | "
                  f"{sum(x['cpu_s'] for x in r['stages'].values()):.2f} | "
                  f"{max(x['peak_rss_mb'] for x in r['stages'].values()):.0f} |" for r in runs)
    lines += [f"| **total** |{tot}", ""]
    lines += [f"Neuron sweep at N={res['neuron_sweep']['clips']} (first blocks + head; stage s "
              "/ wall s):", "",
              "| stage |" + "".join(f" {r['neurons']:,} neurons |" for r in nruns),
              "|---|" + "---:|" * len(nruns)]
    for s in res["stages"]:
        lines.append(f"| {s} |" + "".join(f" {r['stages'][s]['stage_s']:.2f} / "
                                         f"{r['stages'][s]['wall_s']:.2f} |" for r in nruns))
    ec, en = res["exponents"]["clips"], res["exponents"]["neurons"]
    lines += ["", "Growth exponents b (t ~ x^b, log-log least squares):", "",
              "| stage | clips (stage s) | clips (wall) | neurons (stage s) | neurons (wall) |",
              "|---|---:|---:|---:|---:|"]
    for s in res["stages"]:
        lines.append(f"| {s} | {_fmt(ec[s]['stage_s'])} | {_fmt(ec[s]['wall_s'])} | "
                     f"{_fmt(en[s]['stage_s'])} | {_fmt(en[s]['wall_s'])} |")
    names = sorted({a for r in runs for a in r["sizes"]["artifacts"]})
    lines += ["", "Artifact sizes:", "", "| artifact |" + "".join(f" N={r['clips']} |"
                                                                  for r in runs),
              "|---|" + "---:|" * len(runs)]
    for a in names:
        lines.append(f"| {a} |" + "".join(f" {human(r['sizes']['artifacts'].get(a, 0))} |"
                                          for r in runs))
    lines.append("| report/index.html |" + "".join(
        f" {human(r['sizes']['report']['index_html'])} |" for r in runs))
    lines.append("| **run dir total** |" + "".join(f" {human(r['sizes']['total'])} |"
                                                   for r in runs))
    if any("browser" in r for r in runs):
        lines += ["", "Report in headless Chromium (ms from navigation):", "",
                  "| N | load event | first card | filter result | cards before / after |",
                  "|---:|---:|---:|---:|---:|"]
        for r in runs:
            b = r.get("browser", {})
            f = b.get("filter", {})
            lines.append(f"| {r['clips']} | {b.get('load_event_ms', 'n/a')} | "
                         f"{b.get('first_card_ms', 'n/a')} | {f.get('ms', 'n/a')} | "
                         f"{f.get('before', 'n/a')} / {f.get('after', 'n/a')} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/bench_scale", help="output folder")
    p.add_argument("--clips", type=int, nargs="+", default=[200, 500, 2000])
    p.add_argument("--neuron-fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    p.add_argument("--neuron-clips", type=int, default=None,
                   help="N of the neuron sweep (default: the smallest --clips)")
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES,
                   help="stages to run and measure, in pipeline order (default: all)")
    p.add_argument("--tiny", action="store_true", help="a 2-block hidden-32 AST (smoke test)")
    p.add_argument("--seconds", type=float, default=5.0, help="clip length")
    p.add_argument("--device", default="cpu", help="model.device")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the children")
    p.add_argument("--batch-size", type=int, default=8, help="record.batch_size")
    p.add_argument("--seed", type=int, default=0, help="model init and probe.synth.seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra `dissect run` override (repeatable)")
    p.add_argument("--browser", action="store_true", help="time the report in headless Chromium")
    p.add_argument("--card-selector", default=".card")
    p.add_argument("--filter-selector", default="#filter")
    p.add_argument("--filter-text", default="zzqx-no-such-neuron",
                   help="typed into the filter box (default matches no card)")
    p.add_argument("--setup-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.stages = [st for st in STAGES if st in set(args.stages)]
    return args


def setup(source: str, tiny: bool, seed: int) -> dict[str, Any]:
    """The setup child's work: build the model, list its ``and`` sites, describe the machine."""
    model = build_model(Path(source), tiny, seed)
    sites, head = and_sites(Path(source))
    return {"model": model, "sites": sites, "head": head, "machine": machine()}


def run_setup(args: argparse.Namespace, source: Path, env: dict[str, str]) -> dict[str, Any]:
    """:func:`setup` in a child process, so this process never holds torch or the model: Linux
    carries a parent's peak RSS into every child it starts (``ru_maxrss`` survives fork and
    exec), which would inflate every stage's peak RSS."""
    cmd = [sys.executable, __file__, "--setup-child", str(source), "--seed", str(args.seed),
           *(["--tiny"] if args.tiny else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.setup_child:
        print(json.dumps(setup(args.setup_child, args.tiny, args.seed)))
        return {}
    command = shlex.join(["python", "benchmarks/bench_scale.py",
                          *(sys.argv[1:] if argv is None else argv)])
    out = Path(args.out).resolve()
    args.out = str(out)
    out.mkdir(parents=True, exist_ok=True)
    env = child_env(out, args.threads)
    source = out / "model" / ("ast-tiny" if args.tiny else "ast-full")
    info = run_setup(args, source, env)
    model, head = info["model"], info["head"]
    sites = [(n, u, b) for n, u, b in info["sites"]]
    neurons = sum(u for _, u, _ in sites)
    if neurons != model["neurons_formula"]:
        raise RuntimeError(f"and preset records {neurons} neurons, formula says "
                           f"{model['neurons_formula']}")
    runs = []
    for n in sorted(set(args.clips)):
        r = run_pipeline(args, source, n, out / "runs" / f"clips-{n}", env)
        r["neurons"] = neurons
        runs.append(r)
    n_fixed = args.neuron_clips or min(args.clips)
    nruns = []
    for f in sorted(set(args.neuron_fractions)):
        layers, count = layer_subset(sites, f)
        reuse = next((r for r in runs if r["clips"] == n_fixed), None)
        if count == neurons and reuse is not None:
            r = dict(reuse)
        else:
            r = run_pipeline(args, source, n_fixed, out / "runs" / f"neurons-{count}", env,
                             layers=None if count == neurons else layers)
        r.update(fraction=f, neurons=count, layers=len(layers))
        nruns.append(r)
    res = {"command": command, "tiny": args.tiny, "seconds": args.seconds,
           "device": args.device, "model": model, "neurons": neurons, "head_layer": head,
           "sites": [{"name": n, "units": u, "block": b} for n, u, b in sites],
           "machine": info["machine"], "stages": list(args.stages), "clip_sweep": runs,
           "neuron_sweep": {"clips": n_fixed, "runs": nruns},
           "exponents": {"clips": exponents(runs, "clips"),
                         "neurons": exponents(nruns, "neurons")}}
    # this process's own peak: far below every stage's, so no child's ru_maxrss is inflated
    res["bench_process_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    (out / "bench_scale.json").write_text(json.dumps(res, indent=1))
    md = markdown(res)
    (out / "bench_scale.md").write_text(md)
    print(md)
    return res


if __name__ == "__main__":
    main()
