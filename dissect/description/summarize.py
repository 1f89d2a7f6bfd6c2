"""LLM summaries of a neuron's top and bottom clips, and their calibration (AND module B).

For every neuron the captions of its k most activating clips ("top") and of its k least activating
clips ("bottom") are each summarised by an LLM. The top summary says what the neuron responds to,
but much of it is usually generic ("these are short recordings of sounds") and holds just as well
for the clips the neuron ignores. Calibration removes those parts: every sentence of the top
summary whose closest bottom-summary sentence is more similar than a threshold is dropped, and
what is left is the calibrated description.

Differences from the official AND code, on purpose:

* Our own prompt, kept tight for a weak 135M chat model (:func:`summary_prompt`), greedy decoding by
  default (``GenerationParams``), and a defensive junk filter for the replies
  (:func:`~dissect.description.text_clean.clean_summary`, in :mod:`dissect.description.text_clean`
  with the sentence splitter).
* Calibration computes the whole cosine matrix and a keep-mask first and filters afterwards (the
  official loop removes items from the list it iterates over, which skips sentences and pairs
  sentences with the wrong embeddings).
* The threshold is an explicit value, with a default chosen by measurement
  (:data:`DEFAULT_THRESHOLD`).
* When every sentence is dropped the calibrated description is empty and flagged, never silently
  replaced by the uncalibrated one.

Nothing here reads or writes files; the summaries stage wraps :func:`summarize_neurons` and writes
``summaries.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from dissect.description.llm.base import Chat, Completion, GenerationParams, LLMClient
from dissect.description.text_clean import (  # noqa: F401  (MIN_WORDS, n_words: re-exported)
    MIN_WORDS,
    clean_summary,
    n_words,
    split_sentences,
)

# The rule-based LLM client (``dissect.description.llm.rules``) reads the captions back out of our
# prompt, so both sides share the header lines. The values below are the agreed ones, used only
# while that module is absent (it is written alongside this one).
try:
    from dissect.description.llm.rules import BOTTOM_HEADER, TOP_HEADER
except ImportError:  # pragma: no cover - depends on which modules are present
    TOP_HEADER = "Top clips:"
    BOTTOM_HEADER = "Bottom clips:"

#: Default calibration threshold: a top-summary sentence is dropped when its cosine to some
#: bottom-summary sentence is *greater than* this value.
#:
#: AND's code uses 0.5 (with all-MiniLM-L12-v2; its ``--mutual_info_threshold`` of 0.6 is never
#: passed) and the paper's Module B figure shows 0.9. We measured all-MiniLM-L6-v2, the embedder
#: used here, on summary-style sentence pairs:
#:
#: * paraphrases and shared filler score 0.74-0.95 ("The recordings have background noise." vs
#:   "There is some background noise in the recordings." 0.95; "They are all low-quality
#:   recordings." vs "All of them are recorded at low quality." 0.89);
#: * *contrasting* sentences built on the same template score nearly as high ("The sounds are loud
#:   and percussive." vs "The sounds are quiet and smooth." 0.83; "...played on a piano." vs
#:   "...played on a guitar." 0.74; "...all high-pitched musical notes." vs "...low, rumbling
#:   noises." 0.57), because MiniLM barely separates antonyms;
#: * unrelated sentences score below 0.3.
#:
#: Top and bottom summaries from one small model share their template, so at 0.5 nearly every
#: top sentence would be dropped, including exactly the contrastive ones that describe the neuron.
#: 0.85 drops near-duplicates and close paraphrases and keeps most contrastive sentences. It cannot
#: keep all of them: "The notes are high in pitch." vs "The notes are low in pitch." scores 0.91
#: and is dropped at any threshold that still removes paraphrases. Pass ``threshold=0.5`` to mimic
#: AND's code.
DEFAULT_THRESHOLD = 0.85

_SYSTEM_PROMPT = "You describe what short sound clips have in common. Answer plainly and briefly."
_QUESTION = "In one or two sentences, what do these sounds have in common?"


class Embedder(Protocol):
    """Anything with ``encode(texts) -> [n, d]`` array (unit-norm rows expected)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


# --------------------------------------------------------------------------- prompt


def summary_prompt(captions: Sequence[str], which: Literal["top", "bottom"]) -> Chat:
    """The chat asking an LLM what a neuron's ``which`` clips have in common.

    Layout of the user message (the rule-based client parses it back):
    the header line (:data:`TOP_HEADER` or :data:`BOTTOM_HEADER`), then one caption per line (inner
    whitespace and line breaks collapsed to single spaces, empty captions left out), then a blank
    line and the question.
    """
    if which == "top":
        header = TOP_HEADER
    elif which == "bottom":
        header = BOTTOM_HEADER
    else:
        raise ValueError(f"which must be 'top' or 'bottom', not {which!r}")
    lines = [" ".join(c.split()) for c in captions]
    lines = [c for c in lines if c]
    user = "\n".join([header, *lines]) + "\n\n" + _QUESTION
    return [{"role": "system", "content": _SYSTEM_PROMPT}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------- calibration


@dataclass
class CalibrationResult:
    """The outcome of :func:`calibrate`.

    Attributes:
        kept: the top-summary sentences that survive, in their original order.
        dropped: ``(sentence, best_match, cosine)`` for every removed sentence, in order, where
            ``best_match`` is the most similar bottom-summary sentence.
        threshold: the threshold used.
        all_dropped: True when the top summary had sentences and every one was dropped (then
            ``kept`` is empty: the neuron has no calibrated description).
    """

    kept: list[str]
    dropped: list[tuple[str, str, float]]
    threshold: float
    all_dropped: bool = False


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def calibrate(high: str | Sequence[str], low: str | Sequence[str], embedder: Embedder | None,
              threshold: float = DEFAULT_THRESHOLD) -> CalibrationResult:
    """Drop the sentences of the top summary that the bottom summary also says.

    Both summaries are split with :func:`split_sentences` (a list is taken as sentences already).
    A top sentence is dropped when its maximum cosine to any bottom sentence is strictly greater
    than ``threshold``. The full ``[n_high, n_low]`` cosine matrix and the keep-mask are computed
    first and the list is filtered afterwards. Embeddings are re-normalised (float64), so an
    embedder that does not return unit rows still gives cosines. ``embedder`` is only used when
    both summaries have sentences (None is fine otherwise).
    """
    hs = split_sentences(high) if isinstance(high, str) else list(high)
    ls = split_sentences(low) if isinstance(low, str) else list(low)
    if not hs or not ls:
        return CalibrationResult(kept=hs, dropped=[], threshold=threshold)
    if embedder is None:
        raise ValueError("calibrate needs an embedder when both summaries have sentences")
    cos = _unit_rows(embedder.encode(hs)) @ _unit_rows(embedder.encode(ls)).T  # [nh, nl]
    best = cos.argmax(axis=1)
    best_cos = cos[np.arange(len(hs)), best]
    keep = best_cos <= threshold
    kept = [s for s, k in zip(hs, keep, strict=True) if k]
    dropped = [(s, ls[j], float(c)) for s, j, c, k in zip(hs, best, best_cos, keep, strict=True)
               if not k]
    return CalibrationResult(kept=kept, dropped=dropped, threshold=threshold,
                             all_dropped=not keep.any())


class _CachedEmbedder:
    """Serves embeddings computed once for all neurons (one batched encode call)."""

    def __init__(self, embedder: Embedder, texts: Sequence[str]):
        unique = list(dict.fromkeys(texts))
        vecs = embedder.encode(unique) if unique else np.zeros((0, 1), dtype=np.float32)
        self._index = {t: i for i, t in enumerate(unique)}
        self._vecs = np.asarray(vecs)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._vecs[[self._index[t] for t in texts]]


# --------------------------------------------------------------------------- neurons


@dataclass
class NeuronSummary:
    """One neuron's summaries (one row of ``summaries.jsonl``).

    Attributes:
        layer, unit: the neuron.
        high: the cleaned summary of its top clips ("" when it failed).
        low: the cleaned summary of its bottom clips ("" when it failed).
        calibrated: the kept sentences of ``high`` (those of at least :data:`MIN_WORDS` words)
            joined by spaces; "" when none are kept.
        dropped: the removed sentences: ``{"sentence", "match", "cosine"}``.
        llm: the LLM(s) that wrote the summaries (``Completion.llm``; " + "-joined if they differ).
        errors: what went wrong (failed calls, missing captions); empty when all went well.
        failed: an LLM call for this neuron failed (after the client's retries); its text is
            then incomplete and must not be taken for the LLM's answer.
        all_dropped: calibration removed every sentence of ``high``.
        threshold: the calibration threshold.
        top_clips, bottom_clips: the clip ids whose captions were summarised.
        raw_high, raw_low: the LLM replies before :func:`clean_summary`.
    """

    layer: str
    unit: int
    high: str
    low: str
    calibrated: str
    dropped: list[dict[str, Any]]
    llm: str
    errors: list[str] = field(default_factory=list)
    failed: bool = False
    all_dropped: bool = False
    threshold: float = DEFAULT_THRESHOLD
    top_clips: list[str] = field(default_factory=list)
    bottom_clips: list[str] = field(default_factory=list)
    raw_high: str = ""
    raw_low: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _get(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, Mapping) else getattr(obj, name)


def _clip_id(entry: Any) -> str:
    """A clip entry is an id, or an exemplar entry ``{"clip": id, "value": ...}``."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping):
        return str(entry["clip"])
    return str(getattr(entry, "clip", entry))


def _caption(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "; ".join(str(v) for v in value if v)  # several captioners per clip


def summarize_neurons(
    neurons: Sequence[Any],
    captions_by_clip: Mapping[str, Any],
    client: LLMClient,
    params: GenerationParams | None = None,
    k: int | None = 5,
    *,
    embedder: Embedder | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int | None = None,
    clean: Callable[[str], str] = clean_summary,
) -> list[NeuronSummary]:
    """Summarise and calibrate every neuron; one :class:`NeuronSummary` per neuron, in order.

    Args:
        neurons: exemplar rows (dicts or objects) with ``layer``, ``unit``, ``top`` and ``bottom``;
            ``top``/``bottom`` list clip ids or ``{"clip": id, ...}`` entries, most extreme first.
        captions_by_clip: clip id -> caption (or a list of captions, joined with "; ").
        client: the LLM. All chats go to ``client.generate`` in one call (or in chunks of
            ``batch_size``); the client bounds its own concurrency.
        params: decoding settings (default: greedy ``GenerationParams()``).
        k: how many top and bottom clips to summarise (None: all given).
        embedder: for calibration (default: the shared all-MiniLM-L6-v2); loaded only when some
            neuron has both summaries. All sentences are embedded in one batched call.
        threshold: calibration threshold, see :data:`DEFAULT_THRESHOLD`.
        batch_size: chats per ``generate`` call (None: all in one call).
        clean: the reply cleaner.

    A failed call, a missing caption or a client exception becomes an entry of ``errors`` and the
    run goes on. When the bottom summary is missing, calibration cannot run: ``calibrated`` holds
    all sentences of the top summary and ``errors`` says so.
    """
    params = params or GenerationParams()
    rows: list[dict[str, Any]] = []
    chats: list[Chat] = []
    owners: list[tuple[int, str]] = []  # (row index, "top" | "bottom") of each chat
    for n in neurons:
        row: dict[str, Any] = {"layer": str(_get(n, "layer")), "unit": int(_get(n, "unit")),
                               "errors": []}
        for side in ("top", "bottom"):
            ids = [_clip_id(e) for e in _get(n, side)]
            ids = ids[:k] if k is not None else ids
            row[f"{side}_clips"] = ids
            missing = [c for c in ids if c not in captions_by_clip]
            if missing:
                row["errors"].append(f"{side}: no caption for clips {missing}")
            caps = [_caption(captions_by_clip[c]) for c in ids if c in captions_by_clip]
            if any(c.strip() for c in caps):
                owners.append((len(rows), side))
                chats.append(summary_prompt(caps, side))
            else:
                row["errors"].append(f"{side}: no captions to summarise")
        rows.append(row)

    completions = _generate(client, chats, params, batch_size)
    for (i, side), comp in zip(owners, completions, strict=True):
        rows[i][side] = comp

    texts: dict[tuple[int, str], str] = {}
    for i, row in enumerate(rows):
        for side in ("top", "bottom"):
            comp: Completion | None = row.get(side)
            if comp is None:
                continue
            if not comp.ok:
                row["errors"].append(f"{side}: LLM call failed: {comp.error}")
                row["failed"] = True
                continue
            cleaned = clean(comp.text)
            if not cleaned:
                row["errors"].append(f"{side}: empty summary after cleaning")
            texts[i, side] = cleaned

    pairs = [(i, texts[i, "top"], texts[i, "bottom"]) for i in range(len(rows))
             if (i, "top") in texts and (i, "bottom") in texts]
    cached: _CachedEmbedder | None = None
    split = {i: (split_sentences(h), split_sentences(lo)) for i, h, lo in pairs}
    if any(hs and ls for hs, ls in split.values()):
        if embedder is None:
            from dissect.description.embed import default_embedder

            embedder = default_embedder()
        cached = _CachedEmbedder(embedder, [s for hs, ls in split.values() for s in hs + ls])

    out: list[NeuronSummary] = []
    for i, row in enumerate(rows):
        high, low = texts.get((i, "top"), ""), texts.get((i, "bottom"), "")
        if i in split:  # both summaries exist; the embedder is touched only if both split
            res = calibrate(split[i][0], split[i][1], cached, threshold)
        else:
            res = calibrate(high, "", None, threshold)
            if high:
                row["errors"].append("calibration skipped: no bottom summary")
        calibrated = " ".join(res.kept)
        dropped = [{"sentence": s, "match": m, "cosine": round(c, 4)} for s, m, c in res.dropped]
        comps = [row[s] for s in ("top", "bottom") if row.get(s) is not None]
        llm = " + ".join(dict.fromkeys(c.llm for c in comps)) or client.name
        out.append(NeuronSummary(
            layer=row["layer"], unit=row["unit"], high=high, low=low, calibrated=calibrated,
            dropped=dropped, llm=llm, errors=row["errors"], failed=row.get("failed", False),
            all_dropped=res.all_dropped,
            threshold=threshold, top_clips=row["top_clips"], bottom_clips=row["bottom_clips"],
            raw_high=row["top"].text if row.get("top") is not None else "",
            raw_low=row["bottom"].text if row.get("bottom") is not None else "",
        ))
    return out


def _generate(client: LLMClient, chats: Sequence[Chat], params: GenerationParams,
              batch_size: int | None) -> list[Completion]:
    """``client.generate`` over ``chats`` in chunks; a raising client fails only its chunk."""
    if not chats:
        return []
    size = batch_size or len(chats)
    out: list[Completion] = []
    for start in range(0, len(chats), size):
        chunk = list(chats[start:start + size])
        try:
            got = list(client.generate(chunk, params))
            if len(got) != len(chunk):
                raise RuntimeError(f"client returned {len(got)} completions for {len(chunk)} chats")
        except Exception as exc:  # the protocol says clients never raise; stay robust anyway
            got = [Completion(text="", llm=client.name, error=f"{type(exc).__name__}: {exc}")
                   for _ in chunk]
        out.extend(got)
    return out
