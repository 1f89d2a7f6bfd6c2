"""benchmarks/bench_scale.py on a tiny random AST: every stage measured for every N, the ``and``
neuron count, finite growth exponents, and artifact sizes that are the files' real sizes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the stages that record and report (the describe stages run in the real benchmark; here they
# would only add their fixed start-up cost, ~100 s on 2 cores)
STAGES = ["probe", "record", "report"]
# tiny AST: 2 blocks x (attention out 32 + FFN in 64 + FFN out 32) + a 50-class head
NEURONS, ONE_BLOCK = 2 * (32 + 64 + 32) + 50, (32 + 64 + 32) + 50


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.mark.slow
def test_bench_scale_tiny(tmp_path):
    out = tmp_path / "bench"
    argv = ["--tiny", "--clips", "4", "8", "--neuron-fractions", "0.5", "1", "--out", str(out),
            "--stages", "report", "probe", "record"]  # run in pipeline order whatever given
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "bench_scale.json").read_text())
    md = (out / "bench_scale.md").read_text()
    assert md.startswith("Command: `python benchmarks/bench_scale.py --tiny --clips 4 8")
    assert md in proc.stdout and "| record |" in md and "| report/index.html |" in md

    assert res["stages"] == STAGES
    assert res["neurons"] == res["model"]["neurons_formula"] == NEURONS
    assert sum(s["units"] for s in res["sites"]) == NEURONS and len(res["sites"]) == 2 * 3 + 1
    assert res["machine"]["cpu_count"] >= 1 and res["machine"]["torch_threads"] >= 1

    runs = res["clip_sweep"]
    assert [r["clips"] for r in runs] == [4, 8]
    for r in runs:
        assert list(r["stages"]) == STAGES
        for row in r["stages"].values():
            assert row["wall_s"] > 0 and row["cpu_s"] > 0 and row["stage_s"] >= 0
            assert row["wall_s"] >= row["stage_s"]
            # a real child's peak, not this process's inherited one
            assert 10 < row["peak_rss_mb"] < 50_000
        assert r["recorded_neurons"] == NEURONS and r["recorded_sites"] == 7
        run_dir = Path(r["run_dir"])
        assert len((run_dir / "clips.jsonl").read_text().splitlines()) == r["clips"]
        sizes = r["sizes"]
        on_disk = {p.name: _bytes(p) for p in run_dir.iterdir()}
        assert sizes["artifacts"] == on_disk and sizes["total"] == sum(on_disk.values())
        for name in ("clips.jsonl", "stats", "exemplars.jsonl", "report"):
            assert sizes["artifacts"][name] > 0, name
        index = run_dir / "report" / "index.html"
        assert sizes["report"]["index_html"] == index.stat().st_size > 0
        assert sizes["report"]["total"] == _bytes(run_dir / "report") >= index.stat().st_size

    sweep = res["neuron_sweep"]
    assert sweep["clips"] == 4
    assert [r["neurons"] for r in sweep["runs"]] == [ONE_BLOCK, NEURONS]
    assert sweep["runs"][0]["recorded_neurons"] == ONE_BLOCK
    assert sweep["runs"][1]["run_dir"] == runs[0]["run_dir"]  # all neurons at N=4: reused

    for axis in ("clips", "neurons"):
        assert list(res["exponents"][axis]) == STAGES
        for stage, b in res["exponents"][axis].items():
            for key in ("stage_s", "wall_s"):
                assert isinstance(b[key], float) and math.isfinite(b[key]), (axis, stage, key)

    # the shard benchmark on the N=8 run: one Ray shard blob of this run's layers
    merge_out = tmp_path / "merge"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_merge.py"),
                           "--run-dir", runs[1]["run_dir"], "--shards", "3", "--repeats", "1",
                           "--out", str(merge_out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((merge_out / "bench_merge.json").read_text())
    assert m["neurons"] == NEURONS and m["layers"] == 7 and m["shard_clips"] == 8
    dense = 2 * 8 * NEURONS  # float16 rows
    assert dense <= m["dense_bytes"] < dense + 16_384  # + the dense tensors' header entries
    assert m["merged_clips"] == 3 * 8  # 3 shards of the 8-clip state, each clip counted thrice
    assert min(m[k] for k in ("serialise_s", "write_s_per_shard", "read_s_per_shard",
                              "merge_s_per_shard")) > 0
    assert not list(merge_out.glob("shard-*"))  # the shard files are removed
