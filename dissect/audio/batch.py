"""Batching helpers: zero-padding with a valid-length mask, and fixed windows for long clips."""

from __future__ import annotations

import math

import numpy as np


def pad_batch(waveforms: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-pad mono waveforms with zeros to a common length.

    Args:
        waveforms: ``B`` arrays of shape ``[n_i]`` (float32).

    Returns:
        ``(batch, lengths, mask)``: ``batch`` float32 ``[B, T]`` with ``T = max n_i``;
        ``lengths`` int64 ``[B]`` (valid samples per row); ``mask`` bool ``[B, T]``, True on
        valid samples and False on padding.

    Raises:
        ValueError: on an empty list or a non-1-D waveform.
    """
    if not waveforms:
        raise ValueError("pad_batch needs at least one waveform")
    for i, w in enumerate(waveforms):
        if np.ndim(w) != 1:
            raise ValueError(f"waveform {i} must be 1-D, got shape {np.shape(w)}")
    lengths = np.array([len(w) for w in waveforms], dtype=np.int64)
    T = int(lengths.max())
    batch = np.zeros((len(waveforms), T), dtype=np.float32)
    for i, w in enumerate(waveforms):
        batch[i, : len(w)] = w
    mask = np.arange(T)[None, :] < lengths[:, None]
    return batch, lengths, mask


def split_windows(
    waveform: np.ndarray, sample_rate: int, window_seconds: float, hop_seconds: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a long waveform into fixed windows; the last one is zero-padded and masked.

    A clip no longer than one window gives exactly one (padded) window.

    Args:
        waveform: mono samples ``[n]``.
        sample_rate: Hz.
        window_seconds: window length in seconds.
        hop_seconds: hop between window starts in seconds.

    Returns:
        ``(windows, mask, starts_seconds)``: float32 ``[W, L]``, bool ``[W, L]`` (valid samples),
        and float64 ``[W]`` window start times in seconds.
    """
    L = int(round(window_seconds * sample_rate))
    starts = window_starts(len(waveform), sample_rate, window_seconds, hop_seconds)
    windows = np.zeros((len(starts), L), dtype=np.float32)
    mask = np.zeros((len(starts), L), dtype=bool)
    for i, start in enumerate(starts):
        seg = waveform[start : start + L]
        windows[i, : len(seg)] = seg
        mask[i, : len(seg)] = True
    return windows, mask, starts.astype(np.float64) / sample_rate


def window_starts(n_samples: int, sample_rate: int, window_seconds: float,
                  hop_seconds: float) -> np.ndarray:
    """Start samples (int64 ``[W]``) of the fixed windows of an ``n_samples`` clip: ``i * hop``
    for ``i < 1 + ceil((n - L) / hop)`` (one window when ``n <= L``), the last one reaching the
    clip's end. :func:`split_windows` copies them into a padded array; the recorder takes each
    as a view ``waveform[start : start + L]``, so a long clip's windows never exist all at once.

    Raises:
        ValueError: a window or hop shorter than one sample.
    """
    L = int(round(window_seconds * sample_rate))
    H = int(round(hop_seconds * sample_rate))
    if L <= 0 or H <= 0:
        raise ValueError("window and hop must be at least one sample")
    count = 1 if n_samples <= L else 1 + math.ceil((n_samples - L) / H)
    return np.arange(count, dtype=np.int64) * H
