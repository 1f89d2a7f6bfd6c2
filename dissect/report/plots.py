"""PNG plots for the report (matplotlib, Agg backend: no display needed).

* :func:`interpretable_plot`: interpretable fraction per layer.
* :func:`layer_terms_plot`: the top open-set adjectives and closed-set concepts of one layer.
* :func:`distribution_plot`: per-layer distribution over units of the mean and the p99 activation.
* :func:`spectrogram_png` + :func:`activation_points`: a clip's log-mel spectrogram (one PNG
  per clip, shared by every card that shows it) under an SVG overlay of one neuron's activation
  over time with its peak marked, which ``report.js`` draws from the points. Drawing the overlay
  as SVG instead of one matplotlib PNG per (neuron, clip) is about 50x faster to build, keeps
  the line crisp at any zoom, and stores each spectrogram once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _short(text: str, limit: int = 40) -> str:
    """A plot label cut to ``limit`` characters (long layer names or terms squash the axes)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _save(fig, path: Path, dpi: int = 100) -> Path:
    from dissect.artifacts import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    _plt().close(fig)
    return path


def interpretable_plot(fractions: Mapping[str, float], path: Path, title: str) -> Path:
    """Bar chart of the interpretable fraction (0..1) per layer, in layer order."""
    plt = _plt()
    names = list(fractions)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 2.8), layout="constrained")
    ax.bar(range(len(names)), [fractions[n] for n in names], color="#3a7bd5")
    many = len(names) > 6
    ax.set_xticks(range(len(names)), [_short(n) for n in names], rotation=45 if many else 0,
                  ha="right" if many else "center", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of units")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def layer_terms_plot(layer: str, adjectives: Sequence[tuple[str, int]],
                     concepts: Sequence[tuple[str, int]], path: Path) -> Path:
    """Two horizontal bar charts: adjective counts and top-1 concept counts over the layer."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.6), layout="constrained")
    for ax, items, title in ((axes[0], adjectives, "top adjectives"),
                             (axes[1], concepts, "top-1 closed-set concepts")):
        items = list(items)[::-1]
        if items:
            ax.barh(range(len(items)), [c for _, c in items], color="#5b8c5a")
            ax.set_yticks(range(len(items)), [_short(t) for t, _ in items], fontsize=8)
        else:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        ax.set_title(f"{_short(layer, 60)}: {title}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("neurons", fontsize=8)
    return _save(fig, path)


def distribution_plot(per_layer: Mapping[str, Mapping[str, np.ndarray]], path: Path) -> Path:
    """Box plots per layer over units: the unit mean and the unit's upper quantile.

    Args:
        per_layer: layer -> ``{"mean": [U], "upper": [U]}`` (``upper`` is e.g. p99).
    """
    plt = _plt()
    names = list(per_layer)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(names) + 2), 3.0), layout="constrained")
    pos = np.arange(len(names), dtype=float)
    for key, shift, colour in (("mean", -0.18, "#3a7bd5"), ("upper", 0.18, "#d5533a")):
        data = [np.asarray(per_layer[n][key], dtype=float) for n in names]
        data = [d[np.isfinite(d)] if d.size else np.zeros(1) for d in data]
        bp = ax.boxplot(data, positions=pos + shift, widths=0.3, patch_artist=True,
                        showfliers=False)
        for box in bp["boxes"]:
            box.set_facecolor(colour)
            box.set_alpha(0.6)
    ax.set_xticks(pos, [_short(n) for n in names], rotation=45 if len(names) > 6 else 0, fontsize=8,
                  ha="right" if len(names) > 6 else "center")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_ylabel("activation")
    ax.set_title("per-unit mean (blue) and p99 (red), over the units of each layer", fontsize=9)
    return _save(fig, path)


def spectrogram_png(wave: np.ndarray, sample_rate: int, path: Path) -> Path:
    """A clip's log-mel spectrogram (80 dB range, magma) as a bare PNG, one pixel per bin/frame.

    The image spans the clip from 0 ms to its decoded duration; the page scales it and draws the
    activation on top (from :func:`activation_points`).
    """
    import torch
    from matplotlib import image
    from torchaudio.functional import melscale_fbanks

    _plt()
    n_fft, hop, n_mels = 1024, max(64, sample_rate // 100), 64
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    if x.numel() < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=True,
                      return_complex=True).abs().pow(2)  # [F, T]
    fb = melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate,
                         norm="slaney", mel_scale="slaney")  # [F, M]
    mel = (fb.T @ spec).numpy()
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    from dissect.artifacts import atomic_path

    with atomic_path(path) as tmp:
        image.imsave(tmp, db, cmap="magma", origin="lower", format="png")
    return path


def activation_points(duration_ms: float, times_ms: np.ndarray | None = None,
                      values: np.ndarray | None = None, peak_ms: float | None = None
                      ) -> tuple[float | None, list[int] | None]:
    """One neuron's activation over a clip, in the overlay's coordinates (viewBox 1000x100,
    stretched over the spectrogram; ``report.js`` draws it): the activation min-max scaled to
    y 95..5, x from the time over the clip's duration.

    Returns:
        ``(peak_x, points)``: the recorded peak time as x in 0..1000 (1 decimal; None without
        one), and the polyline as flat ``[x0, y0, x1, y1, ...]`` in tenths of viewBox units
        (ints; None without a trace; a single frame gives a flat line across the clip).
    """
    dur = max(float(duration_ms), 1e-6)
    points = None
    if times_ms is not None and values is not None and len(values):
        v = np.asarray(values, dtype=np.float64)
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        scale = (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)
        xs = np.clip(np.asarray(times_ms, dtype=np.float64) / dur * 1000.0, 0, 1000)
        ys = 95.0 - 90.0 * np.nan_to_num(scale, nan=0.0)
        if len(v) == 1:
            xs, ys = np.array([0.0, 1000.0]), np.repeat(ys, 2)
        points = np.rint(np.stack([xs, ys], axis=1).ravel() * 10).astype(int).tolist()
    peak_x = None
    if peak_ms is not None and np.isfinite(peak_ms):
        peak_x = round(min(max(float(peak_ms) / dur * 1000.0, 0.0), 1000.0), 1)
    return peak_x, points
