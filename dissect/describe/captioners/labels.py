"""Label captioner: a clip's dataset labels (and chosen concepts / metadata) as one sentence.

It needs no audio (``sample_rate`` is None). Three cases:

* ``fields`` given: exactly those fields, in that order, for every clip:
  ``"Labels: category dog; fold 1."``. A field is ``"labels.<key>"``, ``"concepts.<key>"``,
  ``"metadata.<key>"`` or a bare ``"<key>"`` (looked up in labels, then concepts, then metadata).
  Fields a clip lacks (or holds as None) are left out.
* ``fields`` None and a synth clip (``clip.concepts`` has ``"kind"``): one sentence per kind, e.g.
  ``"A violin note (strings family), A4, velocity 112."``, ``"Pink noise at -30 dBFS."``,
  ``"A click train at 8 clicks per second."`` (see :func:`synth_sentence`). Noise is the only
  kind whose sentence gives the level: noise clips differ only in colour and level, while the
  level of the other kinds is a by-product (the acoustic captioner reports it for every clip).
* ``fields`` None otherwise: every label, then the metadata keys in
  :data:`DEFAULT_METADATA_FIELDS` the clip has: ``"Labels: category dog; target 0; fold 1."``;
  ``"No labels."`` when there is nothing to say.

Values: lists are joined with ", ", booleans are "yes"/"no", floats use ``:g``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dissect.audio import Audio
from dissect.datasets import Clip
from dissect.describe.captioners.base import Annotation, pitch_terms, term

#: Bump when a change alters any caption text (it is part of :meth:`LabelCaptioner.config`).
VERSION = 1

#: Metadata keys added to the labels by default (non-synth clips, ``fields=None``).
DEFAULT_METADATA_FIELDS: tuple[str, ...] = ("fold",)

_SECTIONS = ("labels", "concepts", "metadata")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v)
    return str(v)


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def _hz(v: Any) -> str:
    return f"{float(v):.0f} Hz"


def synth_sentence(concepts: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
    """The sentence for one synth clip from its ground-truth ``concepts`` (and ``metadata``)."""
    c = concepts
    metadata = metadata or {}
    kind = str(c.get("kind"))
    note, f0 = c.get("note"), c.get("f0_hz")
    if note and f0 is not None:
        pitch = f"{note} ({_hz(f0)})"
    else:
        pitch = note or (_hz(f0) if f0 is not None else None)
    if kind == "note":
        instrument = str(c.get("instrument") or "instrument").lower()
        head = f"{_article(instrument)} {instrument} note"
        if c.get("family"):
            head += f" ({str(c['family']).lower()} family)"
        parts = [head]
        if note:
            parts.append(str(note))
        if c.get("velocity") is not None:
            parts.append(f"velocity {c['velocity']}")
        return ", ".join(parts) + "."
    if kind == "tone":
        return f"A pure tone at {pitch}." if pitch else "A pure tone."
    if kind == "harmonic":
        text = f"A harmonic complex tone at {pitch}" if pitch else "A harmonic complex tone"
        if metadata.get("n_harmonics"):
            text += f" with {metadata['n_harmonics']} harmonics"
        return text + "."
    if kind == "noise":
        colour = str(c.get("noise_colour") or "").strip()
        text = f"{colour.capitalize()} noise" if colour else "Noise"
        if c.get("loudness_dbfs") is not None:
            text += f" at {float(c['loudness_dbfs']):.0f} dBFS"
        return text + "."
    if kind == "clicks":
        rate = c.get("click_rate_hz")
        return f"A click train at {float(rate):g} clicks per second." if rate else "A click train."
    if kind == "chirp":
        direction = c.get("chirp_direction")
        text = f"{_article(direction)} {direction} chirp" if direction else "A chirp"
        start, end = c.get("chirp_start_hz"), c.get("chirp_end_hz")
        if start is not None and end is not None:
            text += f" from {_hz(start)} to {_hz(end)}"
        return text + "."
    if kind == "silence":
        return "Near-silence (a very faint noise floor)."
    if kind == "speech":
        return f"Synthetic speech saying '{c['text']}'." if c.get("text") else "Synthetic speech."
    return f"A synthetic {kind} sound."


class LabelCaptioner:
    """Dataset labels as a sentence (see the module docstring).

    Args:
        fields: field names to report for every clip (``"labels.category"``, ``"fold"``...), or
            None for the defaults (kind-specific sentences for synth clips, all labels plus
            :data:`DEFAULT_METADATA_FIELDS` otherwise).
    """

    name = "labels"
    sample_rate: int | None = None

    def __init__(self, fields: Sequence[str] | None = None):
        if isinstance(fields, str):
            fields = [f.strip() for f in fields.split(",") if f.strip()]
        self.fields = list(fields) if fields is not None else None
        for f in self.fields or []:
            section, _, key = f.partition(".")
            if key and section not in _SECTIONS:
                raise ValueError(
                    f"labels: field {f!r}: prefix must be one of {', '.join(_SECTIONS)} "
                    "(or give a bare key)"
                )

    def config(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "fields": self.fields,
            "default_metadata_fields": list(DEFAULT_METADATA_FIELDS),
        }

    def _lookup(self, clip: Clip, field: str) -> tuple[str, Any]:
        section, _, key = field.partition(".")
        if key and section in _SECTIONS:
            return key, getattr(clip, section).get(key)
        for sec in _SECTIONS:
            value = getattr(clip, sec).get(field)
            if value is not None:
                return field, value
        return field, None

    def annotate(self, clip: Clip, audio: Audio | None = None) -> Annotation:
        """The sentence and the labels as terms (:func:`label_terms`)."""
        return Annotation(self.caption(clip, audio), label_terms(clip, self.fields))

    def caption(self, clip: Clip, audio: Audio | None = None) -> str:
        if self.fields is None and "kind" in clip.concepts:
            return synth_sentence(clip.concepts, clip.metadata)
        if self.fields is not None:
            pairs = [self._lookup(clip, f) for f in self.fields]
        else:
            pairs = list(clip.labels.items())
            pairs += [(k, clip.metadata.get(k)) for k in DEFAULT_METADATA_FIELDS]
        items = [f"{k} {_value(v)}" for k, v in pairs if v is not None and _value(v) != ""]
        return f"Labels: {'; '.join(items)}." if items else "No labels."


#: Longest label / concept string that is a term (longer ones are free text, not a category).
MAX_TERM_CHARS = 40


def _scalar_terms(key: str, v: Any) -> list[str]:
    if v is None or isinstance(v, dict):
        return []
    if isinstance(v, (list, tuple)):
        return [t for x in v for t in _scalar_terms(key, x)]
    if isinstance(v, bool):
        return [term(key, "yes")] if v else []
    text = _value(v).strip()
    return [term(key, text)] if text and len(text) <= MAX_TERM_CHARS else []


def label_terms(clip: Clip, fields: Sequence[str] | None = None) -> list[str]:
    """A clip's categorical facts as evidence terms.

    Every label (``labels.*``: ``digit=3``, ``speaker=lucas``, ``category=dog``); the concepts
    that are categories (strings and true booleans: ``family=brass``, ``note=E4``,
    ``noise_colour=pink``; numbers such as ``f0_hz`` or ``velocity`` are measurements, not
    terms, except that ``f0_hz`` gives the ``pitch=`` band of
    :func:`~dissect.describe.captioners.base.pitch_terms`, which replaces the exact ``note``);
    the words of a spoken ``text`` /
    ``word`` concept as ``word=...``. With ``fields`` only those fields. Duplicates are
    dropped, order kept (terms are matched case-insensitively downstream).
    """
    out: list[str] = []
    if fields is not None:
        for f in fields:
            key = f.partition(".")[2] or f
            section = f.partition(".")[0] if "." in f else None
            for sec in ([section] if section in _SECTIONS else _SECTIONS):
                v = getattr(clip, sec).get(key)
                if v is not None:
                    out += _scalar_terms(key, v)
                    break
    else:
        for k, v in clip.labels.items():
            out += _scalar_terms(k, v)
        for k, v in clip.concepts.items():
            if k in ("text", "word") and isinstance(v, str):
                out += [term("word", w) for w in v.lower().split()]
            elif k == "f0_hz":
                out += pitch_terms(v)
            elif k == "note" and clip.concepts.get("f0_hz") is not None:
                continue  # the pitch= band around f0 says it, with three times the support
            elif isinstance(v, (str, bool)):
                out += _scalar_terms(k, v)
    return list(dict.fromkeys(out))
