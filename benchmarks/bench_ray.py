"""Benchmark the Ray recording backend: speed-up with 2 workers vs 1 on this machine.

Usage:
    python benchmarks/bench_ray.py --clips 160 --seconds 1.0 --repeats 3

The same clips (deterministic harmonic tones + noise, written once as wav files) are recorded
with CREPE tiny (every default layer) by :func:`dissect.recording.ray_backend.record_ray` on a local
``ray.init(num_cpus=2)``, with the same shard plan (``--shards``) run by 1 worker and by 2
workers (one CPU and one torch thread each), alternating 1/2/1/2... ``--repeats`` times, each
run into a fresh shard directory (nothing is reused). For reference the single-process
:func:`dissect.recording.record` runs the same clips in this process with 1 torch thread (same
file loading). A warm-up run first starts both worker processes and loads the model there
(workers keep it between tasks), so the timings exclude Ray's start-up and the model load.

Control: on a shared machine a second worker only helps if a second core is free. Each repeat
also times a fixed CPU-bound torch loop (1 thread) in 1 process and in 2 processes at once
(``multiprocessing``, no Ray); ``machine_2proc_throughput`` = 2 * t(1 process) / t(2 processes)
is the speed-up any 2-process scheme could get at that moment, and ``ray_efficiency`` the Ray
speed-up divided by it. Prints one JSON object; speed-ups are ratios of medians.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_record import iter_clips  # noqa: E402

from dissect.audio import load_audio  # noqa: E402
from dissect.models import get_adapter  # noqa: E402
from dissect.recording.ray_backend import import_ray, record_ray  # noqa: E402
from dissect.recording.recorder import record  # noqa: E402


def write_clips(d: Path, n: int, seconds: float, sr: int = 16000) -> list[dict]:
    rows = []
    for i, x in enumerate(iter_clips(n, sr, seconds)):
        p = d / f"clip{i:05d}.wav"
        sf.write(p, x, sr, subtype="FLOAT")
        rows.append({"id": p.stem, "path": str(p)})
    return rows


def _spin(n: int) -> float:
    """A fixed CPU-bound torch workload on 1 thread; returns its wall time."""
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    t0 = time.perf_counter()
    for _ in range(n):
        a = torch.tanh(a @ a * 0.01)
    return time.perf_counter() - t0


def control(pool, n: int) -> float:
    """2 * t(1 process) / t(2 processes) for the same per-process work."""
    t0 = time.perf_counter()
    pool.map(_spin, [n])
    t1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool.map(_spin, [n, n])
    return 2 * t1 / (time.perf_counter() - t0)


def single_process(args, rows) -> float:
    torch.set_num_threads(1)
    adapter = get_adapter(args.model, source=args.source, hop_ms=args.hop_ms)
    model = adapter.load("cpu")
    sites = adapter.resolve_layers(model, None)
    clips = ((i, load_audio(r["path"], adapter.sample_rate).waveform) for i, r in enumerate(rows))
    t0 = time.perf_counter()
    record(adapter, model, clips, sites, k=args.k, batch_size=args.batch_size, progress=False)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="crepe")
    p.add_argument("--source", default="tiny")
    p.add_argument("--hop-ms", type=float, default=40.0)
    p.add_argument("--clips", type=int, default=160)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--control-iters", type=int, default=3000)
    args = p.parse_args()
    pool = mp.get_context("spawn").Pool(2)
    pool.map(_spin, [10, 10])
    ray = import_ray()
    model_cfg = {"name": args.model, "source": args.source, "site": "ffn",
                 "options": {"hop_ms": args.hop_ms}, "device": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "clips").mkdir()
        rows = write_clips(tmp / "clips", args.clips, args.seconds)
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_init_s = time.perf_counter() - t0

        def ray_run(workers: int, tag: str, subset=None) -> tuple[float, float]:
            res = record_ray(model_cfg, subset or rows, None, shard_dir=tmp / tag, k=args.k,
                             batch_size=args.batch_size, n_shards=args.shards,
                             num_workers=workers, progress=False)
            assert res.reused == 0
            return res.seconds, res.compute_seconds

        t0 = time.perf_counter()
        ray_run(2, "warmup", rows[: 2 * args.batch_size])  # start both workers, load the model
        warmup_s = time.perf_counter() - t0
        one, two, comp1, comp2, single, ctrl = [], [], [], [], [], []
        for r in range(args.repeats):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            for w in order:
                wall, comp = ray_run(w, f"run{r}-{w}")
                (one if w == 1 else two).append(wall)
                (comp1 if w == 1 else comp2).append(comp)
            single.append(single_process(args, rows))
            ctrl.append(control(pool, args.control_iters))
        ray.shutdown()
    pool.close()
    m1, m2, ms = statistics.median(one), statistics.median(two), statistics.median(single)
    out = {
        "model": f"{args.model}:{args.source}", "clips": args.clips, "seconds_per_clip":
        args.seconds, "shards": args.shards, "batch_size": args.batch_size,
        "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "ray_init_s": round(ray_init_s, 2), "warmup_s": round(warmup_s, 2),
        "single_process_1_thread_s": [round(x, 3) for x in single],
        "ray_1_worker_s": [round(x, 3) for x in one], "ray_2_workers_s": [round(x, 3) for x in two],
        "ray_1_worker_compute_s": [round(x, 3) for x in comp1],
        "ray_2_workers_compute_s": [round(x, 3) for x in comp2],
        "clips_per_s_1_worker": round(args.clips / m1, 2),
        "clips_per_s_2_workers": round(args.clips / m2, 2),
        "speedup_2_vs_1": round(m1 / m2, 3),
        "machine_2proc_throughput": [round(x, 3) for x in ctrl],
        "ray_efficiency": round(m1 / m2 / statistics.median(ctrl), 3),
        "ray_1_worker_vs_single_process": round(m1 / ms, 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
