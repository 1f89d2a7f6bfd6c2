"""dissect.audio: decoding, mixdown, resampling, the long-clip policy and every bad-audio case."""

import math

import numpy as np
import pytest
import soundfile as sf

from dissect.audio import (
    AudioEmptyError,
    AudioError,
    AudioFormatError,
    AudioMissingError,
    AudioNonFiniteError,
    AudioUnreadableError,
    ClipPolicy,
    load_audio,
    pad_batch,
    split_windows,
    supported_extensions,
)


def tone(freq, seconds, sr, amp=0.5):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[int(np.argmax(spec))]


# ----------------------------------------------------------------------------- bad audio


def test_missing_file_names_the_file(tmp_path):
    p = tmp_path / "nope.wav"
    with pytest.raises(AudioMissingError) as e:
        load_audio(p)
    assert str(p) in str(e.value) and "not found" in str(e.value)
    assert isinstance(e.value, AudioError) and e.value.kind == "missing"


def test_corrupt_bytes_are_unreadable(tmp_path):
    p = tmp_path / "corrupt.wav"
    p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(256)) * 4)
    with pytest.raises(AudioUnreadableError) as e:
        load_audio(p)
    assert str(p) in str(e.value) and "cannot decode" in str(e.value)


def test_truncated_flac_is_unreadable(tmp_path):
    good = tmp_path / "good.flac"
    sf.write(good, tone(440, 1.0, 16000), 16000)
    bad = tmp_path / "truncated.flac"
    bad.write_bytes(good.read_bytes()[:30])
    with pytest.raises(AudioError) as e:
        load_audio(bad)
    assert isinstance(e.value, (AudioUnreadableError, AudioEmptyError))
    assert str(bad) in str(e.value)


def test_zero_byte_file_is_empty(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioEmptyError) as e:
        load_audio(p)
    assert str(p) in str(e.value) and "0 bytes" in str(e.value)


def test_header_only_wav_has_zero_samples(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioEmptyError) as e:
        load_audio(p)
    assert "zero samples" in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = tone(440, 0.5, 16000)
    x[1234] = bad
    p = tmp_path / "nan.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioNonFiniteError) as e:
        load_audio(p)
    assert str(p) in str(e.value) and "frame 1234" in str(e.value)


def test_unsupported_extension(tmp_path):
    p = tmp_path / "clip.m4a"
    p.write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    with pytest.raises(AudioFormatError) as e:
        load_audio(p)
    assert str(p) in str(e.value) and "'.m4a'" in str(e.value)
    assert "m4a" not in supported_extensions() and "wav" in supported_extensions()


def test_directory_is_not_audio(tmp_path):
    d = tmp_path / "dir.wav"
    d.mkdir()
    with pytest.raises(AudioMissingError):
        load_audio(d)


# ----------------------------------------------------------------------------- good audio


def test_multichannel_mixdown_is_channel_mean(tmp_path):
    sr = 16000
    left, right = tone(300, 1.0, sr, 0.6), tone(700, 1.0, sr, 0.2)
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([left, right], axis=1), sr, subtype="FLOAT")
    a = load_audio(p, sr)
    assert a.source_channels == 2 and a.waveform.shape == (sr,)
    np.testing.assert_allclose(a.waveform, (left + right) / 2, atol=1e-7)


def test_four_channels(tmp_path):
    sr = 8000
    chans = np.stack([tone(200 * (i + 1), 0.5, sr, 0.1 * (i + 1)) for i in range(4)], axis=1)
    p = tmp_path / "quad.flac"
    sf.write(p, chans, sr, subtype="PCM_24")
    a = load_audio(p, sr)
    np.testing.assert_allclose(a.waveform, chans.mean(axis=1), atol=1e-5)


@pytest.mark.parametrize("src_sr", [44100, 22050, 11025, 7919, 48000])
def test_resampling_keeps_1khz_tone(tmp_path, src_sr):
    p = tmp_path / f"tone_{src_sr}.wav"
    sf.write(p, tone(1000, 1.0, src_sr), src_sr, subtype="PCM_16")
    a = load_audio(p, 16000)
    assert a.sample_rate == 16000 and a.source_sample_rate == src_sr
    assert abs(len(a.waveform) - 16000) <= 1
    assert abs(peak_hz(a.waveform, 16000) - 1000.0) <= 1.0
    assert a.waveform.dtype == np.float32


def test_ten_minute_file_is_cropped_without_reading_it_all(tmp_path):
    sr = 8000
    n = 600 * sr
    # a ramp encodes the sample index, so the crop position can be checked exactly
    ramp = (np.arange(n) % 30000).astype(np.int16)
    p = tmp_path / "long.wav"
    sf.write(p, ramp, sr, subtype="PCM_16")
    start = load_audio(p, sr, ClipPolicy(max_seconds=10.0, crop_anchor="start"))
    assert start.cropped and start.source_seconds == pytest.approx(600.0)
    assert start.waveform.shape == (10 * sr,) and start.offset_seconds == 0.0
    np.testing.assert_allclose(start.waveform * 32768, ramp[: 10 * sr], atol=1e-3)
    centre = load_audio(p, sr, ClipPolicy(max_seconds=10.0, crop_anchor="center"))
    first = (n - 10 * sr) // 2
    assert centre.offset_seconds == pytest.approx(first / sr)
    np.testing.assert_allclose(centre.waveform * 32768, ramp[first : first + 10 * sr], atol=1e-3)
    # the windows policy keeps everything; windows are cut afterwards
    whole = load_audio(p, sr, ClipPolicy(max_seconds=10.0, long_clip="windows"))
    assert not whole.cropped and whole.waveform.shape == (n,)
    w, m, starts = split_windows(whole.waveform, sr, 30.0, 30.0)
    assert w.shape == (20, 30 * sr) and m.all() and starts[-1] == 570.0


def test_short_clip_untouched_by_policy(tmp_path):
    p = tmp_path / "short.ogg"
    if "ogg" not in supported_extensions():
        pytest.skip("libsndfile without OGG")
    sf.write(p, tone(440, 0.75, 16000), 16000, format="OGG", subtype="VORBIS")
    a = load_audio(p, 16000, ClipPolicy(max_seconds=10.0))
    assert not a.cropped and a.waveform.shape == (12000,)
    assert abs(peak_hz(a.waveform, 16000) - 440) < 3


def test_mp3_when_supported(tmp_path):
    if "mp3" not in supported_extensions():
        pytest.skip("libsndfile without MP3")
    p = tmp_path / "tone.mp3"
    sf.write(p, tone(1000, 1.0, 44100), 44100, format="MP3")
    a = load_audio(p, 16000)
    assert abs(peak_hz(a.waveform, 16000) - 1000) <= 2


def test_digital_silence_is_flagged_not_fatal(tmp_path):
    p = tmp_path / "silence.wav"
    sf.write(p, np.zeros(8000, dtype=np.float32), 16000)
    a = load_audio(p, 16000)
    assert a.is_silent and a.peak_dbfs == -math.inf and a.waveform.shape == (8000,)
    q = tmp_path / "quiet.wav"
    sf.write(q, tone(440, 0.5, 16000, amp=0.01), 16000, subtype="FLOAT")  # -40 dBFS peak
    b = load_audio(q, 16000)
    assert not b.is_silent and b.peak_dbfs == pytest.approx(-40.0, abs=0.1)
    assert b.rms_dbfs == pytest.approx(-40.0 - 3.0103, abs=0.1)


def test_policy_validation():
    with pytest.raises(ValueError, match="long_clip"):
        ClipPolicy(long_clip="truncate")
    with pytest.raises(ValueError, match="crop_anchor"):
        ClipPolicy(crop_anchor="end")


# ----------------------------------------------------------------------------- batching


def test_pad_batch_mask_and_values():
    a, b = np.ones(3, np.float32), np.full(5, 2.0, np.float32)
    batch, lengths, mask = pad_batch([a, b])
    assert batch.shape == (2, 5) and lengths.tolist() == [3, 5]
    assert mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert batch[0].tolist() == [1, 1, 1, 0, 0] and batch[1].tolist() == [2] * 5
    with pytest.raises(ValueError):
        pad_batch([])


def test_split_windows_pads_last_window():
    x = np.arange(1, 28, dtype=np.float32)  # 27 samples at 10 Hz
    w, m, starts = split_windows(x, 10, 1.0, 0.5)  # L=10, H=5 -> starts 0,5,10,15,20
    assert w.shape == (5, 10) and starts.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert w[4].tolist() == [21, 22, 23, 24, 25, 26, 27, 0, 0, 0]
    assert m[4].tolist() == [True] * 7 + [False] * 3 and m[:4].all()
    w1, m1, _ = split_windows(np.ones(3, np.float32), 10, 1.0, 1.0)
    assert w1.shape == (1, 10) and m1.sum() == 3


def test_symlink_loop_and_broken_symlink_are_named(tmp_path):
    import os

    from dissect.audio import AudioMissingError, load_audio

    os.symlink(tmp_path / "b.wav", tmp_path / "a.wav")
    os.symlink(tmp_path / "a.wav", tmp_path / "b.wav")
    os.symlink(tmp_path / "gone.wav", tmp_path / "c.wav")
    with pytest.raises(AudioMissingError, match=r"a\.wav: symlink loop"):
        load_audio(tmp_path / "a.wav")
    with pytest.raises(AudioMissingError, match=r"c\.wav: broken symlink \(to .*gone\.wav\)"):
        load_audio(tmp_path / "c.wav")
    with pytest.raises(AudioMissingError, match=r"zz\.wav: file not found"):
        load_audio(tmp_path / "zz.wav")


def test_truncated_wav_is_flagged_not_loaded_short(tmp_path):
    from dissect.audio import AudioUnreadableError, load_audio

    full = tmp_path / "full.wav"
    sf.write(str(full), np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:44 + 96])  # header + 48 samples of the declared 16000
    with pytest.raises(AudioUnreadableError, match=r"cut\.wav: truncated: the WAV header "
                       r"declares 32000 bytes of audio, the file holds 96"):
        load_audio(cut)
    assert load_audio(full).waveform.shape == (16000,)  # a whole file still loads
