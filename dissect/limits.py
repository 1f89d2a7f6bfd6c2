"""Length limits on free text that enters a run from outside: label values and captions.

One 100 kB label once made a 239 MB run directory (the value is copied into ``clips.jsonl``,
every caption, every prompt and every report page that shows the clip) and a report that did
not finish. Text longer than its limit is cut where it enters, with a visible marker and a
warning that says where it came from:

* a label value (each string of a metadata row's values but its path, list items included) is
  cut to :data:`MAX_LABEL_CHARS` where the folder layout reads the table (the warning names the
  table, its row and the clip id), and any clip of any layout still over it when its
  :class:`~dissect.datasets.ProbeSet` is built (the warning names the set's root and the clip);
* a caption is cut to :data:`MAX_CAPTION_CHARS` by
  :func:`dissect.description.captioners.base.annotate`, where every caption is made, and again when
  captions are read back (:mod:`dissect.description.captions`).

The limits are generous for what these texts are: a label is a class name or a short tag (the
label captioner already treats anything over 40 characters as free text, not a term), a
caption a sentence or two per captioner.
"""

from __future__ import annotations

import warnings
from typing import Any

#: Longest label value kept whole, in characters (marker included).
MAX_LABEL_CHARS = 200
#: Longest caption (one captioner's text for one clip) kept whole, in characters.
MAX_CAPTION_CHARS = 1000
#: Ends a cut text, so a reader sees that something was left out.
CUT_MARKER = "…[cut]"

class TextCutWarning(UserWarning):
    """A label or caption was longer than its limit and was cut."""


def cut_text(text: str, limit: int, where: str, what: str = "text") -> str:
    """``text`` itself when it has at most ``limit`` characters, else its first
    ``limit - len(CUT_MARKER)`` characters plus :data:`CUT_MARKER` (exactly ``limit`` long), with
    a :class:`TextCutWarning` naming ``where`` it came from.

    Args:
        text: the text.
        limit: most characters kept, marker included (at least the marker's length).
        where: where the text came from, for the warning (file and row, clip id, captioner).
        what: what it is (``label 'category'``, ``caption``), for the warning.
    """
    if len(text) <= limit:
        return text
    if limit < len(CUT_MARKER):
        raise ValueError(f"limit {limit} is shorter than the cut marker {CUT_MARKER!r}")
    message = (f"{where}: {what} has {len(text):,} characters, more than the limit of {limit}; "
               f"cut to {limit} (ending in {CUT_MARKER!r})")
    warnings.warn(message, TextCutWarning, stacklevel=2)
    return text[: limit - len(CUT_MARKER)] + CUT_MARKER


def cut_label(value: Any, where: str, key: str, limit: int = MAX_LABEL_CHARS) -> Any:
    """A label value with every string in it (lists and dict values too) cut to ``limit``
    (:func:`cut_text`); other values unchanged."""
    if isinstance(value, str):
        return cut_text(value, limit, where, f"label {key!r}")
    if isinstance(value, list):
        return [cut_label(v, where, key, limit) for v in value]
    if isinstance(value, tuple):
        return tuple(cut_label(v, where, key, limit) for v in value)
    if isinstance(value, dict):
        return {k: cut_label(v, where, f"{key}.{k}", limit) for k, v in value.items()}
    return value


def cut_labels(labels: dict[str, Any], where: str, limit: int = MAX_LABEL_CHARS
               ) -> dict[str, Any]:
    """``labels`` with every string value cut to ``limit`` (:func:`cut_label`); the same dict
    object when nothing is too long."""
    out = {k: cut_label(v, where, k, limit) for k, v in labels.items()}
    return labels if out == labels else out
