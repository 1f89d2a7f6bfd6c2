"""benchmarks/bench_long_clip.py on short clips: the synthetic sweep is what it says, both
children record every CREPE tiny neuron, and the reported ratios are computed from the rows."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
write_clip = runpy.run_path(str(ROOT / "benchmarks" / "bench_long_clip.py"))["write_clip"]


def test_sweep_clip_length_and_pitch(tmp_path):
    p = tmp_path / "c.wav"
    write_clip(p, 12.5, block=4096)  # blocks that do not divide the clip
    x, sr = sf.read(p, dtype="float32")
    assert sr == 16000 and len(x) == 200_000
    # 1 s into each 10 s sweep the frequency is 110 * 8 ** 0.1 = 135.1 Hz
    for start in (0.95, 10.95):
        seg = x[int(start * sr): int((start + 0.1) * sr)]
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n=1 << 16))
        f = np.fft.rfftfreq(1 << 16, 1 / sr)[int(np.argmax(spec))]
        assert f == pytest.approx(110 * 8 ** 0.1, abs=4.0)


@pytest.mark.real
def test_bench_long_clip_runs_and_reports_ratios(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_long_clip.py"), "--long-seconds", "25",
         "--short-seconds", "3", "--batch-size", "2", "--hop-ms", "100", "--threads", "1",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    short, long = res["short"], res["long"]
    assert short["seconds"] == 3.0 and long["seconds"] == 25.0
    assert short["windows"] == 1 and long["windows"] == 3
    assert short["neurons"] == long["neurons"] == 632 and short["finite"] and long["finite"]
    assert res["ratio_peak"] == pytest.approx(long["peak_rss_mib"] / short["peak_rss_mib"],
                                              abs=1e-3)
    assert long["peak_rss_mib"] >= long["rss_after_decode_mib"] >= long["rss_after_model_mib"]
