"""Rendering one planned ``synth`` clip (:func:`render_clip`): General MIDI notes through
``tinysoundfont``, sines, harmonic complexes, coloured noise, click trains, chirps, near-silence
and ``espeak-ng`` speech, each set to its planned level (:func:`rms_dbfs` measures it).

A clip depends only on its :class:`~dissect.datasets.synth.plan.SynthSpec` and the sample rate:
each draws from its own seeded generator, and each note uses a fresh ``tinysoundfont.Synth``.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np

from dissect.datasets.espeak import speak
from dissect.datasets.synth.plan import FADE_S, PEAK_CEILING_DBFS, SynthSpec

SOUNDFONT_NAME = "TimGM6mb.sf2"


def soundfont_path() -> Path:
    """The General MIDI soundfont shipped inside ``pretty_midi``."""
    import pretty_midi

    return Path(os.path.dirname(pretty_midi.__file__)) / SOUNDFONT_NAME


def speech_available() -> bool:
    """Whether ``espeak-ng`` is on ``PATH``."""
    return shutil.which("espeak-ng") is not None


# --------------------------------------------------------------------------------------------
# rendering


def _n_samples(spec: SynthSpec, sr: int) -> int:
    return max(1, int(round(spec.duration_s * sr)))


def _fade(x: np.ndarray, sr: int, seconds: float = FADE_S) -> np.ndarray:
    n = min(int(round(seconds * sr)), len(x) // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def _stereo_to_mono(buf) -> np.ndarray:
    return np.frombuffer(buf, dtype=np.float32).reshape(-1, 2).astype(np.float64).mean(axis=1)


def _render_note(spec: SynthSpec, sr: int) -> np.ndarray:
    import tinysoundfont

    n = _n_samples(spec, sr)
    release = min(float(spec.params["release_s"]), 0.25 * spec.duration_s)
    n_on = max(1, min(n, int(round((spec.duration_s - release) * sr))))
    key, vel = int(spec.concepts["midi_note"]), int(spec.concepts["velocity"])
    synth = tinysoundfont.Synth(samplerate=sr)  # fresh: no state shared between clips
    sfid = synth.sfload(str(soundfont_path()))
    synth.program_select(0, sfid, 0, int(spec.concepts["program"]))
    synth.noteon(0, key, vel)
    parts = [_stereo_to_mono(synth.generate(n_on))]
    synth.noteoff(0, key)
    if n > n_on:
        parts.append(_stereo_to_mono(synth.generate(n - n_on)))
    return _fade(np.concatenate(parts), sr)


def _render_tone(spec: SynthSpec, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(_n_samples(spec, sr)) / sr
    phase = rng.uniform(0, 2 * np.pi)
    return _fade(np.sin(2 * np.pi * spec.concepts["f0_hz"] * t + phase), sr)


def _render_harmonic(spec: SynthSpec, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(_n_samples(spec, sr)) / sr
    f0 = spec.concepts["f0_hz"]
    x = np.zeros_like(t)
    for k in range(1, int(spec.params["n_harmonics"]) + 1):
        x += np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k
    return _fade(x, sr)


def _coloured_noise(n: int, sr: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if colour == "white":
        return white
    spec = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    f = np.maximum(freqs, 20.0)  # flat below 20 Hz: no huge DC drift
    power_exp = {"pink": 1.0, "brown": 2.0}[colour]  # power ~ 1/f^exp
    spec *= f ** (-power_exp / 2.0)
    spec[0] = 0.0
    return np.fft.irfft(spec, n)


def _render_noise(spec: SynthSpec, sr: int, rng: np.random.Generator) -> np.ndarray:
    x = _coloured_noise(_n_samples(spec, sr), sr, spec.concepts["noise_colour"], rng)
    return _fade(x, sr)


def _render_clicks(spec: SynthSpec, sr: int, rng: np.random.Generator) -> np.ndarray:
    n = _n_samples(spec, sr)
    m = max(1, int(round(spec.params["click_ms"] / 1000.0 * sr)))
    burst = rng.standard_normal(m) * np.exp(-np.arange(m) / (m / 5.0))
    burst[0] = abs(burst[0]) + 1.0  # a clear onset sample
    x = np.zeros(n)
    rate, t = spec.concepts["click_rate_hz"], spec.params["first_click_s"]
    while True:
        i = int(round(t * sr))
        if i + m > n:
            break
        x[i : i + m] += burst
        t += 1.0 / rate
    return x


def _render_chirp(spec: SynthSpec, sr: int, rng: np.random.Generator) -> np.ndarray:
    n = _n_samples(spec, sr)
    t = np.arange(n) / sr
    f0, f1 = spec.concepts["chirp_start_hz"], spec.concepts["chirp_end_hz"]
    dur = n / sr
    k = math.log(f1 / f0)
    phase = 2 * np.pi * f0 * dur / k * (np.exp(t / dur * k) - 1.0)
    return _fade(np.sin(phase + rng.uniform(0, 2 * np.pi)), sr)


def _render_silence(spec: SynthSpec, sr: int, rng: np.random.Generator) -> np.ndarray:
    return _fade(rng.standard_normal(_n_samples(spec, sr)), sr)


def _render_speech(spec: SynthSpec, sr: int) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not on PATH; cannot render speech clip " + spec.id)
    p = spec.params
    voice = speak(exe, spec.concepts["text"], p["voice"], p["words_per_minute"], p["pitch"], sr,
                  f"clip {spec.id}")  # fmt: skip
    nz = np.flatnonzero(np.abs(voice) > 1e-4)  # trim espeak's leading/trailing silence
    voice = voice[nz[0] : nz[-1] + 1] if nz.size else voice[:0]
    n = _n_samples(spec, sr)
    onset = min(int(round(p["onset_s"] * sr)), n // 4)
    room = n - onset - int(round(0.05 * sr))
    voice = _fade(voice[: max(room, 0)].copy(), sr)
    x = np.zeros(n)
    x[onset : onset + len(voice)] = voice
    return x


def _set_level(x: np.ndarray, spec: SynthSpec) -> np.ndarray:
    """Scale to the clip's target RMS (or peak), never above the -1 dBFS peak ceiling."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0.0:
        return x.astype(np.float32)
    if "target_peak_dbfs" in spec.params:
        gain = 10 ** (spec.params["target_peak_dbfs"] / 20.0) / peak
    else:
        rms = float(np.sqrt(np.mean(np.square(x))))
        gain = 10 ** (spec.params["target_rms_dbfs"] / 20.0) / rms
    gain = min(gain, 10 ** (PEAK_CEILING_DBFS / 20.0) / peak)
    return (x * gain).astype(np.float32)


def render_clip(spec: SynthSpec, sample_rate: int) -> np.ndarray:
    """Render one planned clip: mono float32, ``round(duration_s * sample_rate)`` samples.

    Depends only on ``spec`` and ``sample_rate`` (never on which clips were rendered before).
    """
    sr = int(sample_rate)
    rng = np.random.default_rng(spec.seed)
    kind = spec.kind
    if kind == "note":
        x = _render_note(spec, sr)
    elif kind == "speech":
        x = _render_speech(spec, sr)
    else:
        fn = {
            "tone": _render_tone,
            "harmonic": _render_harmonic,
            "noise": _render_noise,
            "clicks": _render_clicks,
            "chirp": _render_chirp,
            "silence": _render_silence,
        }[kind]
        x = fn(spec, sr, rng)
    return _set_level(x, spec)


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dB re full scale (float64 accumulation); ``-inf`` for all-zero input."""
    rms = float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64))))) if x.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf
