"""Benchmark peak memory of recording one long clip with ``audio.long_clip=windows``.

Usage (6.5 minutes measured on 2 cores shared with another job; the 1-hour clip dominates):
    python benchmarks/bench_long_clip.py
    python benchmarks/bench_long_clip.py --long-seconds 3600 --short-seconds 10 --threads 2
    python benchmarks/bench_long_clip.py --long-seconds 60 --short-seconds 2   # a quick check

Two synthetic mono 16 kHz WAV files (PCM_16; a slow sine sweep plus noise, written block by
block) are recorded, each in its own fresh subprocess, the way the ``record`` stage does it:
:func:`dissect.audio.load_audio` with ``ClipPolicy(long_clip="windows")`` (10 s windows, 10 s
hop: the ``audio`` defaults), then :func:`dissect.recording.recorder.record` with the default
model (``model=crepe_tiny``: CREPE tiny, hop 40 ms, every default layer, 632 neurons),
``record.batch_size`` 8, mean pooling, ``record.dense`` on (one row).

Each child reports its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) after loading the
model and after recording, the pooled value count and its wall time. The parent prints one
JSON object with both children and ``ratio_peak`` = peak RSS (long) / peak RSS (short), and
``ratio_growth`` = the same for the growth over the model-loaded baseline. Windows stream
through the batch and a file of 2 minutes or more is read window by window
(``record_waveform`` -> ``StreamedWave``), so the long clip costs one batch of windows, as a
full batch of short clips does. Measured (docs/benchmarks.md): batch 8, 1 h 1465 MiB vs 80 s
(one full batch) 1441 MiB; batch 1, 1 h 897 MiB vs 10 s 886 MiB; before the streamed read the
1-hour clip also held its 220 MB waveform, and before streaming windows it ran all 360 windows
in one batch and was killed at 22 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 16000


def write_clip(path: Path, seconds: float, seed: int = 0, block: int = 1 << 20) -> None:
    """A deterministic ``seconds``-long mono WAV at 16 kHz (PCM_16), written block by block:
    a sine sweeping 110-880 Hz every 10 s, plus white noise at -40 dBFS."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n = int(round(seconds * SR))
    with sf.SoundFile(str(path), "w", SR, 1, subtype="PCM_16") as fh:
        for a in range(0, n, block):
            t = np.arange(a, min(n, a + block)) / SR
            # exponential sweep, 3 octaves per 10 s: phase of f(t) = 110 * 8 ** (t / 10)
            phase = 2 * np.pi * 110.0 * 10.0 / np.log(8.0) * 8.0 ** ((t % 10.0) / 10.0)
            x = 0.3 * np.sin(phase) + 0.01 * rng.normal(size=t.size)
            fh.write(x.astype(np.float32))


def child(args) -> None:
    """Record one file in this process; print a JSON line."""
    import torch

    from dissect.audio import ClipPolicy, record_waveform
    from dissect.models.load import load_from_config
    from dissect.recording.recorder import record

    torch.set_num_threads(args.threads)
    cfg = {"name": "crepe", "source": "tiny", "site": "ffn",
           "options": {"hop_ms": args.hop_ms}, "device": "cpu"}
    adapter, model, device = load_from_config(cfg)
    sites = adapter.resolve_layers(model, None)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    policy = ClipPolicy(long_clip="windows", window_seconds=args.window_seconds,
                        window_hop_seconds=args.window_seconds)
    t0 = time.perf_counter()
    wave = record_waveform(args.path, adapter.sample_rate, policy)  # as the record stage
    seconds = len(wave) / adapter.sample_rate
    after_decode = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = record(adapter, model, [(0, wave)], sites, reduction="mean", k=1,
                 batch_size=args.batch_size, windows=policy.windows(), dense_rows=1,
                 device=device, progress=False)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dense = torch.cat([st.dense.float() for st in res.layers.values()], dim=1)
    print(json.dumps({
        "path": str(args.path), "seconds": round(seconds, 3),
        "streamed": type(wave).__name__ == "StreamedWave",
        "windows": int(np.ceil(seconds / args.window_seconds)),
        "neurons": int(dense.shape[1]), "finite": bool(torch.isfinite(dense).all()),
        "rss_after_model_mib": round(base, 1), "rss_after_decode_mib": round(after_decode, 1),
        "peak_rss_mib": round(peak, 1), "growth_mib": round(peak - base, 1),
        "wall_s": round(wall, 1)}))


def run_child(path: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", "--path", str(path), "--threads",
           str(args.threads), "--hop-ms", str(args.hop_ms), "--batch-size",
           str(args.batch_size), "--window-seconds", str(args.window_seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    # the kernel's view as well: the largest RSS of any waited-for child so far
    row["children_maxrss_mib"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--long-seconds", type=float, default=3600.0)
    p.add_argument("--short-seconds", type=float, default=10.0)
    p.add_argument("--window-seconds", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--hop-ms", type=float, default=40.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default=None, help="where the WAV files go (default: a temp dir)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--path", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        rows = {}
        # the short clip first: RUSAGE_CHILDREN is a running maximum over children
        for name, seconds in (("short", args.short_seconds), ("long", args.long_seconds)):
            path = Path(tmp) / f"{name}.wav"
            write_clip(path, seconds)
            rows[name] = run_child(path, args)
            print(json.dumps({name: rows[name]}), file=sys.stderr)
    s, lg = rows["short"], rows["long"]
    print(json.dumps({
        "command": "python benchmarks/bench_long_clip.py " + " ".join(sys.argv[1:]),
        "model": f"crepe tiny, hop {args.hop_ms:g} ms", "batch_size": args.batch_size,
        "window_seconds": args.window_seconds, "short": s, "long": lg,
        "ratio_peak": round(lg["peak_rss_mib"] / s["peak_rss_mib"], 3),
        "ratio_growth": round(lg["growth_mib"] / max(s["growth_mib"], 1e-9), 3),
        "decoded_long_mib": round(4 * lg["seconds"] * SR / 2**20, 1)}, indent=1))


if __name__ == "__main__":
    main()
