"""Fault injection: a probe folder with broken files, SIGKILL in every stage, identical resume.

Builds ``--clips`` clips (default 1,000) of which ``--broken`` (default 100) are broken in ten
ways (empty, random bytes, text named .wav, header only, truncated data chunk, NaN samples,
zero frames, broken symlink, symlink loop, a metadata row whose file does not exist), then:

1. a reference ``dissect run`` of the whole pipeline on the folder (``llm=rules``);
2. a second run directory where every stage in turn is SIGKILLed (the process group) halfway
   through its reference duration, each kill followed by a plain re-run of the same command,
   until a run finishes;
3. checks: the reference run exits 0 with ``broken`` rows in ``skips.jsonl`` and the rest in
   ``clips.jsonl``; no run prints a traceback; every file of the killed-and-resumed run (but the
   manifest's timestamps, the log and the lock) equals the reference byte for byte, once the
   run directory's name and the report's stage-timings table are masked (:func:`normalised`).

Prints one JSON summary (also ``<out>/fault_summary.json``); exit 1 when a check fails.

    .venv/bin/python scripts/fault_test.py --out /tmp/fault [--clips 1000 --broken 100]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
STAGES = ["probe", "record", "caption", "summarize", "concepts", "explain", "evaluate", "report"]
CATEGORIES = ["low_tone", "high_tone", "noise", "chirp", "clicks"]
BROKEN_KINDS = ["empty", "random_bytes", "text", "header_only", "truncated_data", "nan_samples",
                "zero_frames", "broken_symlink", "symlink_loop", "missing_file"]
IGNORED = {"manifest.json", ".dissect.lock", "run.log"}


def good_clip(i: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """One second of one of five sound categories, with random parameters."""
    cat = CATEGORIES[i % len(CATEGORIES)]
    t = np.arange(SR) / SR
    if cat == "low_tone":
        x = np.sin(2 * np.pi * rng.uniform(110, 330) * t)
    elif cat == "high_tone":
        x = np.sin(2 * np.pi * rng.uniform(1000, 3000) * t)
    elif cat == "noise":
        x = rng.normal(0, 0.5, SR)
    elif cat == "chirp":
        f0, f1 = rng.uniform(200, 500), rng.uniform(1500, 4000)
        x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / 2))
    else:
        x = np.zeros(SR)
        for k in rng.choice(SR - 200, size=int(rng.integers(4, 12)), replace=False):
            x[k:k + 200] += np.exp(-np.arange(200) / 30.0) * rng.choice([-1, 1])
    x = 0.3 * x / max(1e-9, float(np.abs(x).max()))
    return cat, (x + 0.003 * rng.normal(size=SR)).astype(np.float32)


def write_broken(path: Path, kind: str, rng: np.random.Generator) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif kind == "text":
        path.write_text("this is not audio\n" * 20)
    elif kind in ("header_only", "truncated_data"):
        sf.write(path, (0.1 * rng.normal(size=SR)).astype(np.float32), SR, subtype="PCM_16")
        data = path.read_bytes()
        path.write_bytes(data[:44] if kind == "header_only" else data[:44 + 100])
    elif kind == "nan_samples":
        x = (0.1 * rng.normal(size=SR)).astype(np.float32)
        x[rng.integers(0, SR, 5)] = np.nan
        sf.write(path, x, SR, subtype="FLOAT")
    elif kind == "zero_frames":  # a valid RIFF header with an empty data chunk
        fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, SR, 2 * SR, 2, 16)
        path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(fmt) + 8) + b"WAVE" + fmt
                         + b"data" + struct.pack("<I", 0))
    elif kind == "broken_symlink":
        path.symlink_to(path.parent / "does_not_exist.wav")
    elif kind == "symlink_loop":
        other = path.with_name(path.stem + "_loop.wav.lnk")  # not an audio extension
        path.symlink_to(other.name)
        other.symlink_to(path.name)
    elif kind == "missing_file":
        pass  # only the metadata row names it
    else:
        raise ValueError(kind)


def build(root: Path, n_clips: int, n_broken: int, seed: int = 0) -> dict[str, int]:
    if root.exists():
        return json.loads((root / "build.json").read_text())
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rows = []
    broken_at = set(np.linspace(0, n_clips - 1, n_broken).round().astype(int).tolist())
    kinds: dict[str, int] = {}
    b = 0
    for i in range(n_clips):
        sub = root / f"part{i % 10}"
        sub.mkdir(exist_ok=True)
        name = f"clip{i:04d}.wav"
        if i in broken_at:
            kind = BROKEN_KINDS[b % len(BROKEN_KINDS)]
            b += 1
            write_broken(sub / name, kind, rng)
            kinds[kind] = kinds.get(kind, 0) + 1
            rows.append({"filename": f"part{i % 10}/{name}", "category": "broken"})
        else:
            cat, x = good_clip(i, rng)
            sf.write(sub / name, x, SR, subtype="PCM_16")
            rows.append({"filename": f"part{i % 10}/{name}", "category": cat})
    with open(root / "metadata.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["filename", "category"])
        w.writeheader()
        w.writerows(rows)
    info = {"clips": n_clips, "broken": n_broken, "kinds": kinds}
    (root / "build.json").write_text(json.dumps(info))
    return info


def command(root: Path, run_dir: Path, extra: list[str]) -> list[str]:
    return [str(Path(sys.executable).with_name("dissect")), "run", "probe.layout=folder",
            f"probe.root={root}", "probe.metadata=metadata.csv", "probe.max_skip_fraction=0.2",
            "llm=rules", f"run_dir={run_dir}", *extra]


def stage_status(run_dir: Path, stage: str) -> str | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text())["stages"][stage]["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def launch(cmd: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"})


def normalised(path: Path, run_dir: Path) -> bytes:
    """A file's bytes with what legitimately differs between two run directories masked: the
    ``run_dir`` line of ``config.yaml``, and in the report the run directory's name and the
    stage-timings table (wall times and finish times of the manifest)."""
    data = path.read_bytes()
    rel = path.relative_to(run_dir).as_posix()
    if rel == "config.yaml":
        return re.sub(rb"(?m)^run_dir: .*$", b"run_dir: RUN", data)
    if rel == "report/index.html":
        data = data.replace(f"Run directory: {run_dir.name} ".encode(), b"Run directory: RUN ")
        return re.sub(rb"<h3>Stage timings</h3>.*?</table>", b"<h3>Stage timings</h3>", data,
                      flags=re.S)
    return data


def digest(run_dir: Path) -> dict[str, str]:
    return {p.relative_to(run_dir).as_posix(): hashlib.sha256(normalised(p, run_dir)).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name not in IGNORED}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--broken", type=int, default=100)
    ap.add_argument("--kill-at", type=float, default=0.5,
                    help="fraction of the stage's reference duration to wait before SIGKILL")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for dissect run")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    root = out / "probe_folder"
    built = build(root, args.clips, args.broken)
    summary: dict = {"built": built, "command": " ".join(command(root, Path("RUN"), args.extra))}

    ref = out / "reference"
    t0 = time.perf_counter()
    with open(out / "reference.log", "w") as log:
        rc = launch(command(root, ref, args.extra), log).wait()
    summary["reference"] = {"rc": rc, "seconds": round(time.perf_counter() - t0, 1)}
    manifest = json.loads((ref / "manifest.json").read_text())
    seconds = {s: manifest["stages"].get(s, {}).get("seconds", 0.0) for s in STAGES}
    summary["reference"]["stage_seconds"] = seconds
    summary["clips_processed"] = sum(1 for _ in open(ref / "clips.jsonl"))
    skips = [json.loads(line) for line in open(ref / "skips.jsonl")]
    summary["skips"] = len(skips)
    summary["skip_kinds"] = {}
    for s in skips:
        k = s.get("kind") or "?"
        summary["skip_kinds"][k] = summary["skip_kinds"].get(k, 0) + 1

    killed = out / "killed"
    kills = []
    log_path = out / "killed.log"
    with open(log_path, "w") as log:
        for stage in STAGES:
            proc = launch(command(root, killed, args.extra), log)
            wait_s = args.kill_at * seconds[stage]
            started = None
            while proc.poll() is None:
                if started is None and stage_status(killed, stage) == "running":
                    started = time.perf_counter()
                if started is not None and time.perf_counter() - started >= wait_s:
                    break
                time.sleep(0.01)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills.append({"stage": stage, "after_s": round(wait_s, 2),
                              "status_left": stage_status(killed, stage)})
            else:
                kills.append({"stage": stage, "missed": True, "rc": proc.returncode})
        t1 = time.perf_counter()
        final_rc = launch(command(root, killed, args.extra), log).wait()
    summary["kills"] = kills
    summary["resume"] = {"rc": final_rc, "seconds": round(time.perf_counter() - t1, 1)}
    logs = (out / "reference.log").read_text() + log_path.read_text()
    summary["tracebacks"] = logs.count("Traceback")

    a, b = digest(ref), digest(killed)
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    summary["files_compared"] = len(a)
    summary["files_differing"] = differ[:50]
    good = args.clips - args.broken
    checks = {
        "reference exits 0": rc == 0,
        f"{args.broken} skips recorded": summary["skips"] == args.broken,
        f"{good} clips processed": summary["clips_processed"] == good,
        "no traceback": summary["tracebacks"] == 0,
        "a kill inside every stage": all(not k.get("missed") for k in kills),
        "resume exits 0": final_rc == 0,
        "identical artifacts": not differ and len(a) > 0,
    }
    summary["checks"] = checks
    text = json.dumps(summary, indent=1)
    (out / "fault_summary.json").write_text(text)
    print(text)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
