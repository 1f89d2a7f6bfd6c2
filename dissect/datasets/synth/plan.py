"""Planning the ``synth`` probe set: :class:`SynthConfig`, the kinds and their shares, the
instrument table, :class:`SynthSpec` (one planned clip and its ground truth) and
:func:`plan_synth`, which turns a config into the ordered list of clips to render.

The plan depends only on the config (and whether speech is rendered): every random choice is drawn
from generators seeded by ``SynthConfig.seed``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dissect.fields import COUNT, POSITIVE, check, option


@dataclass
class SynthConfig:
    """The embedded `synth` probe set: rendered deterministically, offline, then cached."""

    seed: int = 0
    """Seed of every random choice (instrument, note, velocity, durations, noise)."""
    n_clips: int = option(600, COUNT)
    """Total number of clips (split over notes, tones, noise, clicks, chirps, silence,
    speech).
    """
    sample_rate: int = option(16000, COUNT)
    """Rendering sample rate in Hz."""
    min_seconds: float = option(1.0, POSITIVE)
    """Shortest clip duration in seconds."""
    max_seconds: float = option(2.0, POSITIVE)
    """Longest clip duration in seconds."""
    speech: bool = True
    """Include espeak-ng speech clips when espeak-ng is installed (skipped with one log line
    if not).
    """
    cache_dir: str | None = option(None, hashed=False)
    """Cache directory for rendered clips; null means $DISSECT_CACHE/synth or
    ~/.cache/dissect/synth.
    """

    def __post_init__(self) -> None:
        check(type(self), self, "probe.synth.")


# Bump whenever a change to this module changes any rendered sample or clip id.
RENDER_VERSION = 2  # 2: notes from C1 (MIDI 24), was C2


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
# intersected with 24..95 (notes below 36 only where pYIN measured this soundfont's rendering of
# every note 24..36 within 0.1 semitone of the written pitch: pianos, reed organ, basses, string
# ensemble, tuba, leads, pad; bassoon from its real low B-flat 1), narrowed where this
# soundfont renders a note whose measured pitch
# (pYIN) is not the written one: e.g. several winds and strings come out an octave low at
# 89/94, and the oboe an octave high at 75..78 (so it is left out). Organs with 16' stops
# (Drawbar, Percussive, Rock, Church) sound an octave below the written note and are left out;
# the Reed Organ and Accordion are not. Together the ranges cover 24..95.
INSTRUMENTS: tuple[tuple[int, int, int], ...] = (
    (0, 24, 95),  # Acoustic Grand Piano
    (4, 24, 88),  # Electric Piano 1
    (11, 53, 88),  # Vibraphone
    (12, 45, 95),  # Marimba
    (13, 65, 95),  # Xylophone
    (20, 24, 95),  # Reed Organ
    (21, 41, 88),  # Accordion
    (24, 40, 84),  # Acoustic Guitar (nylon)
    (25, 40, 84),  # Acoustic Guitar (steel)
    (26, 40, 86),  # Electric Guitar (jazz)
    (32, 24, 60),  # Acoustic Bass
    (33, 24, 67),  # Electric Bass (finger)
    (40, 55, 93),  # Violin
    (41, 48, 84),  # Viola
    (42, 36, 76),  # Cello
    (48, 24, 88),  # String Ensemble 1
    (56, 54, 84),  # Trumpet
    (57, 40, 72),  # Trombone
    (58, 24, 58),  # Tuba
    (60, 41, 77),  # French Horn
    (70, 34, 72),  # Bassoon
    (71, 50, 88),  # Clarinet
    (73, 60, 95),  # Flute
    (74, 60, 95),  # Recorder
    (80, 24, 88),  # Lead 1 (square)
    (81, 24, 88),  # Lead 2 (sawtooth)
    (88, 24, 84),  # Pad 1 (new age)
)

NOTE_RANGE = (24, 95)  # C1..B6: the range of CREPE's 360 bins (31.7..2005 Hz)
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

    # notes: first cover every MIDI note of NOTE_RANGE once (in random order), each played by the
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
