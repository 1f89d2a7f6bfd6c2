"""What a neuron card shows, as one compact row of JSON values (``report.js`` renders it).

The report page holds no card markup: ``report.js`` builds a card from its row in a per-layer
data shard (:mod:`dissect.report.shards`) when the card is opened, with ``createElement``,
``textContent`` and ``setAttribute`` only, so no artifact string (description, LLM name,
concept, keyword, clip id, caption) is ever parsed as HTML.

A row is a list whose positions are named by :data:`FIELDS` (each shard carries the names once,
and the page looks fields up by name). What each position holds:

- ``unit`` int; ``rank`` int, the neuron's place in :func:`dissect.report.build.order_neurons`;
- ``flags`` int, bits :data:`FLAG_LLM` (an LLM wrote the summary), :data:`FLAG_NCC` (no clear
  concept), :data:`FLAG_RICH` (the card gets spectrograms and inline players);
- ``desc`` the shown description; ``kind`` the explain stage's shown candidate kind (None: no
  explain row); ``why`` its no-clear-concept reason (``""`` otherwise); ``writer`` the
  summariser's name (``""``: no summary); these three are indexes into the shard's ``strings``
  (they repeat across a layer);
- ``sel`` selectivity; ``det``/``corr`` test-split detection AUROC and correlation (None: not
  scored);
- ``low`` AND's low summary; ``failed`` the failed-LLM marks (:attr:`Neuron.llm_failures`);
- ``evidence`` ``[[term, auroc, effect, support], ...]``, the first :data:`EVIDENCE_SHOWN`;
- ``concepts`` ``[[method, [[concept, score], ...]], ...]`` in :func:`ordered_methods` order;
- ``keywords`` ``[adjectives, nouns, verbs, other]``, lists of words (``other``: words of the
  remaining keyword groups, searched but not shown);
- ``top``/``bottom`` ``[[clip, value, peak_ms], ...]``, the first k exemplars, ``clip`` an
  index into the clip table;
- ``overlays`` (rich cards only, else None) ``[[clip, peak_x, points, lo, hi], ...]``: the
  spectrogram overlay of the clip, ``peak_x`` the recorded peak in viewBox units (0..1000),
  ``points`` the activation polyline as flat ``[x0, y0, x1, y1, ...]`` in tenths of viewBox
  units (viewBox 1000x100), ``lo``/``hi`` the activation range.

Numbers: scores read from artifacts (AUROC, correlation, evidence, concept scores) keep the
artifact's value to :data:`ARTIFACT_DIGITS` significant digits (every digit the stages write);
numbers derived here or raw activations (selectivity, exemplar values and peaks, activation
ranges) are rounded to the :data:`SHOWN_DIGITS` significant digits the card shows. Non-finite
floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no such numbers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dissect.report.data import Neuron

#: Closed-set methods in the order cards list them.
METHOD_ORDER = ("db", "tab", "icl")
#: Keyword groups shown as chips, in order (the rest are only searched).
KEYWORD_GROUPS = ("adjectives", "nouns", "verbs")
#: Evidence terms a card lists.
EVIDENCE_SHOWN = 5
#: Significant digits kept of artifact scores, and of numbers derived for display.
ARTIFACT_DIGITS = 6
SHOWN_DIGITS = 4

FLAG_LLM, FLAG_NCC, FLAG_RICH = 1, 2, 4

FIELDS = ("unit", "rank", "flags", "desc", "kind", "why", "writer", "sel", "det", "corr", "low",
          "failed", "evidence", "concepts", "keywords", "top", "bottom", "overlays")


def slug(text: str, limit: int = 60) -> str:
    """A file- and id-safe slug (``[A-Za-z0-9._-]``)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "x"
    return s[:limit]


def card_id(n: Neuron) -> str:
    """The card's element id (``report.js`` builds the same from the shard's ``slug``)."""
    return f"n-{slug(n.layer)}-{n.unit}"


def ordered_methods(closed: Mapping[str, Any]) -> list[str]:
    """Closed-set methods present, known ones first."""
    return [m for m in METHOD_ORDER if m in closed] + sorted(m for m in closed
                                                             if m not in METHOD_ORDER)


def search_text(n: Neuron) -> str:
    """Lower-case text the filter box matches: layer, unit, description, concepts, keywords.

    ``report.js`` builds the same text from the card row (a browser test checks they agree).
    """
    closed = n.concepts.get("closed") or {}
    kw = n.concepts.get("keywords") or {}
    parts = [n.layer, f"{n.layer}:{n.unit}", f"unit {n.unit}", n.description,
             str(n.summary.get("low") or ""), n.llm, "llm failed" if n.llm_failures else ""]
    for m in ordered_methods(closed):
        parts += [str(c[0]) for c in closed[m] if c]
    for words in kw.values():
        if isinstance(words, list):
            parts += [str(w) for w in words]
    return " ".join(parts).lower()


def round_sig(x: Any, digits: int) -> Any:
    """``x`` rounded to ``digits`` significant digits (ints and non-numbers unchanged;
    non-finite floats as ``"nan"``/``"inf"``/``"-inf"``; integral floats as ints)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return x
    if isinstance(x, int):
        return x
    if not math.isfinite(x):
        return str(x)
    r = float(f"{x:.{digits}g}")
    return int(r) if r.is_integer() and abs(r) < 2**53 else r


def _num(x: Any, digits: int) -> Any:
    """A number for the row: rounded (see :func:`round_sig`), None for anything else."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return round_sig(x, digits)


def _score(x: Any) -> Any:
    """A concept score: a number (artifact digits), None, or its text (shown as is)."""
    if x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)):
        return _num(x, ARTIFACT_DIGITS)
    return str(x)


def _concepts(closed: Mapping[str, Any]) -> list[list[Any]]:
    out = []
    for m in ordered_methods(closed):
        items = [[str(it[0]), _score(it[1] if len(it) > 1 else None)]
                 for it in closed[m] or [] if it]
        out.append([str(m), items])
    return out


def _keywords(kw: Mapping[str, Any]) -> list[list[str]]:
    shown = [[str(w) for w in kw.get(g) or []] for g in KEYWORD_GROUPS]
    seen = {w for ws in shown for w in ws}
    other: list[str] = []
    for group, words in kw.items():
        if group in KEYWORD_GROUPS or not isinstance(words, list):
            continue
        for w in map(str, words):
            if w not in seen:
                seen.add(w)
                other.append(w)
    return [*shown, other]


def _exemplars(entries: Sequence[Mapping[str, Any]] | None, k: int,
               clip_index: Mapping[str, int]) -> list[list[Any]]:
    return [[clip_index[str(e.get("clip"))], _num(e.get("value"), SHOWN_DIGITS),
             _num(e.get("peak_ms"), SHOWN_DIGITS)] for e in list(entries or [])[:k]]


def _evidence(n: Neuron) -> list[list[Any]]:
    return [[str(e.get("term")), _num(e.get("auroc"), ARTIFACT_DIGITS),
             _num(e.get("effect"), ARTIFACT_DIGITS), e.get("support")]
            for e in n.evidence[:EVIDENCE_SHOWN]]


def card_row(n: Neuron, k: int, rank: int, clip_index: Mapping[str, int],
             strings: dict[str, int], overlays: list[list[Any]] | None = None) -> list[Any]:
    """The card row of ``n`` (positions: :data:`FIELDS`).

    Args:
        n: the neuron.
        k: exemplars per side shown.
        rank: its place in the card order.
        clip_index: clip id -> index into the clip table (must hold every shown exemplar).
        strings: the shard's string table (text -> index); new strings are appended.
        overlays: the rich card's spectrogram overlays (see the module docstring), or None.
    """
    test = (n.explanation.get("test") or {}) if n.explanation else {}
    flags = (FLAG_LLM * n.by_llm) | (FLAG_NCC * n.no_clear_concept) | \
        (FLAG_RICH * (overlays is not None))

    def intern(text: str) -> int:
        return strings.setdefault(text, len(strings))

    row = {
        "unit": n.unit, "rank": rank, "flags": flags, "desc": n.description,
        "kind": intern(str(n.explanation.get("kind") or "")) if n.explanation else None,
        "why": intern(str(n.explanation.get("why") or "") if n.no_clear_concept else ""),
        "writer": intern(n.llm), "sel": _num(n.selectivity, SHOWN_DIGITS),
        "det": _num(test.get("detection"), ARTIFACT_DIGITS),
        "corr": _num(test.get("correlation"), ARTIFACT_DIGITS),
        "low": str(n.summary.get("low") or ""), "failed": n.llm_failures,
        "evidence": _evidence(n), "concepts": _concepts(n.concepts.get("closed") or {}),
        "keywords": _keywords(n.concepts.get("keywords") or {}),
        "top": _exemplars(n.exemplar.get("top"), k, clip_index),
        "bottom": _exemplars(n.exemplar.get("bottom"), k, clip_index),
        "overlays": overlays,
    }
    return [row[f] for f in FIELDS]


#: Row fields stored as indexes into the shard's ``strings``.
INTERNED = ("kind", "why", "writer")


def row_dict(row: Sequence[Any], fields: Sequence[str] = FIELDS,
             strings: Sequence[str] | None = None) -> dict[str, Any]:
    """A card row as ``{field: value}``, the :data:`INTERNED` fields resolved when ``strings``
    (the shard's table) is given (for tests and scripts reading shards)."""
    d = dict(zip(fields, row, strict=True))
    if strings is not None:
        for f in INTERNED:
            if d.get(f) is not None:
                d[f] = strings[d[f]]
    return d
