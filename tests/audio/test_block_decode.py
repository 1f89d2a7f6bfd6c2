"""Decoding reads and mixes down block by block: the same samples as reading the file whole,
NaN/Inf found in any block, and peak memory near the mono result, not the multichannel file."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from dissect.audio import AudioNonFiniteError, ClipPolicy, load_audio
from dissect.audio import load as load_mod

SR = 16000


def test_blocks_equal_whole_file_mixdown(tmp_path, monkeypatch):
    monkeypatch.setattr(load_mod, "BLOCK_FRAMES", 1000)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(10_500, 3)).astype(np.float32)
    p = tmp_path / "three.wav"
    sf.write(p, x, SR, subtype="FLOAT")
    whole = load_audio(p, SR, ClipPolicy(long_clip="windows"))
    ref = x.mean(axis=1, dtype=np.float32)
    np.testing.assert_array_equal(whole.waveform, ref)
    assert whole.source_channels == 3 and whole.waveform.dtype == np.float32
    # a centre crop that starts and ends inside blocks
    crop = load_audio(p, SR, ClipPolicy(max_seconds=0.3, crop_anchor="center"))
    first = (10_500 - 4800) // 2
    np.testing.assert_array_equal(crop.waveform, ref[first : first + 4800])


def test_non_finite_in_a_later_block_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(load_mod, "BLOCK_FRAMES", 1000)
    x = np.zeros((9000, 2), np.float32)
    x[7123, 1] = np.nan
    x[8000, :] = np.inf
    p = tmp_path / "bad.wav"
    sf.write(p, x, SR, subtype="FLOAT")
    with pytest.raises(AudioNonFiniteError) as e:
        load_audio(p, SR, ClipPolicy(long_clip="windows"))
    assert "3 NaN/Inf sample value(s), first at frame 7123" in str(e.value)


def test_peak_memory_is_the_mono_result_not_the_multichannel_file(tmp_path, monkeypatch):
    monkeypatch.setattr(load_mod, "BLOCK_FRAMES", 4096)
    n, channels = 20 * SR, 8
    rng = np.random.default_rng(1)
    p = tmp_path / "eight.wav"
    sf.write(p, rng.uniform(-0.5, 0.5, size=(n, channels)).astype(np.float32), SR,
             subtype="PCM_16")
    tracemalloc.start()
    try:
        audio = load_audio(p, SR, ClipPolicy(long_clip="windows"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    mono_bytes = 4 * n
    assert audio.waveform.shape == (n,)
    # reading it whole held [n, 8] float32 (8x the mono array) plus a mask and the mono copy
    assert peak < 1.5 * mono_bytes, (peak, mono_bytes)
