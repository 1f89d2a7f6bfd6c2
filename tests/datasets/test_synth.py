"""The embedded `synth` probe set: plan, deterministic render, cache, ground truth, speech."""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dissect.audio import load_audio
from dissect.config import SynthConfig
from dissect.datasets import synth
from dissect.datasets.synth import (
    CONCEPT_KEYS,
    INDEX_NAME,
    JOURNAL_NAME,
    RENDER_VERSION,
    load_synth,
    plan_synth,
    render_clip,
    synth_cache_key,
)

SMALL = dict(seed=3, n_clips=48, min_seconds=1.0, max_seconds=1.5)


def _cfg(**kw) -> SynthConfig:
    return SynthConfig(**{**SMALL, **kw})


@pytest.fixture(autouse=True)
def _no_espeak(monkeypatch):
    """Behave the same on machines with and without espeak-ng (tests opt in explicitly)."""
    real_which = shutil.which
    monkeypatch.setattr(
        shutil,
        "which",
        lambda name, *a, **k: None if name == "espeak-ng" else real_which(name, *a, **k),
    )


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(synth.cache, "speech_available", lambda: False)
        return load_synth(_cfg(), cache_dir=tmp_path_factory.mktemp("synth"), progress=False)


def _bytes(ps) -> dict[str, bytes]:
    return {c.id: c.path.read_bytes() for c in ps}


def _rms_db(x: np.ndarray) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


# ------------------------------------------------------------------------------------- plan


def test_default_plan_composition():
    specs = plan_synth(SynthConfig(), speech_available=False)
    kinds = Counter(s.kind for s in specs)
    assert len(specs) == 600
    assert kinds == {"note": 420, "tone": 30, "harmonic": 30, "noise": 48, "clicks": 30,
                     "chirp": 30, "silence": 12}  # fmt: skip
    notes = [s for s in specs if s.kind == "note"]
    families = {s.concepts["family"] for s in notes}
    assert len(families) >= 8, families
    assert {s.concepts["midi_note"] for s in notes} == set(range(24, 96))  # CREPE's C1..B6
    assert {s.concepts["velocity"] for s in notes} == {64, 112}
    assert {s.concepts["noise_colour"] for s in specs if s.kind == "noise"} == {
        "white", "pink", "brown"}  # fmt: skip
    assert {s.concepts["chirp_direction"] for s in specs if s.kind == "chirp"} == {
        "rising", "falling"}  # fmt: skip
    durations = [s.duration_s for s in specs]
    assert 1.0 <= min(durations) < 1.2 and 1.8 < max(durations) <= 2.0

    with_speech = Counter(s.kind for s in plan_synth(SynthConfig(), speech_available=True))
    assert with_speech["speech"] == 60 and with_speech["note"] == 360
    # speech=False in the config wins over an installed espeak-ng
    no_speech = plan_synth(SynthConfig(speech=False), speech_available=True)
    assert not any(s.kind == "speech" for s in no_speech)


def test_plan_ids_and_concepts_are_well_formed():
    specs = plan_synth(SynthConfig(), speech_available=True)
    ids = [s.id for s in specs]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+-\d{4}(-[A-Za-z0-9.-]+)?", i) for i in ids), ids[:5]
    assert any(re.fullmatch(r"note-\d{4}-violin-[A-G]s?\d-v(64|112)", i) for i in ids)
    for s in specs:
        assert tuple(s.concepts) == CONCEPT_KEYS
        json.dumps(s.concepts)
        json.dumps(s.metadata(16000))
        if s.kind in ("note", "tone", "harmonic"):
            m = s.concepts["midi_note"]
            assert 24 <= m <= 95
            assert s.concepts["f0_hz"] == pytest.approx(440 * 2 ** ((m - 69) / 12))
            assert s.concepts["note"][0] in "ABCDEFG"
        else:
            assert s.concepts["midi_note"] is None and s.concepts["f0_hz"] is None
        if s.kind == "harmonic":
            assert s.params["n_harmonics"] * s.concepts["f0_hz"] < 0.45 * 16000
            assert s.params["n_harmonics"] >= 6
        assert s.concepts["is_speech"] == (s.kind == "speech")
        assert (s.concepts["text"] is not None) == (s.kind == "speech")
        assert (s.concepts["family"] is not None) == (s.kind == "note")


def test_cache_key_and_root(monkeypatch, tmp_path):
    base = synth_cache_key(SynthConfig(), False)
    assert base.startswith(f"v{RENDER_VERSION}-")
    assert synth_cache_key(SynthConfig(cache_dir="/elsewhere"), False) == base
    assert synth_cache_key(SynthConfig(speech=False), True) == base
    for change in ({"seed": 1}, {"n_clips": 299}, {"sample_rate": 22050}, {"max_seconds": 3.0}):
        assert synth_cache_key(SynthConfig(**change), False) != base
    assert synth_cache_key(SynthConfig(), True) != base

    monkeypatch.setenv("DISSECT_CACHE", str(tmp_path / "env"))
    assert synth.synth_cache_root(SynthConfig()) == tmp_path / "env" / "synth"
    assert synth.synth_cache_root(SynthConfig(cache_dir=str(tmp_path / "c"))) == tmp_path / "c"
    assert synth.synth_cache_root(SynthConfig(cache_dir="x"), tmp_path / "a") == tmp_path / "a"
    monkeypatch.delenv("DISSECT_CACHE")
    assert synth.synth_cache_root(SynthConfig()) == Path.home() / ".cache/dissect/synth"


# ------------------------------------------------------------------------- render and cache


def test_probe_set_shape(small_set):
    ps = small_set
    assert ps.name == "synth" and ps.label_columns == ["kind", "family"]
    assert len(ps) == 48
    assert ps.root.parent.name.startswith("synth") and (ps.root / INDEX_NAME).is_file()
    assert not (ps.root / JOURNAL_NAME).exists()
    index = json.loads((ps.root / INDEX_NAME).read_text())
    assert [r["id"] for r in index["clips"]] == [c.id for c in ps]
    for c, rec in zip(ps, index["clips"], strict=True):
        assert rec["file"] == c.path.name
        assert len(rec["sha256"]) == 64
        assert c.labels == {"kind": c.concepts["kind"], "family": c.concepts["family"]}
        json.dumps(c.to_record())
        audio = load_audio(c.path, 16000)
        assert sf.info(str(c.path)).subtype == "FLOAT"
        assert len(audio.waveform) == round(c.metadata["duration_s"] * 16000)
        assert np.max(np.abs(audio.waveform)) <= 10 ** (-1 / 20) + 1e-6


def test_same_seed_is_byte_identical_other_seed_differs(tmp_path, small_set):
    a = load_synth(_cfg(), cache_dir=tmp_path / "a", progress=False)
    assert a.root != small_set.root
    assert [c.id for c in a] == [c.id for c in small_set]
    assert _bytes(a) == _bytes(small_set)
    assert [c.concepts for c in a] == [c.concepts for c in small_set]

    b = load_synth(_cfg(seed=4), cache_dir=tmp_path / "b", progress=False)
    assert [c.id for c in b] != [c.id for c in a]
    ba, bb = _bytes(a), _bytes(b)
    shared = set(ba) & set(bb)
    assert all(ba[i] != bb[i] for i in shared)


def test_render_is_order_independent():
    specs = plan_synth(_cfg(n_clips=12), False)
    forward = [render_clip(s, 16000) for s in specs]
    backward = [render_clip(s, 16000) for s in reversed(specs)][::-1]
    for x, y in zip(forward, backward, strict=True):
        assert x.dtype == np.float32 and np.array_equal(x, y)


def test_cache_is_reused_without_rendering(tmp_path, monkeypatch):
    first = load_synth(_cfg(n_clips=16), cache_dir=tmp_path, progress=False)
    before = {c.id: c.path.stat().st_mtime_ns for c in first}

    def boom(*a, **k):
        raise AssertionError("cached clip rendered again")

    monkeypatch.setattr(synth.cache, "render_clip", boom)
    second = load_synth(_cfg(n_clips=16), cache_dir=tmp_path, progress=False)
    assert [c.to_record() for c in second] == [c.to_record() for c in first]
    assert {c.id: c.path.stat().st_mtime_ns for c in second} == before


def test_corrupted_missing_and_truncated_files_are_rerendered(tmp_path, monkeypatch):
    ps = load_synth(_cfg(n_clips=16), cache_dir=tmp_path, progress=False)
    good = _bytes(ps)
    truncated, flipped, removed = ps[0].path, ps[5].path, ps[9].path
    truncated.write_bytes(good[ps[0].id][:-100])
    data = bytearray(good[ps[5].id])
    data[-1] ^= 0xFF  # same size, one sample changed
    flipped.write_bytes(bytes(data))
    removed.unlink()

    rendered = []
    real = synth.render_clip
    monkeypatch.setattr(
        synth.cache, "render_clip", lambda spec, sr: rendered.append(spec.id) or real(spec, sr)
    )
    again = load_synth(_cfg(n_clips=16), cache_dir=tmp_path, progress=False)
    assert sorted(rendered) == sorted([ps[0].id, ps[5].id, ps[9].id])
    assert _bytes(again) == good


def test_interrupted_render_resumes_and_never_trusts_existing_files(tmp_path, monkeypatch):
    cfg = _cfg(n_clips=16)
    reference = _bytes(load_synth(cfg, cache_dir=tmp_path / "ref", progress=False))
    specs = plan_synth(cfg, False)
    root = tmp_path / "run" / synth_cache_key(cfg, False)
    real = synth.render_clip
    rendered: list[str] = []

    def killed_after(n: int):
        def render(spec, sr):
            if len(rendered) == n:
                raise KeyboardInterrupt  # as if the process were killed here
            rendered.append(spec.id)
            return real(spec, sr)

        return render

    monkeypatch.setattr(synth.cache, "render_clip", killed_after(5))
    with pytest.raises(KeyboardInterrupt):
        load_synth(cfg, cache_dir=tmp_path / "run", progress=False)
    assert not (root / INDEX_NAME).exists()
    assert len((root / JOURNAL_NAME).read_text().splitlines()) == 5
    # a file that exists but was never recorded (e.g. copied in by hand) is not trusted
    (root / specs[10].file_name).write_bytes(reference[specs[10].id])
    (root / specs[11].file_name).write_bytes(b"RIFF junk")
    with (root / JOURNAL_NAME).open("a") as fh:
        fh.write('{"file": "torn')  # a line cut short by the kill

    monkeypatch.setattr(synth.cache, "render_clip", killed_after(8))  # killed again, 3 clips later
    with pytest.raises(KeyboardInterrupt):
        load_synth(cfg, cache_dir=tmp_path / "run", progress=False)
    assert rendered == [s.id for s in specs[:8]]

    rendered.clear()
    monkeypatch.setattr(synth.cache, "render_clip", killed_after(10**6))
    ps = load_synth(cfg, cache_dir=tmp_path / "run", progress=False)
    assert rendered == [s.id for s in specs[8:]]
    assert _bytes(ps) == reference
    assert (root / INDEX_NAME).exists() and not (root / JOURNAL_NAME).exists()
    assert not list(root.glob(".*.tmp"))


# ----------------------------------------------------------------------------- ground truth


def _median_f0(x: np.ndarray, sr: int) -> float:
    """pYIN median over voiced frames (A0..~D7 search range; quarter-semitone grid; 256 ms
    frames so that C1, 33 Hz, has 8 periods per frame)."""
    import librosa

    f0, voiced, _ = librosa.pyin(
        x, fmin=27.5, fmax=2400.0, sr=sr, frame_length=4096, resolution=0.25, n_thresholds=50
    )
    f0 = f0[voiced & np.isfinite(f0)]
    return float(np.median(f0)) if f0.size else float("nan")


def test_pitch_ground_truth_matches_measured_f0(tmp_path):
    """At least 95 % of notes, tones and harmonic complexes measure within a semitone."""
    cfg = _cfg(seed=0, n_clips=200, max_seconds=1.3)
    ps = load_synth(cfg, cache_dir=tmp_path, progress=False)
    pitched = [c for c in ps if c.concepts["kind"] in ("note", "tone", "harmonic")]
    assert sum(c.concepts["kind"] == "note" for c in pitched) >= 120
    misses = []
    for c in pitched:
        x, sr = sf.read(str(c.path), dtype="float32")
        err = 12 * math.log2(_median_f0(x, sr) / c.concepts["f0_hz"])
        if not abs(err) <= 1.0:  # NaN (nothing voiced) counts as a miss
            misses.append((c.id, round(err, 2)))
    rate = 1 - len(misses) / len(pitched)
    print(f"f0 within a semitone: {rate:.1%} of {len(pitched)} pitched clips; misses {misses}")
    assert rate >= 0.95, misses


def test_loudness_is_measured_and_varies(small_set):
    levels = []
    for c in small_set:
        x, _ = sf.read(str(c.path), dtype="float32")
        assert c.concepts["loudness_dbfs"] == pytest.approx(_rms_db(x), abs=0.1)
        levels.append(c.concepts["loudness_dbfs"])
        if c.concepts["kind"] == "silence":
            assert -90.5 <= c.concepts["loudness_dbfs"] <= -69.5
    tonal = [c.concepts["loudness_dbfs"] for c in small_set if c.concepts["kind"] == "note"]
    assert max(tonal) - min(tonal) > 8.0


def _slope_db_per_octave(x: np.ndarray, sr: int) -> float:
    from scipy.signal import welch

    f, p = welch(x, fs=sr, nperseg=1024)
    band = (f >= 100) & (f <= 5000)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0])


def test_noise_colours_have_expected_slopes():
    cfg = SynthConfig(seed=5, n_clips=100)
    expected = {"white": (-1.0, 1.0), "pink": (-4.5, -1.5), "brown": (-7.5, -4.5)}
    seen = Counter()
    for s in plan_synth(cfg, False):
        if s.kind != "noise":
            continue
        slope = _slope_db_per_octave(render_clip(s, 16000), 16000)
        lo, hi = expected[s.concepts["noise_colour"]]
        assert lo <= slope <= hi, (s.id, slope)
        seen[s.concepts["noise_colour"]] += 1
    assert set(seen) == set(expected)


def _count_clicks(x: np.ndarray, sr: int) -> int:
    hot = np.flatnonzero(np.abs(x) > 0.3 * np.max(np.abs(x)))
    return int(1 + np.sum(np.diff(hot) > 0.004 * sr))  # bursts last 2 ms


def test_click_counts_match_rate_times_duration():
    specs = [s for s in plan_synth(SynthConfig(seed=2), False) if s.kind == "clicks"]
    assert len({s.concepts["click_rate_hz"] for s in specs}) >= 10
    for s in specs:
        x = render_clip(s, 16000)
        expected = s.concepts["click_rate_hz"] * len(x) / 16000
        assert abs(_count_clicks(x, 16000) - expected) <= 1, s.id


def test_chirps_sweep_in_their_direction():
    import librosa

    specs = [s for s in plan_synth(SynthConfig(seed=2), False) if s.kind == "chirp"]
    for s in specs:
        x = render_clip(s, 16000)
        q = len(x) // 4
        start = float(np.mean(librosa.feature.spectral_centroid(y=x[:q], sr=16000)))
        end = float(np.mean(librosa.feature.spectral_centroid(y=x[-q:], sr=16000)))
        assert (end > start) == (s.concepts["chirp_direction"] == "rising"), s.id
        assert (s.concepts["chirp_end_hz"] > s.concepts["chirp_start_hz"]) == (end > start)


# ----------------------------------------------------------------------------------- speech


def test_no_espeak_gives_no_speech_and_one_warning(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="dissect.datasets.synth"):
        ps = load_synth(_cfg(n_clips=20), cache_dir=tmp_path, progress=False)
    assert not any(c.concepts["is_speech"] for c in ps)
    with_speech = synth.kind_counts(20, True)  # the speech slots went to notes
    assert Counter(c.concepts["kind"] for c in ps)["note"] == (
        with_speech["note"] + with_speech["speech"]
    )
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "espeak-ng" in warnings[0].getMessage()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dissect.datasets.synth"):
        load_synth(_cfg(n_clips=20, speech=False), cache_dir=tmp_path, progress=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("speech disabled" in r.getMessage() for r in caplog.records) == 1


def test_speech_path_with_a_stand_in_espeak(tmp_path, monkeypatch, caplog):
    """The espeak-ng call is replaced by a stand-in that writes a 22.05 kHz voiced WAV."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        out = cmd[cmd.index("-w") + 1]
        sr = 22050
        t = np.arange(int(0.6 * sr)) / sr
        voice = 0.3 * np.sin(2 * np.pi * 140 * t) * np.hanning(len(t))
        pad = np.zeros(int(0.2 * sr))
        sf.write(out, np.concatenate([pad, voice, pad]).astype(np.float32), sr, subtype="PCM_16")
        return subprocess.CompletedProcess(cmd, 0, b"", b"")

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/opt/fake/espeak-ng")
    monkeypatch.setattr(subprocess, "run", fake_run)
    cfg = _cfg(n_clips=20)
    with caplog.at_level(logging.WARNING, logger="dissect.datasets.synth"):
        ps = load_synth(cfg, cache_dir=tmp_path, progress=False)
    assert not caplog.records
    speech = [c for c in ps if c.concepts["is_speech"]]
    assert len(speech) == 2 and len(calls) == 2
    assert ps.root.name == synth_cache_key(cfg, True) != synth_cache_key(cfg, False)
    for c, cmd in zip(speech, calls, strict=True):
        assert c.concepts["kind"] == "speech" and c.concepts["text"] == cmd[-1]
        assert cmd[0] == "/opt/fake/espeak-ng"
        audio = load_audio(c.path, 16000)
        assert audio.sample_rate == 16000
        assert len(audio.waveform) == round(c.metadata["duration_s"] * 16000)
        assert c.concepts["loudness_dbfs"] == pytest.approx(audio.rms_dbfs, abs=0.1)
        assert audio.rms_dbfs > -40
