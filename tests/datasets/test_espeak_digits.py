"""The `espeak_digits` probe set: plan, determinism, labels, cache reuse, trim, no espeak-ng."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from dissect.config import ProbeConfig
from dissect.datasets import LAYOUTS, build_probe_set
from dissect.datasets import espeak_digits as ed
from dissect.datasets.espeak_digits import (
    EspeakDigitsConfig,
    EspeakMissingError,
    load_espeak_digits,
    plan_espeak_digits,
)
from dissect.datasets.render_cache import INDEX_NAME, JOURNAL_NAME
from dissect.util import hash_file

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)
N = 20


def _cfg(**kw) -> EspeakDigitsConfig:
    return EspeakDigitsConfig(n_clips=kw.pop("n_clips", N), **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return load_espeak_digits(_cfg(), cache_dir=tmp_path_factory.mktemp("ed"), progress=False)


# ------------------------------------------------------------------------------------- plan


def test_default_plan_is_ten_digits_by_sixty_balanced_combinations():
    specs = plan_espeak_digits(EspeakDigitsConfig())
    assert len(specs) == 600 and len({s.id for s in specs}) == 600
    combos = {(s.voice, s.speed_wpm, s.pitch) for s in specs}
    assert len(combos) == 60
    voices = [v for v, _, _ in combos]
    assert all(voices.count(v) == 5 for v in ed.DEFAULT_VOICES)
    for j in range(60):  # every combination says every digit, in order
        assert [s.digit for s in specs if s.combo == j] == list(range(10))


def test_plan_is_deterministic_and_seeded():
    a, b = plan_espeak_digits(_cfg()), plan_espeak_digits(_cfg())
    assert a == b
    c = plan_espeak_digits(_cfg(seed=1))
    assert [s.id for s in c] != [s.id for s in a]
    assert len(plan_espeak_digits(_cfg(n_clips=23))) == 23
    with pytest.raises(ValueError, match="combinations"):
        plan_espeak_digits(_cfg(n_clips=10_000, voices=["en-us"], speeds_wpm=[150]))


def test_registered_layout_and_config_field():
    assert "espeak_digits" in LAYOUTS
    assert isinstance(ProbeConfig().espeak_digits, EspeakDigitsConfig)


# ----------------------------------------------------------------------------- render, cache


@needs_espeak
def test_labels_and_concepts_of_a_clip(built):
    assert built.name == "espeak_digits" and len(built) == N
    assert built.label_columns == ["digit", "speaker"]
    clip = built[3]
    spec = plan_espeak_digits(_cfg())[3]
    assert clip.id == spec.id == f"digit-3-{ed._slug(spec.voice)}-s{spec.speed_wpm}-p{spec.pitch}"
    assert clip.labels == {"digit": "3", "speaker": spec.voice}
    assert clip.concepts == {"digit": 3, "word": "three", "voice": spec.voice,
                             "speed_wpm": spec.speed_wpm, "pitch": spec.pitch}  # fmt: skip
    info = sf.info(str(clip.path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "FLOAT")
    assert (built.root / INDEX_NAME).is_file() and not (built.root / JOURNAL_NAME).exists()


@needs_espeak
def test_same_config_same_files_different_seed_different_set(built, tmp_path):
    again = load_espeak_digits(_cfg(), cache_dir=tmp_path / "b", progress=False)
    assert [c.id for c in again] == [c.id for c in built]
    assert [hash_file(c.path) for c in again] == [hash_file(c.path) for c in built]
    assert again.root.name == built.root.name  # same cache key
    other = load_espeak_digits(_cfg(seed=7), cache_dir=tmp_path / "c", progress=False)
    assert other.root.name != built.root.name
    assert [c.id for c in other] != [c.id for c in built]


@needs_espeak
def test_second_build_renders_nothing(built, monkeypatch):
    calls = []
    real = subprocess.run
    monkeypatch.setattr(
        subprocess, "run", lambda cmd, *a, **k: calls.append(cmd) or real(cmd, *a, **k)
    )
    again = load_espeak_digits(_cfg(), cache_dir=built.root.parent, progress=False)
    assert [c.id for c in again] == [c.id for c in built]
    assert calls == []
    # a corrupted file is noticed (SHA-256 against the index) and rendered again, alone
    victim = built[5].path
    good = victim.read_bytes()
    victim.write_bytes(b"RIFF0000")
    load_espeak_digits(_cfg(), cache_dir=built.root.parent, progress=False)
    assert len([c for c in calls if "-w" in c]) == 1 and victim.read_bytes() == good


@needs_espeak
def test_trimmed_to_the_pad_at_both_ends(built):
    cfg = _cfg()
    pad = int(round(cfg.pad_s * cfg.sample_rate))
    thr = 10.0 ** (cfg.trim_dbfs / 20.0)
    for clip in built:
        x, _ = sf.read(str(clip.path), dtype="float64")
        loud = np.flatnonzero(np.abs(x) >= thr)
        assert loud[0] == pad and len(x) - 1 - loud[-1] == pad, clip.id
        assert not np.any(x[:pad]) and not np.any(x[len(x) - pad :])
        assert np.max(np.abs(x)) == pytest.approx(10 ** (cfg.peak_dbfs / 20), rel=1e-4)
        assert 0.2 < len(x) / cfg.sample_rate < 2.0, clip.id
        assert clip.metadata["duration_s"] == round(len(x) / cfg.sample_rate, 4)


def test_trim_and_pad_on_a_synthetic_signal():
    sr = 1000
    x = np.concatenate([np.full(300, 1e-4), np.ones(100) * 0.5, np.zeros(500)])
    y = ed.trim_and_pad(x, sr, peak_dbfs=0.0, trim_dbfs=-40.0, pad_s=0.01)
    assert len(y) == 10 + 100 + 10 and y[10] == pytest.approx(1.0) and not y[:10].any()


# --------------------------------------------------------------------------- missing espeak


def test_missing_espeak_names_the_program_and_the_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(EspeakMissingError, match=r"espeak-ng.*apt-get install espeak-ng"):
        load_espeak_digits(_cfg(), cache_dir=tmp_path, progress=False)
    cfg = ProbeConfig(layout="espeak_digits", espeak_digits=_cfg(cache_dir=str(tmp_path)))
    with pytest.raises(EspeakMissingError, match="espeak_digits"):
        build_probe_set(cfg, progress=False)
    assert not any(tmp_path.iterdir())  # nothing rendered, no empty cache directory


@needs_espeak
def test_real_voice_needs_the_asterisk_prompts(monkeypatch, tmp_path):
    monkeypatch.setattr(ed, "ASTERISK_DIGITS", tmp_path / "nowhere")
    with pytest.raises(EspeakMissingError, match="asterisk-core-sounds-en-wav"):
        load_espeak_digits(_cfg(real_voice=True), cache_dir=tmp_path, progress=False)


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or not (ed.ASTERISK_DIGITS / "0.wav").is_file(),
    reason="needs espeak-ng and asterisk-core-sounds-en-wav",
)
def test_real_voice_adds_ten_recorded_digits(tmp_path):
    ps = load_espeak_digits(_cfg(n_clips=10, real_voice=True), cache_dir=tmp_path, progress=False)
    real = [c for c in ps if c.labels["speaker"] == ed.REAL_VOICE]
    assert [c.id for c in real] == [f"digit-{d}-asterisk" for d in range(10)]
    assert [c.labels["digit"] for c in real] == [str(d) for d in range(10)]
