"""Structured configs: one dataclass per stage, registered with hydra's ConfigStore.

Recipes in ``recipes/`` extend :class:`RunConfig` (``defaults: [dissect_schema, _self_]``), so every
key is type-checked and every field below is overridable from the command line, e.g.
``dissect run probe.synth.n_clips=100 audio.max_seconds=5``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore


@dataclass
class AudioConfig:
    """How clips are decoded before they reach a model (see ``dissect.audio.load``)."""

    # Target sample rate in Hz. Model adapters override it with their own rate.
    sample_rate: int = 16000
    # Longest clip kept whole, in seconds; null keeps every clip whole.
    max_seconds: float | None = 10.0
    # Policy for clips longer than max_seconds: "crop" (one excerpt) or "windows" (fixed windows).
    long_clip: str = "crop"
    # Where a crop sits in a long clip: "start" or "center".
    crop_anchor: str = "start"
    # Window length in seconds for long_clip=windows.
    window_seconds: float = 10.0
    # Hop between window starts in seconds for long_clip=windows.
    window_hop_seconds: float = 10.0
    # Peak level (dBFS) under which a clip is flagged as digital silence (flagged, never fatal).
    silence_dbfs: float = -80.0


@dataclass
class SynthConfig:
    """The embedded `synth` probe set: rendered deterministically, offline, then cached."""

    # Seed of every random choice (instrument, note, velocity, durations, noise).
    seed: int = 0
    # Total number of clips (split over notes, tones, noise, clicks, chirps, silence, speech).
    n_clips: int = 300
    # Rendering sample rate in Hz.
    sample_rate: int = 16000
    # Shortest clip duration in seconds.
    min_seconds: float = 1.0
    # Longest clip duration in seconds.
    max_seconds: float = 2.0
    # Include espeak-ng speech clips when espeak-ng is installed (skipped with one log line if not).
    speech: bool = True
    # Cache directory for rendered clips; null means $DISSECT_CACHE/synth or ~/.cache/dissect/synth.
    cache_dir: str | None = None


@dataclass
class ProbeConfig:
    """Which probe set to use and how to read it (stage `probe`, artifact ``clips.jsonl``)."""

    # Layout: synth | folder | esc50 | urbansound8k | gtzan | spoken_digit | hear.
    layout: str = "synth"
    # Dataset root directory (unused for synth).
    root: str | None = None
    # folder layout: optional CSV or JSON metadata file (relative to root, or absolute).
    metadata: str | None = None
    # folder layout: metadata column holding the audio path relative to root.
    path_column: str = "filename"
    # folder layout: metadata columns used as labels (empty: every column but path_column).
    label_columns: list[str] = field(default_factory=list)
    # esc50 / urbansound8k: keep only these folds (null: all folds).
    folds: list[int] | None = None
    # hear: which split(s) to read (e.g. ["train", "valid", "test"] or ["fold00"]); null: all.
    splits: list[str] | None = None
    # Keep only the first N clips (in the deterministic order); null keeps all.
    limit: int | None = None
    # The run fails when more than this fraction of clips cannot be loaded (skips.jsonl).
    max_skip_fraction: float = 0.05
    # Settings of the synth layout.
    synth: SynthConfig = field(default_factory=SynthConfig)


@dataclass
class RunConfig:
    """A whole `dissect run`."""

    # Recipe name; part of the run directory name.
    recipe: str = "default"
    # Parent directory of run directories (relative paths are relative to the working directory).
    runs_dir: str = "runs"
    # Explicit run directory; null means <runs_dir>/<recipe>-<config hash>.
    run_dir: str | None = None
    # Stages to run, in data-flow order. Available now: probe.
    stages: list[str] = field(default_factory=lambda: ["probe"])
    # Re-run these stages even when their hashes match.
    force: list[str] = field(default_factory=list)
    # Audio decoding policy.
    audio: AudioConfig = field(default_factory=AudioConfig)
    # Probe set.
    probe: ProbeConfig = field(default_factory=ProbeConfig)


def register_configs() -> None:
    """Register the schema as ``dissect_schema`` (idempotent)."""
    ConfigStore.instance().store(name="dissect_schema", node=RunConfig)
