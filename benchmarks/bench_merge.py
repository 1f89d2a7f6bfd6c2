"""Benchmark the Ray backend's shard format and merge at a run's size: bytes per shard, the
time to serialise, write, read and fold one shard, for the projection in docs/scaling.md.

Usage:
    python benchmarks/bench_merge.py --run-dir runs/bench_rec/runs/clips-200 --shards 4
    python benchmarks/bench_merge.py --run-dir runs/bench_rec/runs/clips-200 --shard-clips 200

It reads the run's ``stats/`` (every layer's reducer state: top/bottom-k, moments, the log
histogram) and, for the dense store, ``activations/``; builds one shard exactly as a Ray task
does (:func:`dissect.recording.ray_backend` layout: ``state_tensors(..., prefix="L<j>/",
dense=True)`` plus metadata, one safetensors blob), with ``--shard-clips`` dense rows (default:
the run's clips; 0 = a run without the dense store); writes it ``--shards`` times under
``--out`` (fsync'd), then folds them with the driver's own ``load_shard`` + ``LayerState.merge``
in index order, as ``_merge`` does. Every step is timed ``--repeats`` times; the median is kept.

The reducer state does not grow with clips (k exemplars, 5 moments and a fixed histogram band
per unit), the dense rows do (2 bytes per clip x neuron, float16). Writes
``<out>/bench_merge.json`` and prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--out", type=Path, default=None, help="default: <run-dir>/../bench_merge")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--shard-clips", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import torch
    from safetensors.torch import save as save_bytes

    from dissect import artifacts
    from dissect.recording.ray_backend import SHARD_FORMAT, load_shard
    from dissect.recording.store import load_layer, state_meta, state_tensors
    from dissect.util import safetensors_metadata

    run = args.run_dir
    out = args.out or run.parent / "bench_merge"
    out.mkdir(parents=True, exist_ok=True)
    n_run = len(artifacts.read_jsonl(run / artifacts.CLIPS))
    rows = n_run if args.shard_clips is None else args.shard_clips
    t0 = time.perf_counter()
    states = {}
    for f in sorted((run / "stats").glob("*.safetensors")):
        st, _ = load_layer(f)
        states[st.site.name] = st
    load_stats_s = time.perf_counter() - t0
    if not states:
        raise SystemExit(f"{run}/stats has no layer states")
    neurons = sum(s.site.units for s in states.values())
    gen = torch.Generator().manual_seed(0)
    for st in states.values():  # the dense rows a shard of `rows` clips carries
        st.dense = (torch.randn(rows, st.site.units, generator=gen).to(torch.float16)
                    if rows else None)

    def serialise() -> bytes:
        tensors, layers = {}, []
        for j, st in enumerate(states.values()):
            layers.append(state_meta(st))
            tensors.update(state_tensors(st, prefix=f"L{j}/", dense=True))
        meta = {"format": SHARD_FORMAT, "layers": json.dumps(layers), "n_clips": str(rows),
                "seconds": "0.0", "audio_seconds": "0.0", "failed": "[]"}
        return save_bytes(tensors, metadata=safetensors_metadata(meta))

    ser_s, blob = _median_time(serialise, args.repeats)
    paths = [out / f"shard-{i:05d}.safetensors" for i in range(args.shards)]

    def write_all() -> None:
        for path in paths:
            with open(path, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())

    write_s, _ = _median_time(write_all, args.repeats)

    def fold() -> tuple[float, float, dict]:
        merged, read_s, merge_s = {}, 0.0, 0.0
        for path in paths:
            t = time.perf_counter()
            shard, _, _ = load_shard(path)
            read_s += time.perf_counter() - t
            t = time.perf_counter()
            for name, st in shard.items():
                merged[name] = merged[name].merge(st) if name in merged else st
            merge_s += time.perf_counter() - t
        return read_s, merge_s, merged

    fold_times = [fold() for _ in range(args.repeats)]
    read_s = statistics.median(r for r, _, _ in fold_times) / args.shards
    merge_s = statistics.median(m for _, m, _ in fold_times) / max(args.shards - 1, 1)
    merged = fold_times[-1][2]
    # every shard is the run's state: the fold counts each clip once per shard
    merged_count = int(min(float(st.moments.count.min()) for st in merged.values()))
    for path in paths:
        path.unlink()
    state_bytes = len(serialise_state_only(states, state_tensors, save_bytes))
    result = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "run_dir": str(run), "run_clips": n_run, "neurons": neurons, "layers": len(states),
        "shard_clips": rows, "shards": args.shards, "repeats": args.repeats,
        "shard_bytes": len(blob), "state_bytes": state_bytes,
        "dense_bytes": len(blob) - state_bytes,
        "dense_bytes_per_clip_neuron": ((len(blob) - state_bytes) / (rows * neurons)
                                        if rows else None),
        "load_stats_s": load_stats_s, "serialise_s": ser_s,
        "write_s_per_shard": write_s / args.shards, "read_s_per_shard": read_s,
        "merge_s_per_shard": merge_s, "merged_clips": merged_count,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "torch_threads":
                    torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__},
    }
    (out / "bench_merge.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return result


def serialise_state_only(states, state_tensors, save_bytes) -> bytes:
    """The shard blob without the dense rows: what a shard costs whatever its clip count."""
    tensors = {}
    for j, st in enumerate(states.values()):
        tensors.update(state_tensors(st, prefix=f"L{j}/", dense=False))
    return save_bytes(tensors)


def table(r: dict) -> str:
    mb = 1e6
    lines = [f"Command: `{r['command']}`", "",
             f"{r['neurons']:,} neurons in {r['layers']} layers; one shard of "
             f"{r['shard_clips']:,} clips; median of {r['repeats']}.", "",
             "| quantity | value |", "|---|---:|",
             f"| shard bytes | {r['shard_bytes'] / mb:,.1f} MB |",
             f"| of which reducer state (constant in clips) | {r['state_bytes'] / mb:,.1f} MB |",
             f"| of which dense rows | {r['dense_bytes'] / mb:,.1f} MB |",
             f"| serialise one shard | {r['serialise_s']:.2f} s |",
             f"| write one shard (fsync) | {r['write_s_per_shard']:.2f} s |",
             f"| read one shard | {r['read_s_per_shard']:.2f} s |",
             f"| fold one shard into the merge | {r['merge_s_per_shard']:.2f} s |"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
