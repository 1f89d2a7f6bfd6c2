"""The captioner protocol: one short text per clip, cached per clip and per captioner config.

A captioner may also give *evidence terms*: short ``attribute=value`` facts about the clip
(``digit=3``, ``register=low``, ``word=three``, ``audioset_tag=Speech``) that
:mod:`dissect.explain.evidence` tests against each neuron's activations. It does so with an
``annotate(clip, audio) -> Annotation`` method (one pass gives both, so a transcript is decoded
once); :func:`annotate` falls back to ``caption()`` with no terms for captioners without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dissect.audio import Audio
from dissect.datasets import Clip
from dissect.limits import MAX_CAPTION_CHARS, MAX_LABEL_CHARS, cut_text


@runtime_checkable
class Captioner(Protocol):
    """What every captioner provides.

    Attributes:
        name: short stable name (``acoustic``, ``labels``, ``tagger``, ``transcript``,
            ``audio_llm``); it prefixes the caption when captions are combined.
        sample_rate: Hz of the audio the captioner needs; None when it needs no audio.
    """

    name: str
    sample_rate: int | None

    def config(self) -> dict[str, Any]:
        """JSON-able settings that change the captions (model, thresholds, prompt...).
        Hashed, with ``name``, into the cache key; secrets never belong here."""
        ...

    def caption(self, clip: Clip, audio: Audio | None) -> str:
        """Caption one clip (``audio`` at ``sample_rate``, or None). Raise on failure."""
        ...


@dataclass
class Annotation:
    """A clip's caption text, its evidence terms (``attribute=value``, lower-case
    attribute, no spaces around ``=``) and, optionally, JSON-able ``info`` on how they were
    made (the transcript's confidence measures and its second reading), which the caption stage
    keeps in the row's ``info``."""

    text: str
    terms: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def term(attribute: str, value: Any) -> str:
    """``attribute=value`` with the value's spaces kept and ``=`` / ``;`` removed from it."""
    v = str(value).strip().replace("=", " ").replace(";", " ")
    return f"{attribute.strip().lower()}={' '.join(v.split())}"


def annotate(captioner: Captioner, clip: Clip, audio: Audio | None) -> Annotation:
    """``captioner.annotate(clip, audio)`` when it has one, else its caption with no terms.

    Every caption is made here, so here the length limit applies: a text longer than
    :data:`~dissect.limits.MAX_CAPTION_CHARS` is cut with a visible marker and a warning naming
    the captioner and the clip id, and so is a term longer than
    :data:`~dissect.limits.MAX_LABEL_CHARS`."""
    fn = getattr(captioner, "annotate", None)
    ann = fn(clip, audio) if fn is not None else Annotation(captioner.caption(clip, audio), [])
    where = f"captioner {getattr(captioner, 'name', type(captioner).__name__)!r}, clip {clip.id!r}"
    text = ann.text
    if isinstance(text, str):
        text = cut_text(text, MAX_CAPTION_CHARS, where, "caption")
    return Annotation(text, [cut_text(t, MAX_LABEL_CHARS, where, "term")
                             if isinstance(t, str) else t for t in ann.terms],
                      dict(getattr(ann, "info", None) or {}))


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(midi: int) -> str:
    """MIDI note number -> ``"E4"`` (sharps, octave 4 = the one of A440)."""
    return f"{NOTE_NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


def pitch_terms(f0_hz: float | None, attribute: str = "pitch") -> list[str]:
    """``pitch=X`` for the note nearest ``f0_hz`` and its two neighbours: ``pitch=A4`` means
    "within a semitone of A4" (a one-semitone band; ``note=A4`` is the exact label).

    A single note is too rare a term in a probe set of a few hundred clips to reach
    significance, and a neuron tuned to a pitch responds to its neighbours too; the band gives
    each pitch term about three times the support, and a description that names the band's
    centre names the right note within a semitone.
    """
    import math

    if f0_hz is None or not math.isfinite(float(f0_hz)) or float(f0_hz) <= 0:
        return []
    m = int(round(69 + 12 * math.log2(float(f0_hz) / 440.0)))
    return [term(attribute, note_name(k)) for k in (m - 1, m, m + 1)]
