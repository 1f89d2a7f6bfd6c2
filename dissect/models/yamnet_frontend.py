"""YAMNet's front end in numpy / scipy: log-mel patches ``[N, 1, 96, 64]`` of a mono 16 kHz
waveform (:func:`log_mel_patches`; the settings are described in
:mod:`dissect.description.captioners.tagger`). Shared by the ``yamnet`` adapter and the tagger.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
WINDOW = 400  # samples (25 ms)
N_FFT = 512
HOP = 160  # samples (10 ms)
N_MELS = 64
F_MIN = 125.0
F_MAX = 7500.0
LOG_OFFSET = 0.001
PATCH_FRAMES = 96  # 0.96 s
PATCH_HOP_FRAMES = 48  # 0.48 s
#: Shortest waveform that yields one patch with centred frames: ``(96 - 1) * 160`` samples.
MIN_SAMPLES = (PATCH_FRAMES - 1) * HOP


@lru_cache(maxsize=1)
def _stft_window() -> np.ndarray:
    """Periodic Hann window of :data:`WINDOW` samples, centred in :data:`N_FFT` zeros."""
    w = np.zeros(N_FFT, dtype=np.float32)
    left = (N_FFT - WINDOW) // 2
    w[left:left + WINDOW] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WINDOW) / WINDOW)
    return w


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """HTK-scale triangular filters ``[N_FFT // 2 + 1, N_MELS]`` (float32, unnormalised): band
    ``m`` rises linearly in Hz from mel point ``m`` to ``m + 1`` and falls to ``m + 2``, the
    ``N_MELS + 2`` points being equally spaced on ``mel = 2595 log10(1 + f / 700)`` between
    :data:`F_MIN` and :data:`F_MAX` (torchaudio's ``melscale_fbanks(norm=None, "htk")``)."""
    freqs = np.linspace(0.0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    points = np.linspace(to_mel(F_MIN), to_mel(F_MAX), N_MELS + 2)
    hz = 700.0 * (10.0 ** (points / 2595.0) - 1.0)
    width = np.diff(hz)
    rel = hz[None, :] - freqs[:, None]  # [freqs, points]
    rising = -rel[:, :-2] / width[:-1]
    falling = rel[:, 2:] / width[1:]
    return np.ascontiguousarray(np.maximum(0.0, np.minimum(rising, falling)), dtype=np.float32)


def log_mel_patches(waveform: np.ndarray) -> np.ndarray:
    """YAMNet's input for a mono 16 kHz waveform: log-mel patches ``[N, 1, 96, 64]`` float32
    (see the module docstring; numpy and scipy only, equal to torchaudio's ``MelSpectrogram``
    with the same settings to float32 rounding).

    Raises:
        ValueError: empty, not 1-D, or non-finite samples.
    """
    import scipy.fft

    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"yamnet: expected a non-empty mono waveform, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("yamnet: waveform has NaN or Inf samples")
    if x.size < MIN_SAMPLES:
        x = np.pad(x, (0, MIN_SAMPLES - x.size))
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")  # centred frames
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    magnitude = np.abs(scipy.fft.rfft(frames * _stft_window(), axis=1))  # [frames, 257]
    # C-contiguous operands keep OpenBLAS on its fast path for this small product.
    mel = np.ascontiguousarray(magnitude, dtype=np.float32) @ mel_filters()
    log_mel = np.log(mel + np.float32(LOG_OFFSET))  # [frames, n_mels]
    windows = np.lib.stride_tricks.sliding_window_view(log_mel, PATCH_FRAMES, axis=0)
    patches = windows[::PATCH_HOP_FRAMES].transpose(0, 2, 1)  # [N, 96, 64]
    return np.ascontiguousarray(patches[:, None], dtype=np.float32)
