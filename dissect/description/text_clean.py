"""Cleaning LLM replies into short summaries (:func:`clean_summary`: leaked chat tokens,
markdown, role prefixes, bullets, lead-ins, repeats, dangling fragments) and the regex sentence
splitter the calibration uses (:func:`split_sentences`, :func:`n_words`).

Used by :mod:`dissect.description.summarize`; plain text in, plain text out.
"""

from __future__ import annotations

import re

#: Sentences shorter than this many words are not kept by :func:`split_sentences`. AND required
#: more than 5 tokens; our summaries are one or two short sentences from a small model, so 3.
MIN_WORDS = 3


# --------------------------------------------------------------------------- sentences

_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019-][A-Za-z0-9]+)*")
# A sentence ends at . ! ? (possibly repeated, possibly followed by closing quotes or brackets)
# that is followed by whitespace or the end of the line. "3.5 kHz" therefore does not split.
_SENT_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)")
_ABBREVIATIONS = frozenset(
    {"e.g.", "i.e.", "etc.", "vs.", "approx.", "cf.", "mr.", "mrs.", "ms.", "dr.", "st.", "no."}
)


def _split(text: str) -> list[str]:
    """All sentence pieces of ``text`` (line breaks always end a piece), no length filter."""
    pieces: list[str] = []
    for line in text.splitlines():
        start = 0
        for m in _SENT_END.finditer(line):
            piece = line[start:m.end()].strip()
            words = piece.split()
            if words and words[-1].lower() in _ABBREVIATIONS:
                continue  # "e.g." and friends do not end a sentence
            if piece:
                pieces.append(piece)
            start = m.end()
        rest = line[start:].strip()
        if rest:
            pieces.append(rest)
    return pieces


def n_words(text: str) -> int:
    """Number of words (letters/digits, with inner apostrophes and hyphens) in ``text``."""
    return len(_WORD.findall(text))


def split_sentences(text: str, min_words: int = MIN_WORDS) -> list[str]:
    """Split ``text`` into sentences with a regex; keep those with at least ``min_words`` words.

    A sentence ends at ``.``, ``!`` or ``?`` followed by whitespace (not after common abbreviations
    such as "e.g."), and at every line break. A regex is enough for the one- or two-sentence
    summaries this runs on and costs no model load.
    """
    return [s for s in _split(text or "") if n_words(s) >= min_words]


# --------------------------------------------------------------------------- cleaning

# Rule 1: chat-template tokens a local model may leak ("<|im_end|>", "</s>", "[INST]", ...).
_SPECIAL_TOKENS = re.compile(r"<\|[^|>]*\|>|</?s>|\[/?INST\]|<</?SYS>>", re.I)
# Rule 2: markdown emphasis and headings ("**loud**", "## Summary").
_MARKDOWN = re.compile(r"\*\*|__|`+|^\s*#+\s*", re.M)
# Rule 3: role prefixes at the start of a line ("assistant:", "Answer:", "Summary -"), or a role
# word alone on its line (what "<|im_start|>assistant" leaves after rule 1).
_ROLE_PREFIX = re.compile(
    r"^\s*(?:assistant|system|user|ai|bot|answer|response|summary)\s*(?:[:\-]\s*|$)", re.I
)
# Rule 4: bullets and numbering at the start of a line ("- ", "* ", "1. ", "2) ", "(a) ").
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u00b7\u2013\u2014>]+\s*|\(?\d{1,2}[.)]\s+|\(?[a-z]\)\s+)")
# Rule 5: lead-ins at the start of a sentence, removed up to the first , : . ! ? (or the end):
# "Sure, here is a summary:" -> "", "Based on the descriptions, they are loud." -> "They are loud."
_LEAD_IN = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|absolutely|great|alright|"
    r"here(?:'s|\u2019s| is| are)|based on|according to|in summary|to summari[sz]e|"
    r"in conclusion|in short|overall|summary)\b[^,:.!?]*(?:[,:.!?]+|$)\s*",
    re.I,
)
# Rule 6: pleasantries and meta talk; a sentence containing one of these is dropped whole.
_CLOSERS = (
    "hope this helps", "hope that helps", "i hope", "let me know", "feel free",
    "any other questions", "any more questions", "any further questions", "need any more help",
    "anything else", "as an ai", "i'm sorry", "i am sorry", "i cannot", "i can't",
    "happy to help", "glad to help",
)
_TERMINAL = re.compile(r"[.!?][\"'\u201d\u2019)\]]*$")


_DANGLING = frozenset(
    "a an the and or but with of to in on at for by from as than that which while its their "
    "is are was were be".split()
)


def _close_fragment(fragment: str) -> str:
    """Close a cut-off sentence: drop trailing punctuation and dangling function words, add "."."""
    words = fragment.rstrip(",;:- .").split()
    while len(words) > 1 and words[-1].lower() in _DANGLING:
        words.pop()
    return " ".join(words).rstrip(",;:- .") + "."


def _strip_lead_ins(sentence: str) -> str:
    while True:
        new = _LEAD_IN.sub("", sentence, count=1).strip()
        if new == sentence:
            return sentence
        sentence = new


_REPEAT = re.compile(r"\b((?:[\w'#-]+,?\s+){0,6}[\w'#-]+)(?:\s*,?\s+\1\b)+", re.IGNORECASE)


def _collapse_repeats(text: str) -> str:
    """Keep once a word or short phrase repeated back to back (rule 9 of clean_summary)."""
    prev = None
    while prev != text:
        prev, text = text, _REPEAT.sub(r"\1", text)
    return text


def clean_summary(text: str, max_chars: int = 300, max_sentences: int = 3) -> str:
    """Defensive clean-up of a small LLM's summary. Rules, in order:

    1. chat-template tokens (``<|im_end|>``, ``</s>``, ``[INST]``) are removed;
    2. markdown emphasis, backticks and heading marks are removed;
    3. role prefixes at line starts (``assistant:``, ``Answer:``, ``Summary:``) are removed;
    4. bullets and numbering at line starts (``-``, ``*``, ``1.``, ``2)``, ``(a)``) are removed,
       and a line ending in ``:`` (a list heading such as "Common features:") is dropped;
       a list item is one statement and gets a period when it has no end mark; so does an
       unpunctuated line followed by a line starting with a capital, while a line starting in
       lowercase continues the previous one (wrapped text);
    5. lead-ins are cut from each sentence up to their first , : . ! ? ("Sure, ...",
       "Here is/are ...", "Based on ...", "In summary, ...", "Overall, ..."); a sentence made only
       of a lead-in disappears, and the rest is capitalised;
    6. sentences with pleasantries or meta talk ("I hope this helps", "Let me know",
       "feel free", "As an AI") are dropped;
    7. repeated sentences (same words, ignoring case and punctuation) are kept once;
    8. an unterminated trailing fragment (output cut off at ``max_tokens``) is dropped when a
       complete sentence precedes it; when it is all there is, it is kept, trailing function
       words ("with a") are cut and it is closed with ".";
    9. whitespace is collapsed to single spaces, and a word or a phrase of up to 7 words
       repeated back to back, with or without commas ("bright, bright, bright", "a mix of a mix
       of") is kept once: small models loop this way at temperature 0;
    10. the length is capped at ``max_sentences`` sentences and ``max_chars`` characters, cutting
        at a sentence end (a single over-long sentence is cut at a word and closed as in 8).

    Returns "" when nothing is left.
    """
    if not text:
        return ""
    text = _collapse_repeats(text)
    text = _SPECIAL_TOKENS.sub(" ", text)
    text = _MARKDOWN.sub("", text)
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        prev, item = None, False
        while line != prev:  # prefixes may be stacked: "assistant: - Answer: ..."
            prev = line
            line = _ROLE_PREFIX.sub("", line)
            stripped = _BULLET.sub("", line).strip()
            item = item or stripped != line
            line = stripped
        if not line or line.endswith(":"):
            continue
        if item and not _TERMINAL.search(line):
            line += "."  # a list item is one complete statement
        if lines and not _TERMINAL.search(lines[-1]):
            if not line[0].isupper():  # a wrapped line continues the previous one
                lines[-1] += " " + line
                continue
            lines[-1] += "."  # an unpunctuated line followed by a new statement
        lines.append(line)
    sentences: list[str] = []
    seen: set[str] = set()
    for piece in _split("\n".join(lines)):
        s = " ".join(_strip_lead_ins(piece).split())
        if not any(c.isalnum() for c in s):
            continue
        low = s.lower()
        if any(c in low for c in _CLOSERS):
            continue
        key = " ".join(_WORD.findall(low))
        if key in seen:
            continue
        seen.add(key)
        sentences.append(s[0].upper() + s[1:])
    if sentences and not _TERMINAL.search(sentences[-1]):
        if len(sentences) > 1:
            sentences.pop()
        else:
            sentences[-1] = _close_fragment(sentences[-1])
    out: list[str] = []
    total = 0
    for s in sentences[:max_sentences]:
        extra = len(s) + (1 if out else 0)
        if total + extra > max_chars:
            break
        out.append(s)
        total += extra
    if not out and sentences:
        cut = sentences[0][:max_chars].rsplit(" ", 1)[0]
        out = [_close_fragment(cut)]
    return " ".join(out)
