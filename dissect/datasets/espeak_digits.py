"""The ``espeak_digits`` probe set: the digits zero..nine spoken by ``espeak-ng``, rendered here.

Nothing is downloaded. :func:`plan_espeak_digits` picks ``ceil(n_clips / 10)`` (voice, speed,
pitch) combinations from :attr:`EspeakDigitsConfig.voices` x ``speeds_wpm`` x ``pitches``
(seeded by ``seed``; voices take turns, so every voice gets the same number of combinations,
each drawn without replacement from the speed x pitch grid), and every combination says all ten
digits, in order: the default 600 clips are 10 digits x 60 combinations, 5 per voice. Digit and
speaker are therefore balanced and independent, which is what a neuron's description is tested
against (``labels = {"digit": "3", "speaker": "en-us+f3"}``).

Each clip is ``espeak-ng -v VOICE -s SPEED -p PITCH -w out.wav WORD``, mixed to mono, resampled
to ``sample_rate`` (16 kHz), peak-normalised to ``peak_dbfs``, trimmed at both ends where the
signal stays below ``trim_dbfs`` and padded with ``pad_s`` of digital silence at each end. Files
are mono 32-bit float WAV (:func:`dissect.util.wav_bytes`), cached in
``<cache root>/<espeak_digits_cache_key>/`` with the verified index of
:mod:`dissect.datasets.render_cache`; the key hashes every audio-relevant config field,
:data:`RENDER_VERSION` and the espeak-ng version, so an espeak-ng upgrade renders afresh.

``real_voice: true`` adds the ten digit prompts of Debian's ``asterisk-core-sounds-en-wav``
(``/usr/share/asterisk/sounds/en/digits/0.wav`` .. ``9.wav``, a recorded human voice, speaker
``asterisk``) after the rendered clips, trimmed and padded the same way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.espeak import INSTALL_HINT, espeak_version, find_espeak, read_mono, speak
from dissect.datasets.render_cache import render_missing, write_index
from dissect.fields import COUNT, Range, check, option
from dissect.util import cache_root, hash_config, wav_bytes

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: Accents of ``espeak-ng --voices=en`` and variants (``+f3`` etc., ``--voices=variant``).
DEFAULT_VOICES = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd", "en-us+f3", "en-us+m3", "en-gb+f2", "en+klatt",
)  # fmt: skip
DEFAULT_SPEEDS_WPM = (120, 145, 170, 195, 220)
DEFAULT_PITCHES = (25, 40, 55, 70, 85)

#: Where Debian's asterisk-core-sounds-en-wav puts its digit prompts (``0.wav`` .. ``9.wav``).
ASTERISK_DIGITS = Path("/usr/share/asterisk/sounds/en/digits")
REAL_VOICE = "asterisk"

# Bump whenever a change to this module changes any rendered sample or clip id.
RENDER_VERSION = 1
LABEL_COLUMNS = ["digit", "speaker"]


@dataclass
class EspeakDigitsConfig:
    """The `espeak_digits` probe set: digits zero..nine spoken by espeak-ng voices, cached."""

    seed: int = 0
    """Seed of the (voice, speed, pitch) combinations."""
    n_clips: int = option(600, COUNT)
    """Number of clips: ten digits per combination (600 = 60 combinations)."""
    sample_rate: int = option(16000, COUNT)
    """Output sample rate in Hz (mono float WAV)."""
    voices: list[str] = field(default_factory=lambda: list(DEFAULT_VOICES))
    """espeak-ng voices (`espeak-ng --voices=en`), optionally with a variant: en-us+f3,
    en+klatt.
    """
    speeds_wpm: list[int] = field(default_factory=lambda: list(DEFAULT_SPEEDS_WPM))
    """Speaking rates (espeak-ng -s, words per minute) to draw from."""
    pitches: list[int] = field(default_factory=lambda: list(DEFAULT_PITCHES))
    """Pitches (espeak-ng -p, 0..99) to draw from."""
    peak_dbfs: float = -3.0
    """Each clip is peak-normalised to this level (dBFS) ..."""
    trim_dbfs: float = -45.0
    """After normalising, each clip is trimmed at both ends where |x| stays below this level
    (dBFS)."""
    pad_s: float = option(0.05, Range(0))
    """After trimming, each clip is padded with this much silence (seconds) at each end."""
    real_voice: bool = False
    """Also add the recorded digit prompts of Debian's asterisk-core-sounds-en-wav (when
    installed).
    """
    cache_dir: str | None = option(None, hashed=False)
    """Cache directory; null means $DISSECT_CACHE/espeak_digits or
    ~/.cache/dissect/espeak_digits.
    """

    def __post_init__(self) -> None:
        check(type(self), self, "probe.espeak_digits.")


class EspeakMissingError(RuntimeError):
    """espeak-ng (or the asterisk prompts asked for by ``real_voice``) is not installed."""


@dataclass(frozen=True)
class DigitSpec:
    """One planned clip: a digit said by one (voice, speed, pitch) combination."""

    id: str
    index: int
    combo: int
    digit: int
    voice: str
    speed_wpm: int | None
    pitch: int | None

    @property
    def file_name(self) -> str:
        return f"{self.id}.wav"

    @property
    def word(self) -> str:
        return WORDS[self.digit]

    def concepts(self) -> dict[str, Any]:
        return {"digit": self.digit, "word": self.word, "voice": self.voice,
                "speed_wpm": self.speed_wpm, "pitch": self.pitch}  # fmt: skip


def _slug(voice: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", voice.lower()).strip("-")


def plan_espeak_digits(cfg: EspeakDigitsConfig) -> list[DigitSpec]:
    """The clip list, without rendering: pure and deterministic in ``cfg``.

    Combination ``j`` uses voice ``order[j % len(voices)]`` (``order``: a seeded permutation),
    with that voice's next (speed, pitch) from a seeded permutation of the grid; its clips are
    the digits 0..9 in order. The list stops after ``n_clips`` clips.
    """
    voices, speeds, pitches = list(cfg.voices), list(cfg.speeds_wpm), list(cfg.pitches)
    if cfg.n_clips < 1:
        raise ValueError(f"espeak_digits.n_clips must be >= 1, got {cfg.n_clips}")
    if not voices or not speeds or not pitches:
        raise ValueError("espeak_digits needs at least one voice, one speed and one pitch")
    if len({_slug(v) for v in voices}) != len(voices):
        raise ValueError(f"espeak_digits.voices must be distinct (after slugging): {voices}")
    n_combos = math.ceil(int(cfg.n_clips) / len(WORDS))
    grid = [(int(s), int(p)) for s in speeds for p in pitches]
    if n_combos > len(voices) * len(grid):
        raise ValueError(
            f"espeak_digits.n_clips={cfg.n_clips} needs {n_combos} (voice, speed, pitch) "
            f"combinations but only {len(voices) * len(grid)} exist; add voices, speeds or pitches"
        )
    rng = np.random.default_rng([int(cfg.seed), RENDER_VERSION])
    order = [voices[i] for i in rng.permutation(len(voices))]
    pairs = {v: [grid[i] for i in rng.permutation(len(grid))] for v in order}
    specs: list[DigitSpec] = []
    for j in range(n_combos):
        voice = order[j % len(order)]
        speed, pitch = pairs[voice][j // len(order)]
        for digit in range(len(WORDS)):
            if len(specs) == cfg.n_clips:
                break
            specs.append(DigitSpec(
                id=f"digit-{digit}-{_slug(voice)}-s{speed}-p{pitch}", index=len(specs),
                combo=j, digit=digit, voice=voice, speed_wpm=speed, pitch=pitch))  # fmt: skip
    if cfg.real_voice:
        for digit in range(len(WORDS)):
            specs.append(DigitSpec(id=f"digit-{digit}-{REAL_VOICE}", index=len(specs),
                                   combo=n_combos, digit=digit, voice=REAL_VOICE,
                                   speed_wpm=None, pitch=None))  # fmt: skip
    return specs


# --------------------------------------------------------------------------------------------
# espeak-ng


def espeak_exe() -> str:
    """The espeak-ng program on PATH; :class:`EspeakMissingError` (how to install it) if none."""
    exe = find_espeak()
    if exe is None:
        raise EspeakMissingError(
            "probe layout 'espeak_digits' needs the program espeak-ng, which is not on PATH; "
            + INSTALL_HINT
        )
    return exe


def _audio_fields(cfg: EspeakDigitsConfig) -> dict[str, Any]:
    """Every config field but ``cache_dir``, as plain JSON values (cfg may be a DictConfig)."""
    return {
        "seed": int(cfg.seed),
        "n_clips": int(cfg.n_clips),
        "sample_rate": int(cfg.sample_rate),
        "voices": [str(v) for v in cfg.voices],
        "speeds_wpm": [int(s) for s in cfg.speeds_wpm],
        "pitches": [int(p) for p in cfg.pitches],
        "peak_dbfs": float(cfg.peak_dbfs),
        "trim_dbfs": float(cfg.trim_dbfs),
        "pad_s": float(cfg.pad_s),
        "real_voice": bool(cfg.real_voice),
    }


def espeak_digits_cache_key(cfg: EspeakDigitsConfig, version: str) -> str:
    """Cache key, e.g. ``v1-3f9c0a1b2c4d5e6f``: every config field but ``cache_dir``, the
    render version and the espeak-ng ``version``."""
    payload = {"render_version": RENDER_VERSION, "espeak_ng": version, **_audio_fields(cfg)}
    return f"v{RENDER_VERSION}-{hash_config(payload)[:16]}"


def espeak_digits_cache_root(cfg: EspeakDigitsConfig, cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``cfg.cache_dir``, else ``cache_root("espeak_digits")``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    return cache_root("espeak_digits")


def trim_and_pad(x: np.ndarray, sr: int, peak_dbfs: float, trim_dbfs: float,
                 pad_s: float) -> np.ndarray:  # fmt: skip
    """Peak-normalise to ``peak_dbfs``, cut the ends below ``trim_dbfs``, pad ``pad_s`` zeros."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = x * (10.0 ** (peak_dbfs / 20.0) / peak)
    loud = np.flatnonzero(np.abs(x) >= 10.0 ** (trim_dbfs / 20.0))
    x = x[loud[0] : loud[-1] + 1] if loud.size else x[:0]
    pad = np.zeros(int(round(pad_s * sr)))
    return np.concatenate([pad, x, pad])


# --------------------------------------------------------------------------------------------
# loading


def load_espeak_digits(
    cfg: EspeakDigitsConfig, cache_dir: str | Path | None = None, progress: bool = True
) -> ProbeSet:
    """Render (once) and load the ``espeak_digits`` probe set.

    Returns:
        ``ProbeSet(name="espeak_digits", label_columns=["digit", "speaker"])`` in plan order.

    Raises:
        EspeakMissingError: espeak-ng is not installed (or ``real_voice`` without the asterisk
            prompts); the message says how to install it.
    """
    exe = espeak_exe()
    if cfg.real_voice and not all((ASTERISK_DIGITS / f"{d}.wav").is_file() for d in range(10)):
        raise EspeakMissingError(
            f"espeak_digits.real_voice=true needs the digit prompts in {ASTERISK_DIGITS}; "
            "install them with `apt-get install asterisk-core-sounds-en-wav`"
        )
    version = espeak_version(exe)
    specs = plan_espeak_digits(cfg)
    key = espeak_digits_cache_key(cfg, version)
    root = espeak_digits_cache_root(cfg, cache_dir) / key
    sr = int(cfg.sample_rate)
    by_file = {spec.file_name: spec for spec in specs}

    def render(file_name: str) -> tuple[bytes, dict[str, Any]]:
        spec = by_file[file_name]
        if spec.voice == REAL_VOICE:
            raw = read_mono(ASTERISK_DIGITS / f"{spec.digit}.wav", sr)
        else:
            raw = speak(exe, spec.word, spec.voice, spec.speed_wpm, spec.pitch, sr, spec.id)
        x = trim_and_pad(raw, sr, cfg.peak_dbfs, cfg.trim_dbfs, cfg.pad_s)
        return wav_bytes(x, sr), {"duration_s": round(len(x) / sr, 4)}

    done = render_missing(
        root, key, RENDER_VERSION, list(by_file), render,
        fields=("duration_s",), name="espeak_digits", progress=progress,
    )  # fmt: skip
    clips = [
        Clip(
            id=spec.id,
            path=root / spec.file_name,
            labels={"digit": str(spec.digit), "speaker": spec.voice},
            concepts=spec.concepts(),
            metadata={
                "generator": "espeak_digits",
                "render_version": RENDER_VERSION,
                "espeak_ng": version,
                "index": spec.index,
                "combo": spec.combo,
                "sample_rate": sr,
                "duration_s": done.records[spec.file_name]["duration_s"],
                # the label is the digit: one voice's clips stay in one split
                "group": f"speaker:{spec.voice}",
            },
        )  # fmt: skip
        for spec in specs
    ]
    if done.needs_index:
        clip_recs = []
        for c in clips:
            rec = {"file": c.path.name, **done.records[c.path.name], **c.to_record()}
            rec.pop("path", None)
            clip_recs.append(rec)
        index = {"render_version": RENDER_VERSION, "key": key, "espeak_ng": version,
                 "config": _audio_fields(cfg),
                 "format": "wav float32 mono", "clips": clip_recs}  # fmt: skip
        write_index(root, index)
    return ProbeSet("espeak_digits", root, clips, list(LABEL_COLUMNS))


__all__ = [
    "DEFAULT_PITCHES",
    "DEFAULT_SPEEDS_WPM",
    "DEFAULT_VOICES",
    "LABEL_COLUMNS",
    "RENDER_VERSION",
    "WORDS",
    "DigitSpec",
    "EspeakDigitsConfig",
    "EspeakMissingError",
    "espeak_digits_cache_key",
    "espeak_digits_cache_root",
    "espeak_exe",
    "load_espeak_digits",
    "plan_espeak_digits",
    "trim_and_pad",
]
