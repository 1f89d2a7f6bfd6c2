"""Acoustic captioner: librosa descriptors of one clip, written as one sentence.

:meth:`AcousticCaptioner.describe` measures, on the mono waveform at ``sample_rate``:

* **loudness**: RMS level in dBFS (``20 log10 rms``), named by :data:`LOUDNESS_WORDS` from
  the level rounded to 1 dB (as printed);
  an all-zero clip is "digital silence" and gets no other descriptor.
* **pitch**: ``librosa.pyin`` in two passes (see :func:`estimate_pitch`): a coarse pass over
  :data:`PITCH_FMIN_HZ`..:data:`PITCH_FMAX_HZ` at :data:`PITCH_COARSE_RESOLUTION` semitones gives
  the voiced frames and a coarse median f0; a fine pass restricted to
  :data:`PITCH_FINE_SPAN` semitones around it, at :data:`PITCH_FINE_RESOLUTION` semitones, gives
  the reported f0 (median over the coarse pass's voiced frames). The clip is pitched when the
  voiced fraction reaches :data:`PITCHED_MIN_VOICED_FRACTION`; the note name comes from
  ``librosa.hz_to_note`` and the register from :data:`REGISTER_WORDS`. A single full-range pass
  at 0.1 semitone costs ~0.6 s per 1.5 s clip; the two passes ~30-45 ms. (The coarse pass
  alone would report every pitch as its equal-tempered note frequency, e.g. 440 Hz for 452 Hz.)
* **brightness**: spectral centroid (Hz; magnitude-weighted, per frame), named by
  :data:`BRIGHTNESS_WORDS`.
* **tonal vs noisy**: spectral flatness (geometric / arithmetic mean of the power spectrum) of
  the pre-emphasised signal (``y[n] = x[n] - PRE_EMPHASIS * x[n-1]``), so the steep spectral
  tilt of brown or pink noise does not make it look tonal; named by :data:`FLATNESS_TONAL_MAX`
  and :data:`FLATNESS_NOISY_MIN`. Measured on the synth probe set: tones, harmonic complexes and
  instrument notes 1e-9..6e-3; white, pink and brown noise 0.29..0.49; click trains 0.3..0.54.
* **rhythmic vs steady**: onsets from ``librosa.onset.onset_detect`` on the (un-normalised)
  spectral-flux envelope in dB with a fixed peak threshold :data:`ONSET_DELTA_DB`, so steady
  tones and noise give no spurious onsets; rate = onsets / duration. Rhythmic when the rate
  reaches :data:`RHYTHMIC_MIN_RATE` with at least :data:`RHYTHMIC_MIN_ONSETS` onsets.
* **bandwidth**: spectral bandwidth (Hz, second moment around the centroid), named by
  :data:`BANDWIDTH_WORDS`.
* **duration** in seconds.

Frame-wise spectral values (centroid, flatness, bandwidth) are averaged over frames weighted by
each frame's power, so quiet fades and tails count little. The first call in a process pays
numba's compilation of librosa's pitch code (~2-3 s); later calls cost ~65 ms of CPU per 1.5 s
clip (pyin's two passes are about two thirds of it).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from dissect.audio import Audio
from dissect.audio.load import level_dbfs
from dissect.datasets import Clip
from dissect.description.captioners.base import Annotation, pitch_terms, term

#: Bump when a change alters any caption text (it is part of :meth:`AcousticCaptioner.config`).
VERSION = 3  # 2: pitch search from C1 (was C2); 3: measured pitch bands are f0= terms

SAMPLE_RATE = 16000

# Spectral features: STFT size and hop, in samples (64 ms / 16 ms at 16 kHz).
N_FFT = 1024
HOP = 256

# Pitch (pyin): search range C1..C7 (the synth probe set's notes 24..95, CREPE's whole output
# range), 64 ms frames, 32 ms hop.
PITCH_FMIN_HZ = 32.703  # C1: an equal-tempered grid (two periods fit the 1024-sample frame)
PITCH_FMAX_HZ = 2093.0
PITCH_FRAME = 1024
PITCH_HOP = 512
#: Coarse pass resolution in semitones (pyin's cost grows with the square of the bin count).
PITCH_COARSE_RESOLUTION = 1.0
#: Fine pass: resolution (semitones), half-width of its range around the coarse f0 (semitones),
#: and its maximum pitch transition rate (octaves/s; pyin needs the transition window to fit
#: inside the narrow range).
PITCH_FINE_RESOLUTION = 0.1
PITCH_FINE_SPAN = 1.0
PITCH_FINE_MAX_TRANSITION = 4.0
#: A clip is pitched when at least this fraction of its pyin frames is voiced.
PITCHED_MIN_VOICED_FRACTION = 0.5
#: (upper bound in Hz, exclusive, word): the register of the median f0.
REGISTER_WORDS: tuple[tuple[float, str], ...] = (
    (150.0, "low"),
    (400.0, "middle"),
    (1000.0, "high"),
    (math.inf, "very high"),
)

#: (upper bound in dBFS RMS, exclusive, word). An all-zero clip is "digital silence".
LOUDNESS_WORDS: tuple[tuple[float, str], ...] = (
    (-60.0, "near-silent"),
    (-40.0, "quiet"),
    (-20.0, "moderate"),
    (math.inf, "loud"),
)

#: (upper bound of the spectral centroid in Hz, exclusive, word).
BRIGHTNESS_WORDS: tuple[tuple[float, str], ...] = (
    (600.0, "dark"),
    (1500.0, "warm"),
    (3000.0, "bright"),
    (math.inf, "very bright"),
)

#: First-order pre-emphasis coefficient applied before measuring flatness.
PRE_EMPHASIS = 0.97
#: Flatness below this is "tonal"; at or above :data:`FLATNESS_NOISY_MIN` "noisy"; between,
#: "partly noisy".
FLATNESS_TONAL_MAX = 0.02
FLATNESS_NOISY_MIN = 0.1

#: Mel bands of the onset (spectral-flux) envelope.
ONSET_N_MELS = 64
#: Onset peak threshold on the spectral-flux envelope (mean positive dB change per frame).
ONSET_DELTA_DB = 3.0
#: Rhythmic when onsets per second >= this and the count >= :data:`RHYTHMIC_MIN_ONSETS`.
RHYTHMIC_MIN_RATE = 1.5
RHYTHMIC_MIN_ONSETS = 2

#: (upper bound of the spectral bandwidth in Hz, exclusive, word).
BANDWIDTH_WORDS: tuple[tuple[float, str], ...] = (
    (250.0, "narrow"),
    (1000.0, "medium"),
    (math.inf, "wide"),
)


@lru_cache(maxsize=4)
def _mel_filters(sr: int) -> np.ndarray:
    import librosa

    return np.ascontiguousarray(librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=ONSET_N_MELS))


def _word(value: float, table: tuple[tuple[float, str], ...]) -> str:
    for bound, word in table:
        if value < bound:
            return word
    return table[-1][1]


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def estimate_pitch(x: np.ndarray, sr: int) -> tuple[float | None, float]:
    """``(median f0 in Hz or None, voiced fraction)`` of a mono waveform (two pyin passes).

    f0 is None when fewer than :data:`PITCHED_MIN_VOICED_FRACTION` of the frames are voiced.
    """
    import librosa

    f0, voiced, _ = librosa.pyin(
        x, fmin=PITCH_FMIN_HZ, fmax=PITCH_FMAX_HZ, sr=sr, frame_length=PITCH_FRAME,
        hop_length=PITCH_HOP, resolution=PITCH_COARSE_RESOLUTION,
    )
    fraction = float(np.mean(voiced)) if voiced.size else 0.0
    if fraction < PITCHED_MIN_VOICED_FRACTION or not voiced.any():
        return None, fraction
    coarse = float(np.median(f0[voiced]))
    span = 2.0 ** (PITCH_FINE_SPAN / 12.0)
    fine, _, _ = librosa.pyin(
        x, fmin=coarse / span, fmax=coarse * span, sr=sr, frame_length=PITCH_FRAME,
        hop_length=PITCH_HOP, resolution=PITCH_FINE_RESOLUTION,
        max_transition_rate=PITCH_FINE_MAX_TRANSITION, fill_na=None,
    )
    values = fine[voiced[: len(fine)]]
    values = values[np.isfinite(values)]
    return (float(np.median(values)) if values.size else coarse), fraction


def describe_waveform(x: np.ndarray, sr: int) -> dict[str, Any]:
    """The descriptors of a mono waveform (see the module docstring); JSON-able values.

    Raises:
        ValueError: empty, not 1-D, or non-finite samples.
    """
    import librosa

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"acoustic: expected a non-empty mono waveform, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("acoustic: waveform has NaN or Inf samples")
    duration = x.size / sr
    peak, rms = level_dbfs(x)
    out: dict[str, Any] = {
        "duration_s": round(duration, 4),
        "rms_dbfs": round(rms, 2) if math.isfinite(rms) else None,
        "peak_dbfs": round(peak, 2) if math.isfinite(peak) else None,
        "silent": not math.isfinite(peak),
    }
    if out["silent"]:
        out["loudness"] = "digital silence"
        return out
    out["loudness"] = _word(round(rms), LOUDNESS_WORDS)  # the word agrees with the printed dB

    # Very short clips are zero-padded for analysis only (duration stays the real one).
    xa = np.pad(x, (0, max(0, PITCH_FRAME - x.size)))

    f0, voiced_fraction = estimate_pitch(xa, sr)
    out["voiced_fraction"] = round(voiced_fraction, 3)
    out["pitched"] = f0 is not None
    out["f0_hz"] = round(f0, 2) if f0 is not None else None
    out["note"] = librosa.hz_to_note(f0, unicode=False) if f0 is not None else None
    out["register"] = _word(f0, REGISTER_WORDS) if f0 is not None else None

    S = np.abs(librosa.stft(xa, n_fft=N_FFT, hop_length=HOP))
    power = np.square(S).sum(axis=0)
    weights = power / power.sum() if power.sum() > 0 else np.full(power.shape, 1 / power.size)
    centroid = float(weights @ librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=N_FFT)[0])
    bandwidth = float(weights @ librosa.feature.spectral_bandwidth(S=S, sr=sr, n_fft=N_FFT)[0])
    emphasised = np.append(xa[:1], xa[1:] - PRE_EMPHASIS * xa[:-1])
    Se = np.abs(librosa.stft(emphasised, n_fft=N_FFT, hop_length=HOP))
    flatness = float(weights @ librosa.feature.spectral_flatness(S=Se)[0])

    # C-contiguous operands: OpenBLAS takes ~30 ms (instead of 0.1 ms) on this small product
    # with the Fortran-ordered STFT.
    mel = _mel_filters(sr) @ np.ascontiguousarray(np.square(S))
    envelope = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=HOP)
    onsets = librosa.onset.onset_detect(
        onset_envelope=envelope, sr=sr, hop_length=HOP, normalize=False, delta=ONSET_DELTA_DB
    )
    rate = len(onsets) / duration

    out.update(
        centroid_hz=round(centroid, 1),
        brightness=_word(centroid, BRIGHTNESS_WORDS),
        flatness=round(flatness, 6),
        tonality=(
            "tonal" if flatness < FLATNESS_TONAL_MAX
            else "noisy" if flatness >= FLATNESS_NOISY_MIN
            else "partly noisy"
        ),
        n_onsets=int(len(onsets)),
        onset_rate_per_s=round(rate, 2),
        rhythm=(
            "rhythmic" if rate >= RHYTHMIC_MIN_RATE and len(onsets) >= RHYTHMIC_MIN_ONSETS
            else "steady"
        ),
        bandwidth_hz=round(bandwidth, 1),
        bandwidth=_word(bandwidth, BANDWIDTH_WORDS),
    )
    return out


def sentence(d: dict[str, Any]) -> str:
    """One sentence from :func:`describe_waveform`'s dict, e.g. ``"A loud (-12 dBFS), warm,
    tonal, steady sound with a pitch around A4 (440 Hz, high register); narrow bandwidth;
    1.5 s."``"""
    duration = f"{d['duration_s']:.1f} s"
    if d["silent"]:
        return f"Digital silence; {duration}."
    rhythm = d["rhythm"]
    if rhythm == "rhythmic":
        rhythm = f"rhythmic ({d['onset_rate_per_s']:.1f} onsets/s)"
    adjectives = [f"{d['loudness']} ({d['rms_dbfs']:.0f} dBFS)", d["brightness"], d["tonality"],
                  rhythm]
    if not d["pitched"]:
        adjectives.append("unpitched")
    text = f"{_article(adjectives[0])} {', '.join(adjectives)} sound"
    if d["pitched"]:
        text += (f" with a pitch around {d['note']} ({d['f0_hz']:.0f} Hz, "
                 f"{d['register']} register)")
    return f"{text}; {d['bandwidth']} bandwidth; {duration}."


class AcousticCaptioner:
    """Librosa descriptors as one sentence (see the module docstring for every threshold).

    Args:
        sample_rate: rate (Hz) the clips are loaded at; descriptors are in Hz, so any rate works,
            but the thresholds were set at 16 kHz.
    """

    name = "acoustic"

    def __init__(self, sample_rate: int = SAMPLE_RATE):
        self.sample_rate = int(sample_rate)

    def config(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "version": VERSION,
            "librosa": version("librosa"),
            "sample_rate": self.sample_rate,
            "n_fft": N_FFT,
            "hop": HOP,
            "pitch": {
                "fmin_hz": PITCH_FMIN_HZ, "fmax_hz": PITCH_FMAX_HZ, "frame": PITCH_FRAME,
                "hop": PITCH_HOP, "coarse_resolution": PITCH_COARSE_RESOLUTION,
                "fine_resolution": PITCH_FINE_RESOLUTION, "fine_span": PITCH_FINE_SPAN,
                "fine_max_transition": PITCH_FINE_MAX_TRANSITION,
                "min_voiced_fraction": PITCHED_MIN_VOICED_FRACTION,
                "registers": [list(r) for r in REGISTER_WORDS[:-1]],
            },
            "loudness": [list(r) for r in LOUDNESS_WORDS[:-1]],
            "brightness": [list(r) for r in BRIGHTNESS_WORDS[:-1]],
            "flatness": {"pre_emphasis": PRE_EMPHASIS, "tonal_max": FLATNESS_TONAL_MAX,
                         "noisy_min": FLATNESS_NOISY_MIN},
            "onsets": {"n_mels": ONSET_N_MELS, "delta_db": ONSET_DELTA_DB,
                       "rhythmic_min_rate": RHYTHMIC_MIN_RATE,
                       "rhythmic_min_onsets": RHYTHMIC_MIN_ONSETS},
            "bandwidth": [list(r) for r in BANDWIDTH_WORDS[:-1]],
        }

    def describe(self, audio: Audio) -> dict[str, Any]:
        """Structured descriptors of one clip (keys in :func:`describe_waveform`).

        Raises:
            ValueError: audio at another rate than ``sample_rate``, empty or non-finite.
        """
        if audio.sample_rate != self.sample_rate:
            raise ValueError(
                f"acoustic: audio is at {audio.sample_rate} Hz, expected {self.sample_rate} Hz "
                "(load clips at the captioner's sample_rate)"
            )
        return describe_waveform(audio.waveform, audio.sample_rate)

    def caption(self, clip: Clip, audio: Audio | None) -> str:
        return self.annotate(clip, audio).text

    def annotate(self, clip: Clip, audio: Audio | None) -> Annotation:
        """The sentence and the descriptors as terms (:func:`descriptor_terms`)."""
        if audio is None:
            raise ValueError(f"acoustic: clip {clip.id!r} needs audio")
        d = self.describe(audio)
        return Annotation(sentence(d), descriptor_terms(d))


#: Descriptors that become ``attribute=value`` evidence terms (their words, not the numbers).
TERM_FIELDS = ("loudness", "register", "brightness", "tonality", "rhythm", "bandwidth")


def descriptor_terms(d: dict[str, Any]) -> list[str]:
    """Evidence terms of :func:`describe_waveform`'s output: ``loudness=quiet``,
    ``register=low``, ``pitched=yes``, ``f0=E4`` (a one-semitone band around the measured
    f0, see :func:`~dissect.description.captioners.base.pitch_terms`; ``f0``, not ``pitch``, so a
    pYIN estimate is not mixed with a label's true pitch), ..."""
    out = [term(k, d[k]) for k in TERM_FIELDS if d.get(k)]
    if not d.get("silent"):
        out.append(term("pitched", "yes" if d.get("pitched") else "no"))
    out += pitch_terms(d.get("f0_hz"), "f0")
    return out
