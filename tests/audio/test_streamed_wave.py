"""A long windowed file is read window by window (``StreamedWave``): the same samples as the
whole-file decode (exactly at the file's rate, to float rounding when resampled), checked
once up front, and recorded to the same pooled values."""

import numpy as np
import pytest
import soundfile as sf
import torch

from dissect.audio import (
    AudioNonFiniteError,
    ClipPolicy,
    StreamedWave,
    load_audio,
    record_waveform,
)
from dissect.audio import load as load_mod


def write(tmp_path, name, x, sr, subtype="FLOAT"):
    p = tmp_path / name
    sf.write(p, x, sr, subtype=subtype)
    return p


def slices(n, rng, count=25):
    out = [(0, n), (0, 1), (n - 1, n), (0, 0)]
    for _ in range(count):
        a = int(rng.integers(0, n))
        out.append((a, int(rng.integers(a, n + 1))))
    return out


def test_same_rate_slices_are_the_files_frames_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(load_mod, "BLOCK_FRAMES", 777)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(20_000, 2)).astype(np.float32)
    p = write(tmp_path, "st.wav", x, 16000)
    whole = load_audio(p, 16000, ClipPolicy(long_clip="windows")).waveform
    w = StreamedWave(p, 16000, 16000, 20_000)
    assert len(w) == len(whole) == 20_000 and w.shape == (20_000,)
    for a, b in slices(len(w), rng):
        np.testing.assert_array_equal(w[a:b], whole[a:b])


@pytest.mark.parametrize("src,dst", [(44100, 16000), (22050, 16000), (8000, 16000),
                                     (48000, 44100)])
def test_resampled_slices_equal_the_whole_file_resample(tmp_path, src, dst):
    rng = np.random.default_rng(1)
    n = int(1.7 * src) + 13
    t = np.arange(n) / src
    x = (0.4 * np.sin(2 * np.pi * 1234.5 * t) + 0.05 * rng.normal(size=n)).astype(np.float32)
    p = write(tmp_path, "rs.wav", x, src)
    whole = load_audio(p, dst, ClipPolicy(long_clip="windows")).waveform
    w = StreamedWave(p, dst, src, n)
    assert len(w) == len(whole)
    for a, b in slices(len(w), rng):
        got = w[a:b]
        assert got.dtype == np.float32 and got.shape == (b - a,)
        np.testing.assert_allclose(got, whole[a:b], atol=2e-6, rtol=0)
    with pytest.raises(TypeError):
        w[0:10:2]


def test_record_waveform_streams_only_long_windowed_files(tmp_path, monkeypatch):
    monkeypatch.setattr(load_mod, "STREAM_SECONDS", 1.0)
    x = np.zeros(24_000, np.float32)
    x[::100] = 0.5
    long = write(tmp_path, "long.wav", x, 16000)
    short = write(tmp_path, "short.wav", x[:8000], 16000)
    windows = ClipPolicy(long_clip="windows")
    assert isinstance(record_waveform(long, 16000, windows), StreamedWave)
    assert isinstance(record_waveform(short, 16000, windows), np.ndarray)  # under 1 s
    cropped = record_waveform(long, 16000, ClipPolicy(max_seconds=1.0))  # crop: decoded
    assert isinstance(cropped, np.ndarray) and len(cropped) == 16000
    # the check pass finds a NaN anywhere before the recorder reads a window
    monkeypatch.setattr(load_mod, "BLOCK_FRAMES", 1000)
    y = x.copy()
    y[23_456] = np.nan
    bad = write(tmp_path, "bad.wav", y, 16000)
    with pytest.raises(AudioNonFiniteError, match="first at frame 23456"):
        record_waveform(bad, 16000, windows)


def test_recording_a_streamed_clip_equals_recording_the_decoded_one(tmp_path, monkeypatch,
                                                                   frame_toy):
    from dissect.models.generic import GenericAdapter
    from dissect.recording.recorder import record

    monkeypatch.setattr(load_mod, "STREAM_SECONDS", 1.0)
    rng = np.random.default_rng(2)
    x = rng.normal(size=7_350).astype(np.float32) * 0.2
    p = write(tmp_path, "clip.wav", x, 1000)
    policy = ClipPolicy(long_clip="windows", window_seconds=1.0, window_hop_seconds=0.5)
    streamed = record_waveform(p, 1000, policy)
    decoded = load_audio(p, 1000, policy).waveform
    assert isinstance(streamed, StreamedWave)
    adapter = GenericAdapter(module=frame_toy(), layers=["proj"], sample_rate=1000)
    model = adapter.load()
    sites = adapter.resolve_layers(model, None)
    out = []
    for wave in (streamed, decoded, decoded[:100]):
        res = record(adapter, model, enumerate([wave, decoded[:100]]), sites, reduction="mean",
                     k=2, batch_size=3, windows=(1.0, 0.5), progress=False)
        st = res.layers["proj"]
        out.append((st.top.values.clone(), st.top.peak_ms.clone(), res.audio_seconds))
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
    assert out[0][2] == out[1][2] == pytest.approx(7.45)
    assert not torch.equal(out[0][0], out[2][0])  # the comparison can fail
