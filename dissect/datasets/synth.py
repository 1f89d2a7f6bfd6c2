"""The embedded ``synth`` probe set: rendered offline and deterministically, then cached.

Nothing is downloaded. :func:`load_synth` plans the clips from ``SynthConfig.seed``
(:func:`plan_synth`), renders the ones not yet cached (:func:`render_clip`) and returns a
:class:`~dissect.datasets.base.ProbeSet` whose clips carry their ground truth in ``concepts``.

What is in it (default ``n_clips=300``; proportions scale with ``n_clips``):

======== ===== ========================================================================
kind     share what
======== ===== ========================================================================
note     60 %  General MIDI instrument notes, rendered with ``tinysoundfont`` from the
               ``TimGM6mb.sf2`` soundfont shipped inside ``pretty_midi``: 27 programs in
               12 GM families, MIDI notes 36..96 (each instrument within its playable
               range, see :data:`INSTRUMENTS`; every note 36..96 appears once before any
               repeats), velocities 64 and 112.
tone     5 %   pure sines at MIDI-note frequencies 36..96.
harmonic 5 %   harmonic complexes, 1/k amplitudes, 6..10 harmonics below 0.45 * sr,
               random phases, at MIDI-note frequencies.
noise    8 %   white, pink (-3 dB/oct) and brown (-6 dB/oct) noise, shaped in the FFT
               domain, at -40, -30 and -20 dBFS RMS.
clicks   5 %   trains of 2 ms decaying noise bursts at 2..32 Hz.
chirp    5 %   logarithmic sweeps, rising and falling alternately.
silence  2 %   near-silence: white noise at -90..-70 dBFS RMS.
speech   10 %  ``espeak-ng`` words and digit strings, when espeak-ng is installed and
               ``SynthConfig.speech`` is true; otherwise these slots become notes and one
               log line says why.
======== ===== ========================================================================

Loudness is set on purpose: each clip gets a random target RMS (or peak, for clicks; a fixed
level set for noise), capped so the peak stays at or below -1 dBFS. The level actually rendered
is measured and stored as ``concepts["loudness_dbfs"]`` (RMS dBFS of the file's samples). For
notes the velocity therefore changes timbre, not the final level.

Files and cache. Each clip is one mono **32-bit float WAV** (IEEE float, written by this module
without libsndfile's ``PEAK`` chunk, whose timestamp would make files differ run to run; float
keeps the -90 dBFS near-silence clips exact). They live in ``<cache_root>/<key>/`` where the key
hashes the audio-relevant config fields, :data:`RENDER_VERSION`, whether speech was rendered and
the soundfont's SHA-256 (:func:`synth_cache_key`). Every file is written atomically (temporary
file in the same directory, then ``os.replace``). While rendering, each finished clip appends
its SHA-256 to ``index.partial.jsonl``; ``index.json`` (all clips, their SHA-256 and measured
loudness) is written last, atomically, and the journal removed. On every load each file is
hashed and compared with the index (or the journal of an interrupted render); a missing or
mismatching file is rendered again, so an interrupted render resumes and a file is never trusted
merely because it exists.

Rendering is order independent: every clip draws from its own random generator seeded in the
plan, and each note uses a fresh ``tinysoundfont.Synth``, so re-rendering one clip gives the same
bytes as the original render.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from dissect.config import SynthConfig
from dissect.datasets.base import Clip, ProbeSet

log = logging.getLogger(__name__)

# Bump whenever a change to this module changes any rendered sample or clip id.
RENDER_VERSION = 1

INDEX_NAME = "index.json"
JOURNAL_NAME = "index.partial.jsonl"
SOUNDFONT_NAME = "TimGM6mb.sf2"

KINDS = ("note", "tone", "harmonic", "noise", "clicks", "chirp", "silence", "speech")

# Share of ``n_clips`` per kind (largest-remainder rounding; without speech its share goes to
# notes). Every kind gets at least one clip when n_clips >= len(KINDS).
PROPORTIONS: dict[str, float] = {
    "note": 0.60,
    "tone": 0.05,
    "harmonic": 0.05,
    "noise": 0.08,
    "clicks": 0.05,
    "chirp": 0.05,
    "silence": 0.02,
    "speech": 0.10,
}

# (GM program, lowest MIDI note, highest MIDI note). Ranges are each instrument's plausible range
# intersected with 36..96, narrowed where this soundfont renders a note whose measured pitch
# (pYIN) is not the written one: e.g. several winds and strings come out an octave low at
# 89/94, and the oboe an octave high at 75..78 (so it is left out). Organs with 16' stops
# (Drawbar, Percussive, Rock, Church) sound an octave below the written note and are left out;
# the Reed Organ and Accordion are not. Together the ranges cover 36..96.
INSTRUMENTS: tuple[tuple[int, int, int], ...] = (
    (0, 36, 96),  # Acoustic Grand Piano
    (4, 36, 88),  # Electric Piano 1
    (11, 53, 88),  # Vibraphone
    (12, 45, 96),  # Marimba
    (13, 65, 96),  # Xylophone
    (20, 36, 96),  # Reed Organ
    (21, 41, 88),  # Accordion
    (24, 40, 84),  # Acoustic Guitar (nylon)
    (25, 40, 84),  # Acoustic Guitar (steel)
    (26, 40, 86),  # Electric Guitar (jazz)
    (32, 36, 60),  # Acoustic Bass
    (33, 36, 67),  # Electric Bass (finger)
    (40, 55, 93),  # Violin
    (41, 48, 84),  # Viola
    (42, 36, 76),  # Cello
    (48, 36, 88),  # String Ensemble 1
    (56, 54, 84),  # Trumpet
    (57, 40, 72),  # Trombone
    (58, 36, 58),  # Tuba
    (60, 41, 77),  # French Horn
    (70, 36, 72),  # Bassoon
    (71, 50, 88),  # Clarinet
    (73, 60, 96),  # Flute
    (74, 60, 96),  # Recorder
    (80, 36, 88),  # Lead 1 (square)
    (81, 36, 88),  # Lead 2 (sawtooth)
    (88, 36, 84),  # Pad 1 (new age)
)

NOTE_RANGE = (36, 96)
VELOCITIES = (64, 112)
NOISE_COLOURS = ("white", "pink", "brown")
NOISE_LEVELS_DBFS = (-40.0, -30.0, -20.0)
CLICK_RATES_HZ = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 25.0, 32.0)
SPEECH_TEXTS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "yes", "no", "hello", "stop", "go", "left", "right", "up", "down", "music",
    "one two three", "four five six", "seven eight nine", "three one four", "two zero",
    "nine nine", "eight six", "five one", "zero seven", "six four two",
)  # fmt: skip
SPEECH_VOICES = ("en", "en-us", "en+f3", "en+m3", "en-us+f2", "en+m5")

PEAK_CEILING_DBFS = -1.0
TONAL_RMS_DBFS = (-32.0, -14.0)  # note, tone, harmonic, chirp, speech
CLICK_PEAK_DBFS = (-20.0, -3.0)
SILENCE_RMS_DBFS = (-90.0, -70.0)
NOTE_RELEASE_S = 0.3  # noteoff this long before the end (at most 25 % of the clip)
FADE_S = 0.01

CONCEPT_KEYS = (
    "kind",
    "family",
    "instrument",
    "program",
    "midi_note",
    "note",
    "f0_hz",
    "velocity",
    "loudness_dbfs",
    "noise_colour",
    "click_rate_hz",
    "chirp_direction",
    "chirp_start_hz",
    "chirp_end_hz",
    "is_speech",
    "text",
)
LABEL_COLUMNS = ["kind", "family"]


@dataclass(frozen=True)
class SynthSpec:
    """One planned clip: everything needed to render it, plus its ground truth.

    Attributes:
        id: clip id, e.g. ``note-0007-violin-A4-v112``; also the file stem. Sharps are
            spelled ``s`` in ids (``Cs4`` for C#4; ``#`` would break file URLs); the
            ``note`` concept keeps ``C#4``.
        kind: one of :data:`KINDS`.
        index: position of the clip in the probe set.
        kind_index: position among the clips of its kind (the number in the id).
        duration_s: clip duration in seconds.
        seed: seed of this clip's own random generator (noise, phases, click shape).
        params: kind-specific generator parameters (JSON-serialisable).
        concepts: ground truth (all :data:`CONCEPT_KEYS`; ``loudness_dbfs`` is None until
            rendered and measured).
    """

    id: str
    kind: str
    index: int
    kind_index: int
    duration_s: float
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    concepts: dict[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.id}.wav"

    def metadata(self, sample_rate: int) -> dict[str, Any]:
        """Generator parameters for ``Clip.metadata``."""
        return {
            "generator": "synth",
            "render_version": RENDER_VERSION,
            "index": self.index,
            "kind_index": self.kind_index,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "sample_rate": sample_rate,
            **self.params,
        }


# --------------------------------------------------------------------------------------------
# planning


def soundfont_path() -> Path:
    """The General MIDI soundfont shipped inside ``pretty_midi``."""
    import pretty_midi

    return Path(os.path.dirname(pretty_midi.__file__)) / SOUNDFONT_NAME


@lru_cache(maxsize=4)
def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def speech_available() -> bool:
    """Whether ``espeak-ng`` is on ``PATH``."""
    return shutil.which("espeak-ng") is not None


def synth_cache_key(cfg: SynthConfig, speech_available: bool) -> str:
    """Cache key of a rendered probe set, e.g. ``v1-3f9c0a1b2c4d5e6f``.

    It hashes the config fields that change audio (seed, n_clips, sample_rate, min/max
    seconds), :data:`RENDER_VERSION`, whether speech is rendered (``cfg.speech and
    speech_available``) and the soundfont's SHA-256 (a pretty_midi upgrade that changed the
    soundfont would otherwise reuse stale audio). ``cache_dir`` and ``progress`` do not count.
    """
    payload = {
        "render_version": RENDER_VERSION,
        "seed": int(cfg.seed),
        "n_clips": int(cfg.n_clips),
        "sample_rate": int(cfg.sample_rate),
        "min_seconds": float(cfg.min_seconds),
        "max_seconds": float(cfg.max_seconds),
        "speech": bool(cfg.speech and speech_available),
        "soundfont_sha256": _file_sha256(str(soundfont_path())),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"v{RENDER_VERSION}-{digest[:16]}"


def kind_counts(n_clips: int, with_speech: bool) -> dict[str, int]:
    """How many clips of each kind ``n_clips`` holds (largest-remainder rounding)."""
    props = dict(PROPORTIONS)
    if not with_speech:
        props["note"] += props.pop("speech")
    kinds = list(props)
    raw = {k: n_clips * props[k] for k in kinds}
    counts = {k: int(math.floor(raw[k])) for k in kinds}
    order = sorted(kinds, key=lambda k: (-(raw[k] - counts[k]), kinds.index(k)))
    for k in order[: n_clips - sum(counts.values())]:
        counts[k] += 1
    if n_clips >= len(kinds):  # every kind at least once, taken from the notes
        for k in kinds:
            if counts[k] == 0:
                counts[k] = 1
                counts["note"] -= 1
    return {k: counts.get(k, 0) for k in KINDS}


def _empty_concepts(kind: str) -> dict[str, Any]:
    c: dict[str, Any] = dict.fromkeys(CONCEPT_KEYS)
    c["kind"] = kind
    c["is_speech"] = kind == "speech"
    return c


def _midi_hz(m: int) -> float:
    return 440.0 * 2.0 ** ((m - 69) / 12.0)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _id_note(name: str) -> str:
    """Note name for ids and file names: ``C#4`` -> ``Cs4`` (``#`` breaks URLs)."""
    return name.replace("#", "s")


def _db_tag(db: float) -> str:
    return f"m{round(-db):d}db" if db < 0 else f"p{round(db):d}db"


def _pitch_concepts(c: dict[str, Any], midi: int) -> None:
    import pretty_midi

    c["midi_note"] = int(midi)
    c["note"] = pretty_midi.note_number_to_name(int(midi))
    c["f0_hz"] = _midi_hz(int(midi))


def _uniform(rng: np.random.Generator, lo: float, hi: float, nd: int = 2) -> float:
    return round(float(rng.uniform(lo, hi)), nd)


def plan_synth(cfg: SynthConfig, speech_available: bool) -> list[SynthSpec]:
    """The clip list of a probe set, without rendering: ids, parameters and ground truth.

    Pure and deterministic in ``cfg`` (seed, n_clips, sample_rate, min/max seconds, speech) and
    ``speech_available``. Each kind draws from its own generator seeded by ``(seed, kind)``.
    """
    import pretty_midi

    if cfg.n_clips < 1:
        raise ValueError(f"synth.n_clips must be >= 1, got {cfg.n_clips}")
    if not 0 < cfg.min_seconds <= cfg.max_seconds:
        raise ValueError(
            f"synth needs 0 < min_seconds <= max_seconds, got {cfg.min_seconds}, {cfg.max_seconds}"
        )
    sr = int(cfg.sample_rate)
    if sr < 8000:
        raise ValueError(f"synth.sample_rate must be >= 8000 Hz, got {sr}")
    with_speech = bool(cfg.speech and speech_available)
    counts = kind_counts(int(cfg.n_clips), with_speech)
    nyq_safe = 0.45 * sr
    specs: list[SynthSpec] = []

    def rng_for(kind: str) -> np.random.Generator:
        return np.random.default_rng([int(cfg.seed), KINDS.index(kind), RENDER_VERSION])

    def add(kind, j, name, rng, params, concepts):
        duration = _uniform(rng, cfg.min_seconds, cfg.max_seconds, 3)
        duration = min(max(duration, cfg.min_seconds), cfg.max_seconds)
        seed = int(rng.integers(0, 2**31 - 1))
        specs.append(
            SynthSpec(
                id=f"{kind}-{j:04d}-{name}" if name else f"{kind}-{j:04d}",
                kind=kind,
                index=len(specs),
                kind_index=j,
                duration_s=float(duration),
                seed=seed,
                params=params,
                concepts=concepts,
            )
        )

    # notes: first cover every MIDI note of 36..96 once (in random order), each played by the
    # least-used instrument that can play it; then least-used instrument, random note.
    rng = rng_for("note")
    usage = dict.fromkeys(range(len(INSTRUMENTS)), 0)
    keys = [int(k) for k in rng.permutation(np.arange(NOTE_RANGE[0], NOTE_RANGE[1] + 1))]
    for j in range(counts["note"]):
        if j < len(keys):
            key = keys[j]
            cand = [i for i, (_, lo, hi) in enumerate(INSTRUMENTS) if lo <= key <= hi]
        else:
            key = None
            cand = list(range(len(INSTRUMENTS)))
        least = min(usage[i] for i in cand)
        cand = [i for i in cand if usage[i] == least]
        inst = cand[int(rng.integers(len(cand)))]
        usage[inst] += 1
        program, lo, hi = INSTRUMENTS[inst]
        if key is None:
            key = int(rng.integers(lo, hi + 1))
        velocity = int(VELOCITIES[int(rng.integers(len(VELOCITIES)))])
        target = _uniform(rng, *TONAL_RMS_DBFS)
        name = pretty_midi.program_to_instrument_name(program)
        c = _empty_concepts("note")
        c.update(
            family=pretty_midi.program_to_instrument_class(program),
            instrument=name,
            program=program,
            velocity=velocity,
        )
        _pitch_concepts(c, key)
        add(
            "note",
            j,
            f"{_slug(name)}-{_id_note(c['note'])}-v{velocity}",
            rng,
            {"target_rms_dbfs": target, "release_s": NOTE_RELEASE_S},
            c,
        )

    rng = rng_for("tone")
    for j in range(counts["tone"]):
        key = int(rng.integers(NOTE_RANGE[0], NOTE_RANGE[1] + 1))
        c = _empty_concepts("tone")
        _pitch_concepts(c, key)
        add(
            "tone",
            j,
            _id_note(c["note"]),
            rng,
            {"target_rms_dbfs": _uniform(rng, *TONAL_RMS_DBFS)},
            c,
        )

    # harmonic complexes: the top note is the highest with 6 harmonics below 0.45 * sr.
    rng = rng_for("harmonic")
    top = min(NOTE_RANGE[1], int(math.floor(69 + 12 * math.log2(nyq_safe / 6 / 440.0))))
    for j in range(counts["harmonic"]):
        key = int(rng.integers(NOTE_RANGE[0], top + 1))
        f0 = _midi_hz(key)
        n_harm = int(min(rng.integers(6, 11), math.floor(nyq_safe / f0)))
        c = _empty_concepts("harmonic")
        _pitch_concepts(c, key)
        params = {
            "n_harmonics": n_harm,
            "amplitudes": "1/k",
            "target_rms_dbfs": _uniform(rng, *TONAL_RMS_DBFS),
        }
        add("harmonic", j, f"{_id_note(c['note'])}-h{n_harm}", rng, params, c)

    rng = rng_for("noise")
    for j in range(counts["noise"]):
        colour = NOISE_COLOURS[j % len(NOISE_COLOURS)]
        level = NOISE_LEVELS_DBFS[(j // len(NOISE_COLOURS)) % len(NOISE_LEVELS_DBFS)]
        c = _empty_concepts("noise")
        c["noise_colour"] = colour
        add("noise", j, f"{colour}-{_db_tag(level)}", rng, {"target_rms_dbfs": level}, c)

    rng = rng_for("clicks")
    rates = [CLICK_RATES_HZ[i % len(CLICK_RATES_HZ)] for i in range(counts["clicks"])]
    rates = [rates[i] for i in rng.permutation(len(rates))]
    for j, rate in enumerate(rates):
        c = _empty_concepts("clicks")
        c["click_rate_hz"] = float(rate)
        params = {
            "target_peak_dbfs": _uniform(rng, *CLICK_PEAK_DBFS),
            "first_click_s": round(float(rng.uniform(0.0, 0.5 / rate)), 4),
            "click_ms": 2.0,
        }
        add("clicks", j, f"{rate:g}hz", rng, params, c)

    rng = rng_for("chirp")
    for j in range(counts["chirp"]):
        direction = "rising" if j % 2 == 0 else "falling"
        low = float(round(math.exp(rng.uniform(math.log(80.0), math.log(400.0)))))
        high_max = min(6000.0, 0.4 * sr)
        high = float(round(math.exp(rng.uniform(math.log(1500.0), math.log(high_max)))))
        start, end = (low, high) if direction == "rising" else (high, low)
        c = _empty_concepts("chirp")
        c.update(chirp_direction=direction, chirp_start_hz=start, chirp_end_hz=end)
        params = {"sweep": "log", "target_rms_dbfs": _uniform(rng, *TONAL_RMS_DBFS)}
        add("chirp", j, f"{direction}-{start:g}-{end:g}hz", rng, params, c)

    rng = rng_for("silence")
    for j in range(counts["silence"]):
        level = _uniform(rng, *SILENCE_RMS_DBFS, 1)
        c = _empty_concepts("silence")
        add("silence", j, "", rng, {"target_rms_dbfs": level, "floor": "white noise"}, c)

    rng = rng_for("speech")
    for j in range(counts["speech"]):
        text = SPEECH_TEXTS[int(rng.integers(len(SPEECH_TEXTS)))]
        c = _empty_concepts("speech")
        c["text"] = text
        params = {
            "voice": SPEECH_VOICES[int(rng.integers(len(SPEECH_VOICES)))],
            "words_per_minute": int(rng.integers(140, 181)),
            "pitch": int(rng.integers(30, 71)),
            "onset_s": 0.1,
            "target_rms_dbfs": _uniform(rng, *TONAL_RMS_DBFS),
        }
        add("speech", j, _slug(text), rng, params, c)

    return specs


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
    import soundfile as sf

    from dissect.audio.load import resample

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not on PATH; cannot render speech clip " + spec.id)
    p = spec.params
    with tempfile.TemporaryDirectory(prefix="dissect-espeak-") as tmp:
        out = os.path.join(tmp, "speech.wav")
        cmd = [exe, "-v", str(p["voice"]), "-s", str(p["words_per_minute"]), "-p",
               str(p["pitch"]), "-w", out, str(spec.concepts["text"])]  # fmt: skip
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            raise RuntimeError(
                f"espeak-ng failed for clip {spec.id}: {exc} {err.decode(errors='replace')[:200]}"
            ) from exc
        data, file_sr = sf.read(out, dtype="float32", always_2d=True)
    voice = resample(data.mean(axis=1).astype(np.float32), int(file_sr), sr).astype(np.float64)
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


def wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """A mono 32-bit IEEE-float WAV file (``fmt`` + ``fact`` + ``data``; no PEAK timestamp)."""
    data = np.ascontiguousarray(x, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sample_rate, sample_rate * 4, 4, 32)
    body = b"".join(
        [
            b"WAVE",
            b"fmt " + struct.pack("<I", len(fmt)) + fmt,
            b"fact" + struct.pack("<II", 4, len(x)),
            b"data" + struct.pack("<I", len(data)) + data,
        ]
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --------------------------------------------------------------------------------------------
# cache


def synth_cache_root(cfg: SynthConfig, cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``cfg.cache_dir``, else ``$DISSECT_CACHE/synth``, else
    ``~/.cache/dissect/synth``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    env = os.environ.get("DISSECT_CACHE")
    if env:
        return Path(env).expanduser() / "synth"
    return Path.home() / ".cache" / "dissect" / "synth"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _read_known(root: Path, key: str) -> tuple[dict[str, dict[str, Any]], bool]:
    """Recorded ``{file: {sha256, loudness_dbfs}}`` from index.json and the journal.

    Returns the records and whether a valid ``index.json`` was found.
    """
    known: dict[str, dict[str, Any]] = {}
    have_index = False
    try:
        index = json.loads((root / INDEX_NAME).read_text())
        if index.get("key") == key and index.get("render_version") == RENDER_VERSION:
            for rec in index["clips"]:
                known[rec["file"]] = {
                    "sha256": rec["sha256"],
                    "loudness_dbfs": rec["loudness_dbfs"],
                }
            have_index = True
    except (OSError, ValueError, KeyError, TypeError):
        known = {}
    try:
        lines = (root / JOURNAL_NAME).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:  # a line torn by a kill is skipped
        try:
            rec = json.loads(line)
            known[rec["file"]] = {"sha256": rec["sha256"], "loudness_dbfs": rec["loudness_dbfs"]}
        except (ValueError, KeyError, TypeError):
            continue
    return known, have_index


def _clean_stale_temps(root: Path, older_than_s: float = 3600.0) -> None:
    now = time.time()
    for p in root.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()


def load_synth(
    cfg: SynthConfig, cache_dir: str | Path | None = None, progress: bool = True
) -> ProbeSet:
    """Render (once) and load the ``synth`` probe set.

    Args:
        cfg: the synth config; ``seed`` fixes every random choice.
        cache_dir: cache root; default ``cfg.cache_dir``, ``$DISSECT_CACHE/synth`` or
            ``~/.cache/dissect/synth``. Clips go to ``<cache root>/<synth_cache_key>/``.
        progress: show a tqdm bar while rendering.

    Returns:
        ``ProbeSet(name="synth", label_columns=["kind", "family"])`` in plan order.
    """
    have_espeak = speech_available()
    if cfg.speech and not have_espeak:
        log.warning(
            "synth: espeak-ng is not installed, so the probe set has no speech clips "
            "(their slots are instrument notes); install espeak-ng to add them"
        )
    elif not cfg.speech:
        log.info("synth: speech disabled by config (synth.speech=false); no speech clips")
    with_speech = bool(cfg.speech and have_espeak)
    specs = plan_synth(cfg, with_speech)
    key = synth_cache_key(cfg, with_speech)
    root = synth_cache_root(cfg, cache_dir) / key
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(root)
    sr = int(cfg.sample_rate)

    known, have_index = _read_known(root, key)
    records: dict[str, dict[str, Any]] = {}
    todo: list[SynthSpec] = []
    for spec in specs:
        rec = known.get(spec.file_name)
        if rec is not None and _sha256_file(root / spec.file_name) == rec["sha256"]:
            records[spec.file_name] = rec
        else:
            todo.append(spec)

    if todo:
        from tqdm.auto import tqdm

        log.info("synth: rendering %d of %d clips into %s", len(todo), len(specs), root)
        with open(root / JOURNAL_NAME, "ab+") as journal:
            if journal.tell() > 0:  # end a line torn by a kill, so the next one parses
                journal.seek(-1, os.SEEK_END)
                if journal.read(1) != b"\n":
                    journal.write(b"\n")
            for spec in tqdm(todo, desc="synth: rendering", unit="clip", disable=not progress):
                x = render_clip(spec, sr)
                data = wav_bytes(x, sr)
                _atomic_write(root / spec.file_name, data)
                rec = {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "loudness_dbfs": round(rms_dbfs(x), 4),
                }
                records[spec.file_name] = rec
                journal.write((json.dumps({"file": spec.file_name, **rec}) + "\n").encode())
                journal.flush()

    clips = []
    for spec in specs:
        rec = records[spec.file_name]
        concepts = dict(spec.concepts)
        concepts["loudness_dbfs"] = rec["loudness_dbfs"]
        clips.append(
            Clip(
                id=spec.id,
                path=root / spec.file_name,
                labels={"kind": spec.kind, "family": concepts["family"]},
                concepts=concepts,
                metadata=spec.metadata(sr),
            )
        )

    if todo or not have_index:
        index = {
            "render_version": RENDER_VERSION,
            "key": key,
            "config": {
                "seed": cfg.seed,
                "n_clips": cfg.n_clips,
                "sample_rate": sr,
                "min_seconds": cfg.min_seconds,
                "max_seconds": cfg.max_seconds,
                "speech": with_speech,
            },
            "format": "wav float32 mono",
            "clips": [
                {"file": c.path.name, **records[c.path.name], **c.to_record()} for c in clips
            ],
        }
        for rec in index["clips"]:
            rec.pop("path", None)
        _atomic_write(root / INDEX_NAME, json.dumps(index, indent=1).encode())
        with contextlib.suppress(OSError):
            (root / JOURNAL_NAME).unlink()

    return ProbeSet(name="synth", root=root, clips=clips, label_columns=list(LABEL_COLUMNS))
