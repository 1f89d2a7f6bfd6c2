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

**A label that means the same as another is one term.** A numeric label column that is a
function of a named one over the probe set (ESC-50's ``target``, the class index of
``category``; UrbanSound8K's ``classID`` of ``class``) says nothing the name does not, and a
bare number is no description ("crying baby; weaker for target 20"). It is found over the whole
set by :func:`redundant_label_columns`; :meth:`LabelCaptioner.fit_probe_set` drops such columns
from the default sentence and from the evidence terms (the captions stage and
:func:`dissect.caption` call it before captioning and log what was dropped and why).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from dissect.audio import Audio
from dissect.datasets import Clip
from dissect.description.captioners.base import Annotation, pitch_terms, term

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


_INT_RE = re.compile(r"^[+-]?\d+$")


def _is_number(v: Any) -> bool:
    """An integer value: an ``int`` (not a bool), an integral float, or a string of digits."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    if isinstance(v, float):
        return v == v and float(v).is_integer()
    return isinstance(v, str) and bool(_INT_RE.match(v.strip()))


def _is_name(v: Any) -> bool:
    """A named value: a string with at least one letter (``"dog"``, ``"crying_baby"``)."""
    return isinstance(v, str) and any(ch.isalpha() for ch in v)


def _labels_of(clip: Any) -> Mapping[str, Any]:
    if isinstance(clip, Mapping):
        return clip.get("labels") or {}
    return getattr(clip, "labels", None) or {}


def redundant_label_columns(clips: Sequence[Any]) -> dict[str, str]:
    """The numeric label columns that are a function of a named label column over ``clips``.

    A column ``n`` is redundant with a column ``c`` when, over the clips that have ``n``:

    * every value of ``n`` is an integer (an ``int``, an integral float, or a string of digits:
      a class index, not a measurement such as ``0.37``);
    * every one of those clips has ``c``, and every value of ``c`` is a name (a string with a
      letter);
    * each value of ``c`` goes with exactly one value of ``n`` (``n`` is a function of ``c``);
    * ``c`` has at least two values and one of them is on at least two clips (on a set of one
      clip per name every column is a function of the name, which says nothing).

    ESC-50's ``target`` is then redundant with ``category``; its ``fold`` (five folds per
    category) or a spoken digit beside the speaker are not.

    Args:
        clips: the probe set's clips: :class:`~dissect.datasets.Clip` objects or
            ``clips.jsonl`` rows (dicts with ``"labels"``); list-valued and missing labels are
            neither numeric nor named.

    Returns:
        ``{numeric column: the named column it is a function of}``, in first-seen column
        order (the first named column in that order when several fit); empty when none.
    """
    columns: dict[str, list[tuple[int, Any]]] = {}
    for i, clip in enumerate(clips):
        for k, v in _labels_of(clip).items():
            if v is not None:
                columns.setdefault(str(k), []).append((i, v))
    numeric = [k for k, vs in columns.items() if all(_is_number(v) for _, v in vs)]
    named = [k for k, vs in columns.items() if all(_is_name(v) for _, v in vs)]
    out: dict[str, str] = {}
    for n in numeric:
        n_of = {i: int(float(str(v).strip())) for i, v in columns[n]}
        for c in named:
            c_of = dict(columns[c])
            if not set(n_of) <= set(c_of):
                continue
            seen: dict[str, set[int]] = {}
            count: dict[str, int] = {}
            for i, nv in n_of.items():
                seen.setdefault(c_of[i], set()).add(nv)
                count[c_of[i]] = count.get(c_of[i], 0) + 1
            if (len(seen) >= 2 and max(count.values()) >= 2
                    and all(len(vs) == 1 for vs in seen.values())):
                out[n] = c
                break
    return out


def redundancy_reason(column: str, named: str) -> str:
    """Why :func:`redundant_label_columns` dropped ``column``, for the logs."""
    return (f"label column {column!r} dropped from captions and evidence terms: its values are "
            f"numbers and each {named!r} goes with one of them (it names the same classes)")


class LabelCaptioner:
    """Dataset labels as a sentence (see the module docstring).

    Args:
        fields: field names to report for every clip (``"labels.category"``, ``"fold"``...), or
            None for the defaults (kind-specific sentences for synth clips, all labels plus
            :data:`DEFAULT_METADATA_FIELDS` otherwise). Fields given here are written as given.
        drop_columns: label columns left out of the default sentence and the evidence terms
            (``fields=None``); :meth:`fit_probe_set` adds the redundant ones of the set.
    """

    name = "labels"
    sample_rate: int | None = None

    def __init__(self, fields: Sequence[str] | None = None, drop_columns: Sequence[str] = ()):
        if isinstance(fields, str):
            fields = [f.strip() for f in fields.split(",") if f.strip()]
        self.fields = list(fields) if fields is not None else None
        if isinstance(drop_columns, str):
            drop_columns = [c.strip() for c in drop_columns.split(",") if c.strip()]
        self.drop_columns: list[str] = list(dict.fromkeys(str(c) for c in drop_columns))
        for f in self.fields or []:
            section, _, key = f.partition(".")
            if key and section not in _SECTIONS:
                raise ValueError(
                    f"labels: field {f!r}: prefix must be one of {', '.join(_SECTIONS)} "
                    "(or give a bare key)"
                )

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": VERSION,
            "fields": self.fields,
            "default_metadata_fields": list(DEFAULT_METADATA_FIELDS),
        }
        if self.drop_columns:  # only then: sets with nothing to drop keep their cache keys
            out["drop_columns"] = sorted(self.drop_columns)
        return out

    def fit_probe_set(self, clips: Sequence[Any]) -> dict[str, str]:
        """Set-level settings from the whole probe set: add its redundant label columns
        (:func:`redundant_label_columns`) to :attr:`drop_columns`.

        Args:
            clips: every clip of the probe set (``Clip`` objects or ``clips.jsonl`` rows).

        Returns:
            ``{dropped column: the named column it is a function of}`` (empty when none, or
            when ``fields`` is given: then exactly those fields are written).
        """
        if self.fields is not None:
            return {}
        found = redundant_label_columns(clips)
        self.drop_columns = list(dict.fromkeys([*self.drop_columns, *found]))
        return found

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
        return Annotation(self.caption(clip, audio),
                          label_terms(clip, self.fields, self.drop_columns))

    def caption(self, clip: Clip, audio: Audio | None = None) -> str:
        if self.fields is None and "kind" in clip.concepts:
            return synth_sentence(clip.concepts, clip.metadata)
        if self.fields is not None:
            pairs = [self._lookup(clip, f) for f in self.fields]
        else:
            pairs = [(k, v) for k, v in clip.labels.items() if k not in self.drop_columns]
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


def label_terms(clip: Clip, fields: Sequence[str] | None = None,
                drop_columns: Sequence[str] = ()) -> list[str]:
    """A clip's categorical facts as evidence terms.

    Every label (``labels.*``: ``digit=3``, ``speaker=lucas``, ``category=dog``); the concepts
    that are categories (strings and true booleans: ``family=brass``, ``note=E4``,
    ``noise_colour=pink``; numbers such as ``f0_hz`` or ``velocity`` are measurements, not
    terms, except that ``f0_hz`` gives the ``pitch=`` band of
    :func:`~dissect.description.captioners.base.pitch_terms`, which replaces the exact ``note``);
    the words of a spoken ``text`` /
    ``word`` concept as ``word=...``. With ``fields`` only those fields. Duplicates are
    dropped, order kept (terms are matched case-insensitively downstream). ``drop_columns``:
    labels left out when ``fields`` is None (the set's redundant numeric columns,
    :func:`redundant_label_columns`).
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
            if k not in drop_columns:
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
