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

4. a hostile-input phase (``--hostile``, on by default) on a small folder of its own: a foreign
   non-empty ``run_dir`` (refused, left byte-identical), ``run_dir=/`` and a file as
   ``run_dir`` (refused in one line), ``record.k=0`` and ``record.batch_size=-1`` (refused
   before any work), metadata labels that are spreadsheet formulas (``=HYPERLINK(...)``,
   ``-2+3+cmd|' /C calc'!A0``, ``@SUM(1)``, ``+1``; no cell of ``descriptions.csv`` may start
   with ``= + - @`` or a tab/CR), a 100 kB label (cut to 200 characters; the run directory
   stays small), a one-sample WAV (a ``too_short`` skip), a metadata row reaching outside the
   root through a symlinked directory (an ``outside_root`` skip), and an embedding cache whose
   every vector is replaced by NaN under the right keys and a matching checksum (recomputed:
   the rerun's closed-set labels equal the first run's).

Prints one JSON summary (also ``<out>/fault_summary.json``); exit 1 when a check fails.

    .venv/bin/python benchmarks/fault_test.py --out /tmp/fault [--clips 1000 --broken 100]
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


FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "-2+3+cmd|' /C calc'!A0", "@SUM(1)", "+1",
            "\tTAB"]


def hostile(out: Path) -> dict:
    """The issue-26 cases on a small folder (25 good clips, five categories) of their own."""
    root = out / "hostile_folder"
    outside = out / "outside"
    res: dict = {}
    rng = np.random.default_rng(1)
    if not root.exists():
        root.mkdir(parents=True)
        outside.mkdir(exist_ok=True)
        rows = []
        for i in range(25):
            cat, x = good_clip(i, rng)
            sf.write(root / f"g{i:02d}.wav", x, SR, subtype="PCM_16")
            label = FORMULAS[i % len(FORMULAS)] if i < 10 else cat
            if i == 10:
                label = "L" * 100_000  # a 100 kB label
            rows.append({"filename": f"g{i:02d}.wav", "category": label})
        sf.write(root / "one_sample.wav", np.zeros(1, np.float32), SR, subtype="PCM_16")
        rows.append({"filename": "one_sample.wav", "category": "tiny"})
        _, x = good_clip(0, rng)
        sf.write(outside / "secret.wav", x, SR, subtype="PCM_16")
        os.symlink(outside, root / "linked")
        rows.append({"filename": "linked/secret.wav", "category": "escape"})
        with open(root / "metadata.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["filename", "category"])
            w.writeheader()
            w.writerows(rows)
    env = {**os.environ, "DISSECT_CACHE": str(out / "hostile_cache")}
    base = [str(Path(sys.executable).with_name("dissect")), "run", "probe.layout=folder",
            f"probe.root={root}", "probe.metadata=metadata.csv", "probe.max_skip_fraction=0.2",
            "llm=rules", "model.layers=[conv6,classifier]"]

    def run(*extra: str) -> tuple[int, str]:
        p = subprocess.run([*base, *extra], capture_output=True, text=True, env=env)
        return p.returncode, p.stdout + p.stderr

    # refusals: nothing may be written
    foreign = out / "users_dir"
    foreign.mkdir(exist_ok=True)
    (foreign / "config.yaml").write_text("mine: true\n")
    (foreign / "stats").mkdir(exist_ok=True)
    (foreign / "stats" / "conv6.safetensors").write_bytes(b"my own bytes")
    before = {str(q): q.read_bytes() for q in foreign.rglob("*") if q.is_file()}
    rc, text = run(f"run_dir={foreign}")
    after = {str(q): q.read_bytes() for q in foreign.rglob("*") if q.is_file()}
    res["foreign_run_dir"] = {"rc": rc, "unchanged": before == after, "line": text.strip()[-200:]}
    root_files = {n: Path("/", n).exists() for n in ("config.yaml", "manifest.json")}
    rc, text = run("run_dir=/")
    res["root_run_dir"] = {"rc": rc, "line": text.strip()[-200:], "wrote_nothing": all(
        Path("/", n).exists() == was for n, was in root_files.items())}
    a_file = out / "a_file"
    a_file.write_text("x")
    rc, text = run(f"run_dir={a_file}")
    res["file_run_dir"] = {"rc": rc, "line": text.strip()[-200:],
                           "one_line": len(text.strip().splitlines()) == 1}
    for over in ("record.k=0", "record.batch_size=-1"):
        rc, text = run(f"run_dir={out / 'sizes'}", over)
        res[over] = {"rc": rc, "line": text.strip()[-200:],
                     "nothing_written": not (out / "sizes" / "clips.jsonl").exists()}
    # the hostile run, then a rerun on a poisoned embedding cache
    first = out / "hostile_run"
    t0 = time.perf_counter()
    rc, text = run(f"run_dir={first}")
    res["hostile_run"] = {"rc": rc, "seconds": round(time.perf_counter() - t0, 1),
                          "tracebacks": text.count("Traceback"),
                          "cut_warnings": text.count("TextCutWarning")}
    if rc == 0:
        skips = [json.loads(x) for x in open(first / "skips.jsonl")]
        res["skip_kinds"] = sorted({s.get("kind") for s in skips})
        with open(first / "descriptions.csv", newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        res["csv_cells"] = len(cells)
        res["csv_formula_cells"] = sum(1 for c in cells if c[:1] in ("=", "+", "-", "@", "\t",
                                                                    "\r"))
        res["run_dir_bytes"] = sum(q.stat().st_size for q in first.rglob("*") if q.is_file())
        longest = max(len(json.dumps(r.get("labels") or {})) for r in map(
            json.loads, open(first / "clips.jsonl")))
        res["longest_labels_json"] = longest
        from dissect.description.embed import _shard_checksum

        n_vec = 0
        for f in (out / "hostile_cache" / "embeddings").rglob("*.npz"):
            with np.load(f, allow_pickle=False) as z:
                keys, vecs = z["keys"], z["vecs"]
            bad = np.full_like(vecs, np.nan)  # with a matching checksum: only the
            np.savez(f.with_suffix(""), keys=keys, vecs=bad,  # finiteness check catches it
                     sha256=np.asarray(_shard_checksum(keys, bad)))
            n_vec += len(keys)
        res["poisoned_vectors"] = n_vec
        second = out / "hostile_rerun"
        rc2, text2 = run(f"run_dir={second}")
        same = rc2 == 0 and [r.get("closed") for r in map(json.loads, open(
            first / "concepts.jsonl"))] == [r.get("closed") for r in map(
                json.loads, open(second / "concepts.jsonl"))]
        res["poisoned_rerun"] = {"rc": rc2, "closed_labels_equal": same,
                                 "tracebacks": text2.count("Traceback")}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--broken", type=int, default=100)
    ap.add_argument("--kill-at", type=float, default=0.5,
                    help="fraction of the stage's reference duration to wait before SIGKILL")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for dissect run")
    ap.add_argument("--no-hostile", dest="hostile", action="store_false",
                    help="skip the hostile-input phase")
    ap.add_argument("--hostile-only", action="store_true",
                    help="run only the hostile-input phase")
    args = ap.parse_args()
    if args.hostile_only:
        args.out.mkdir(parents=True, exist_ok=True)
        res = hostile(args.out)
        checks = hostile_checks(res)
        text = json.dumps({"hostile": res, "checks": checks}, indent=1)
        (args.out / "fault_summary.json").write_text(text)
        print(text)
        return 0 if all(checks.values()) else 1
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
    if args.hostile:
        summary["hostile"] = hostile(out)
        checks.update(hostile_checks(summary["hostile"]))
    summary["checks"] = checks
    text = json.dumps(summary, indent=1)
    (out / "fault_summary.json").write_text(text)
    print(text)
    return 0 if all(checks.values()) else 1


def hostile_checks(res: dict) -> dict[str, bool]:
    """Pass/fail of each hostile case of :func:`hostile`."""
    return {
        "foreign run_dir refused, left byte-identical": res["foreign_run_dir"]["rc"] == 1
        and res["foreign_run_dir"]["unchanged"],
        "run_dir=/ refused, nothing written": res["root_run_dir"]["rc"] == 1
        and res["root_run_dir"]["wrote_nothing"],
        "a file as run_dir: one line, exit 1": res["file_run_dir"]["rc"] == 1
        and res["file_run_dir"]["one_line"],
        "record.k=0 refused before work": res["record.k=0"]["rc"] != 0
        and res["record.k=0"]["nothing_written"],
        "record.batch_size=-1 refused before work": res["record.batch_size=-1"]["rc"] != 0
        and res["record.batch_size=-1"]["nothing_written"],
        "hostile run exits 0 without traceback": res["hostile_run"]["rc"] == 0
        and res["hostile_run"]["tracebacks"] == 0,
        "too_short and outside_root skips": {"too_short", "outside_root"} <= set(
            res.get("skip_kinds", [])),
        "no formula cell in descriptions.csv": res.get("csv_formula_cells", 1) == 0,
        "100 kB label cut (labels <= 300 chars of JSON)": res.get("longest_labels_json", 10**9)
        <= 300,
        "poisoned embedding cache recomputed": res.get("poisoned_vectors", 0) > 0
        and res.get("poisoned_rerun", {}).get("closed_labels_equal", False),
    }


if __name__ == "__main__":
    sys.exit(main())
