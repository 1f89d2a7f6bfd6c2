"""A summariser without an LLM: contrastive word statistics over top and bottom captions.

Entry point: :func:`describe_contrast`. :class:`RuleBasedClient` wraps it in the
:class:`~dissect.description.llm.base.LLMClient` protocol so it can stand in for an LLM.

Prompt convention (shared with the summariser, which builds chats with :func:`format_captions`):
the last user message that contains a line equal to :data:`TOP_HEADER` (``"Top clips:"``)
lists one caption per line after it; optionally a line equal to :data:`BOTTOM_HEADER`
(``"Bottom clips:"``) starts the bottom captions. A block ends at the first empty line, at the
other header, or at the end of the message. A leading bullet (``"- "``, ``"* "``, ``"3. "``,
``"3) "``) on a caption line is removed. Text before the first header or after a block's blank
line (instructions) is ignored.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from dissect.description.llm.base import Chat, Completion, GenerationParams

#: Line that starts the list of top-activating clips' captions (one caption per line).
TOP_HEADER = "Top clips:"
#: Line that starts the (optional) list of bottom-activating clips' captions.
BOTTOM_HEADER = "Bottom clips:"
#: Smoothing pseudo-count ``a`` of the log-odds score.
SMOOTHING = 0.5
#: Default number of terms per side in the sentence.
TOP_N = 4

#: English function words, plus words that describe every caption ("sound", "audio", ...).
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either few for
    from further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not of off on once only or other our out over own per same she
    should so some such than that the their them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you
    your
    sound sounds sounding audio clip clips recording recorded heard hear hearing like
    around family note velocity hz dbfs labels label category audioset
    """.split()
)

# Words, hyphenated words and note names (``c#5`` stays one token).
_TOKEN = re.compile(r"[a-z0-9#]+(?:[-'][a-z0-9#]+)*")
_BREAK = re.compile(r"[,.;:!?()\[\]{}/|\"]+")
_BULLET = re.compile(r"^(?:[-*\u2022]\s+|\d+[.)]\s+)")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens (hyphenated words kept whole, trailing "'s" dropped)."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if tok.endswith("'s"):
            tok = tok[:-2]
        out.append(tok)
    return out


def _keep(tok: str) -> bool:
    return tok not in STOPWORDS and not tok.replace("-", "").replace("'", "").isdigit()


def terms(text: str) -> set[str]:
    """The set of terms of one caption: kept unigrams, and bigrams of two *adjacent* kept words
    (a dropped stopword or number, or punctuation, in between breaks the pair)."""
    return set(_terms(text))


@lru_cache(maxsize=1 << 16)
def _terms(text: str) -> frozenset[str]:
    """:func:`terms`, once per distinct caption: at AND's size every clip's caption is among
    the exemplars of thousands of neurons."""
    out: set[str] = set()
    for segment in _BREAK.split(text):
        toks = tokenize(segment)
        out.update(t for t in toks if _keep(t))
        for a, b in zip(toks, toks[1:], strict=False):
            if _keep(a) and _keep(b):
                out.add(f"{a} {b}")
    return frozenset(out)


def _doc_freq(captions: Iterable[str]) -> Counter:
    df: Counter = Counter()
    for c in captions:
        df.update(_terms(c))
    return df


def contrast_scores(
    top_captions: Sequence[str], bottom_captions: Sequence[str], a: float = SMOOTHING
) -> dict[str, tuple[float, int, int]]:
    """Smoothed log-odds of each term's document frequency, top versus bottom.

    For a term in ``d_t`` of the ``n_t`` top captions and ``d_b`` of the ``n_b`` bottom ones::

        score = log((d_t + a) / (n_t - d_t + a)) - log((d_b + a) / (n_b - d_b + a))

    with ``a`` = :data:`SMOOTHING`. Positive: typical of the top clips; negative: of the bottom.

    Returns:
        term -> (score, d_t, d_b), for every term seen on either side.
    """
    n_t, n_b = len(top_captions), len(bottom_captions)
    df_t, df_b = _doc_freq(top_captions), _doc_freq(bottom_captions)
    out = {}
    for term in set(df_t) | set(df_b):
        d_t, d_b = df_t[term], df_b[term]
        s = math.log((d_t + a) / (n_t - d_t + a)) - math.log((d_b + a) / (n_b - d_b + a))
        out[term] = (s, d_t, d_b)
    return out


def _pick(ranked: list[str], top_n: int) -> list[str]:
    """Take terms in rank order, skipping any that shares a word with one already taken."""
    chosen: list[str] = []
    used: set[str] = set()
    for term in ranked:
        words = set(term.split())
        if words & used:
            continue
        chosen.append(term)
        used |= words
        if len(chosen) == top_n:
            break
    return chosen


def contrast_terms(
    top_captions: Sequence[str], bottom_captions: Sequence[str], top_n: int = TOP_N
) -> tuple[list[str], list[str]]:
    """The ``top_n`` most top-typical and most bottom-typical terms (see :func:`contrast_scores`).

    Top side: terms with ``d_t > 0`` and score > 0, by score descending; bottom side: terms with
    ``d_b > 0`` and score < 0, by score ascending. Ties: bigrams before unigrams (more specific),
    then higher document frequency on that side, then alphabetical. A term sharing a word with an
    already chosen term is skipped, so "high register" is not followed by "high".
    """
    scores = contrast_scores(top_captions, bottom_captions)

    def order(sign: int, side: int):
        def key(term: str):
            s, *dfs = scores[term]
            return (-sign * s, -len(term.split()), -dfs[side], term)

        return key

    pos = sorted((t for t, v in scores.items() if v[1] > 0 and v[0] > 0), key=order(+1, 0))
    neg = sorted((t for t, v in scores.items() if v[2] > 0 and v[0] < 0), key=order(-1, 1))
    return _pick(pos, top_n), _pick(neg, top_n)


def describe_contrast(
    top_captions: list[str], bottom_captions: list[str], top_n: int = TOP_N
) -> str:
    """A one-sentence template description from contrastive term statistics. Deterministic.

    Example:
        "Responds most to sounds described as: violin, high register; least to: noise, broadband."
    """
    pos, neg = contrast_terms(top_captions, bottom_captions, top_n)
    if pos and neg:
        most, least = ", ".join(pos), ", ".join(neg)
        return f"Responds most to sounds described as: {most}; least to: {least}."
    if pos:
        return f"Responds most to sounds described as: {', '.join(pos)}."
    if neg:
        return f"No distinctive terms in its top clips; responds least to: {', '.join(neg)}."
    return "No distinctive terms in the captions of its top clips."


def format_captions(top_captions: Sequence[str], bottom_captions: Sequence[str] = ()) -> str:
    """The caption block of the prompt convention: ``TOP_HEADER``, one ``- caption`` per line,
    then (if any) a blank line, ``BOTTOM_HEADER`` and its captions. Newlines inside a caption are
    replaced by spaces; empty captions are dropped."""

    def lines(caps: Sequence[str]) -> list[str]:
        return [f"- {' '.join(c.split())}" for c in caps if c and c.strip()]

    out = [TOP_HEADER, *lines(top_captions)]
    if bottom_captions:
        out += ["", BOTTOM_HEADER, *lines(bottom_captions)]
    return "\n".join(out)


def parse_captions(text: str) -> tuple[list[str], list[str]] | None:
    """Inverse of :func:`format_captions` (module docstring); None without ``TOP_HEADER``."""
    lines = text.splitlines()
    stripped = [ln.strip() for ln in lines]
    if TOP_HEADER not in stripped:
        return None

    def block(start: int) -> list[str]:
        caps = []
        for ln in stripped[start + 1 :]:
            if not ln or ln in (TOP_HEADER, BOTTOM_HEADER):
                break
            caps.append(_BULLET.sub("", ln).strip())
        return [c for c in caps if c]

    top = block(stripped.index(TOP_HEADER))
    bottom = block(stripped.index(BOTTOM_HEADER)) if BOTTOM_HEADER in stripped else []
    return top, bottom


class RuleBasedClient:
    """The :class:`LLMClient` protocol without an LLM: parses the caption block of the last user
    message (module docstring) and answers with :func:`describe_contrast`. ``params`` are ignored
    (the output is deterministic); a chat without the block gets ``Completion(error=...)``."""

    name = "rule-based (no LLM)"

    def __init__(self, top_n: int = TOP_N):
        self.top_n = top_n

    def __repr__(self) -> str:
        return f"RuleBasedClient(top_n={self.top_n})"

    def describe_contrast(
        self, top_captions: list[str], bottom_captions: list[str], top_n: int | None = None
    ) -> str:
        return describe_contrast(top_captions, bottom_captions, top_n or self.top_n)

    def _one(self, chat: Chat) -> Completion:
        for msg in reversed(chat):
            if msg.get("role") != "user":
                continue
            parsed = parse_captions(msg.get("content", ""))
            if parsed is None:
                continue
            top, bottom = parsed
            if not top:
                return Completion("", self.name, error=f"no captions after {TOP_HEADER!r}")
            return Completion(self.describe_contrast(top, bottom), self.name)
        return Completion(
            "", self.name, error=f"no user message with a {TOP_HEADER!r} caption block"
        )

    def generate(self, chats: Sequence[Chat], params: GenerationParams) -> list[Completion]:
        return [self._one(c) for c in chats]
