"""The Ray recording backend against the single-process recorder (real CREPE tiny, local Ray).

Skipped when Ray is not installed (it is an optional extra), except the tests that need no Ray.
"""

import os
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from dissect.recording.ray_backend import ShardError, import_ray, plan_shards, record_ray

N_CLIPS, BATCH, K, SHARDS = 20, 4, 3, 4
MODEL = {"name": "crepe", "source": "tiny", "site": "ffn", "options": {"hop_ms": 40.0},
         "device": "cpu"}
STARTS = [lo for lo, _ in plan_shards(N_CLIPS, SHARDS, BATCH)]  # [0, 4, 8, 12]


def test_plan_shards_is_contiguous_aligned_and_complete():
    for n, s, a in [(20, 4, 4), (21, 4, 4), (7, 10, 1), (1, 3, 8), (1000, 7, 8)]:
        plan = plan_shards(n, s, a)
        assert plan[0][0] == 0 and plan[-1][1] == n
        assert all(hi > lo for lo, hi in plan)
        assert all(plan[i][1] == plan[i + 1][0] for i in range(len(plan) - 1))
        assert all(lo % a == 0 for lo, _ in plan)
        assert plan == plan_shards(n, s, a)  # deterministic
    assert plan_shards(20, 4, 4) == [(0, 4), (4, 8), (8, 12), (12, 20)]
    assert plan_shards(0, 4) == []


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'dissect\[ray\]'"):
        import_ray()


# ------------------------------------------------------------------------------ with Ray


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def clip_rows(tmp_path_factory):
    """~20 synth-like clips (tones, chirps, noise, clicks, silence) written as wav files."""
    d = tmp_path_factory.mktemp("clips")
    sr = 16000
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N_CLIPS):
        n = int(sr * rng.uniform(0.3, 0.8))
        t = np.arange(n) / sr
        kind = i % 5
        if kind == 0:
            x = 0.4 * np.sin(2 * np.pi * 110 * 2 ** (i / 5) * t)
        elif kind == 1:
            x = 0.3 * np.sin(2 * np.pi * (200 + 1500 * t / t[-1]) * t)
        elif kind == 2:
            x = 0.2 * rng.normal(size=n)
        elif kind == 3:
            x = np.zeros(n)
            x[:: sr // 10] = 0.9
        else:
            x = 1e-4 * rng.normal(size=n)
        p = d / f"clip{i:02d}.wav"
        sf.write(p, x.astype(np.float32), sr, subtype="FLOAT")
        rows.append({"id": f"clip{i:02d}", "path": str(p)})
    return rows


@pytest.fixture(scope="module")
def reference(clip_rows):
    """The single-process result over the same clips."""
    from dissect.audio import load_audio
    from dissect.models import get_adapter
    from dissect.recording.recorder import record

    adapter = get_adapter("crepe", source="tiny", hop_ms=40.0)
    model = adapter.load("cpu")
    sites = adapter.resolve_layers(model, None)
    clips = [(i, load_audio(r["path"], 16000).waveform) for i, r in enumerate(clip_rows)]
    return record(adapter, model, clips, sites, k=K, batch_size=BATCH, dense_rows=N_CLIPS,
                  progress=False)


def run(rows, shard_dir, **kw):
    return record_ray(MODEL, rows, None, shard_dir=shard_dir, k=K, batch_size=BATCH,
                      dense=True, n_shards=SHARDS, progress=False, **kw)


def assert_same(res, ref):
    assert list(res.layers) == list(ref.layers)
    assert res.n_clips == ref.n_clips == N_CLIPS
    for name, want in ref.layers.items():
        got = res.layers[name]
        for side in ("top", "bottom"):
            g, w = getattr(got, side), getattr(want, side)
            assert torch.equal(g.index, w.index), (name, side)
            assert torch.equal(g.values, w.values), (name, side)
            assert torch.equal(g.peak_ms, w.peak_ms), (name, side)
        assert torch.equal(got.hist.counts, want.hist.counts), name
        assert torch.equal(got.moments.count, want.moments.count)
        torch.testing.assert_close(got.moments.mean, want.moments.mean, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(got.moments.m2, want.moments.m2, rtol=1e-9, atol=1e-12)
        assert torch.equal(got.moments.min, want.moments.min)
        assert torch.equal(got.moments.max, want.moments.max)
        assert torch.equal(got.dense, want.dense), name  # NaN-free: every clip recorded


def counting_loader(calls_dir, crash_dir=None, crash_at=None, always=False):
    """A clip loader (pickled by value: it is a closure) that leaves one file per task run in
    ``calls_dir`` (on each shard's first clip) and kills its worker process at clip
    ``crash_at``: once (a marker file remembers it), or on every attempt with ``always``."""
    calls_dir, crash_dir = str(calls_dir), str(crash_dir)
    starts = set(STARTS)

    def loader(index, row, sr):
        import uuid

        from dissect.audio import load_audio

        if index in starts:
            open(os.path.join(calls_dir, f"{index}-{uuid.uuid4().hex}"), "w").close()
        if index == crash_at:
            flag = os.path.join(crash_dir, f"crashed-{uuid.uuid4().hex}")
            if always or not os.listdir(crash_dir):
                open(flag, "w").close()
                os._exit(1)  # the worker process dies; Ray retries the task
        return load_audio(row["path"], sr).waveform

    return loader


def task_runs(calls_dir) -> dict[int, int]:
    out = dict.fromkeys(STARTS, 0)
    for name in os.listdir(calls_dir):
        out[int(name.split("-")[0])] += 1
    return out


@pytest.mark.real
def test_ray_equals_single_process(ray_session, clip_rows, reference, tmp_path):
    res = run(clip_rows, tmp_path / "shards")
    assert_same(res, reference)
    assert [(s["lo"], s["hi"]) for s in res.shards] == [(0, 4), (4, 8), (8, 12), (12, 20)]
    assert res.reused == 0 and res.workers == 2 and not res.use_gpu and res.failed == []
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        f"shard-{i:05d}.safetensors" for i in range(SHARDS)]


@pytest.mark.real
def test_finished_shards_are_not_recomputed(ray_session, clip_rows, reference, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    shards = tmp_path / "shards"
    loader = counting_loader(calls)
    assert_same(run(clip_rows, shards, clip_loader=loader), reference)
    assert task_runs(calls) == {0: 1, 4: 1, 8: 1, 12: 1}

    (shards / "shard-00002.safetensors").unlink()  # as if killed before shard 2 finished
    (shards / "shard-00003.safetensors").write_bytes(b"truncated")  # a corrupt file
    res = run(clip_rows, shards, clip_loader=loader)
    assert task_runs(calls) == {0: 1, 4: 1, 8: 2, 12: 2}
    assert [s["reused"] for s in res.shards] == [True, True, False, False]
    assert_same(res, reference)

    res = run(clip_rows, shards, clip_loader=loader)  # everything is done: nothing runs
    assert task_runs(calls) == {0: 1, 4: 1, 8: 2, 12: 2} and res.reused == SHARDS
    assert_same(res, reference)

    # one clip fewer changes only the last shard's key; another reduction changes every key
    other = run(clip_rows[:-1], shards, clip_loader=loader)
    assert other.n_clips == N_CLIPS - 1 and [s["reused"] for s in other.shards] == [
        True, True, True, False]
    assert run(clip_rows, shards, clip_loader=loader, reduction="max").reused == 0


@pytest.mark.real
def test_dead_worker_is_retried(ray_session, clip_rows, reference, tmp_path):
    calls, crashes = tmp_path / "calls", tmp_path / "crashes"
    calls.mkdir()
    crashes.mkdir()
    res = run(clip_rows, tmp_path / "shards",
              clip_loader=counting_loader(calls, crashes, crash_at=9), max_retries=2)
    assert len(os.listdir(crashes)) == 1  # the first attempt of shard 2 died ...
    assert task_runs(calls)[8] == 2  # ... and was run again
    assert_same(res, reference)


@pytest.mark.real
def test_shard_that_keeps_failing_names_its_clips(ray_session, clip_rows, tmp_path):
    calls, crashes = tmp_path / "calls", tmp_path / "crashes"
    calls.mkdir()
    crashes.mkdir()
    loader = counting_loader(calls, crashes, crash_at=9, always=True)
    with pytest.raises(ShardError, match=r"shard 2 \(clips 8\.\.11: clip08, clip09") as err:
        run(clip_rows, tmp_path / "shards", clip_loader=loader, max_retries=0)
    assert "1 attempt(s)" in str(err.value)
    assert len(os.listdir(crashes)) == 1
    kept = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert "shard-00002.safetensors" not in kept and "shard-00000.safetensors" in kept


@pytest.mark.real
def test_unreadable_clip_is_reported_not_fatal(ray_session, clip_rows, tmp_path):
    rows = [dict(r) for r in clip_rows]
    rows[5]["path"] = str(tmp_path / "gone.wav")
    res = run(rows, tmp_path / "shards")
    assert [(f["index"], f["id"]) for f in res.failed] == [(5, "clip05")]
    assert res.n_clips == N_CLIPS - 1
    for st in res.layers.values():
        assert torch.isnan(st.dense[5].float()).all() and not torch.isnan(st.dense[4]).any()
        assert 5 not in st.top.index and 5 not in st.bottom.index
