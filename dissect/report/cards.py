"""Neuron cards: description, writer, closed-set concepts, keywords, top and bottom clips.

Cards with spectrograms carry ``<audio controls>`` players. The other cards carry plain links
to the same WAV files that ``report.js`` turns into a player on click: Chromium needs about 4 ms
per ``<audio controls>`` element to build its media controls, so thousands of them (632 CREPE
tiny neurons x 10 clips) would keep the page from loading for tens of seconds.

Every string that comes from an artifact (descriptions, LLM names, concepts, keywords, clip ids,
captions) is escaped with :func:`dissect.report.html.esc`, in text and in attributes alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dissect.report.data import Neuron
from dissect.report.html import esc, fmt_num
from dissect.report.plots import score_bar_svg

#: Closed-set methods in the order cards list them.
METHOD_ORDER = ("db", "tab", "icl")


@dataclass
class ClipMedia:
    """Report-relative files for one exemplar clip of one card (None when not available)."""

    audio: str | None = None
    image: str | None = None
    caption: str = ""
    overlay: str = ""  # trusted SVG built from numbers only (plots.activation_svg)
    act_range: tuple[float, float] | None = None
    inline: bool = True  # an <audio controls> player; False: a play link (see _clip_html)


def slug(text: str, limit: int = 60) -> str:
    """A file- and id-safe slug (``[A-Za-z0-9._-]``)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "x"
    return s[:limit]


def card_id(n: Neuron) -> str:
    return f"n-{slug(n.layer)}-{n.unit}"


def ordered_methods(closed: Mapping[str, Any]) -> list[str]:
    """Closed-set methods present, known ones first."""
    return [m for m in METHOD_ORDER if m in closed] + sorted(m for m in closed
                                                             if m not in METHOD_ORDER)


def search_text(n: Neuron) -> str:
    """Lower-case text the filter box matches: layer, unit, description, concepts, keywords."""
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


def _concepts_html(closed: Mapping[str, Any]) -> str:
    rows = []
    for m in ordered_methods(closed):
        for item in closed[m] or []:
            name, score = (item[0], item[1]) if len(item) > 1 else (item[0], None)
            bar = score_bar_svg(float(score)) if isinstance(score, (int, float)) else ""
            score_txt = fmt_num(float(score)) if isinstance(score, (int, float)) else str(score)
            rows.append(
                f'<tr><td class="m">{esc(m)}</td><td>{esc(name)}</td>'
                f'<td class="score">{bar} {esc(score_txt)}</td></tr>')
    if not rows:
        return '<p class="note">no closed-set concepts</p>'
    return ('<table class="concepts"><thead><tr><th>method</th><th>concept</th><th>score</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _keywords_html(kw: Mapping[str, Any]) -> str:
    chips = []
    for group in ("adjectives", "nouns", "verbs"):
        for w in kw.get(group) or []:
            chips.append(f'<span class="chip {esc(group)}" title="{esc(group)}">{esc(w)}</span>')
    return f'<p class="kw">{"".join(chips)}</p>' if chips else ""


def _clip_html(entry: Mapping[str, Any], media: ClipMedia | None) -> str:
    clip = str(entry.get("clip", ""))
    value = entry.get("value")
    peak = entry.get("peak_ms")
    media = media or ClipMedia()
    img = (f'<div class="spec"><img src="{esc(media.image)}" alt="spectrogram of {esc(clip)}" '
           f'loading="lazy">{media.overlay}</div>' if media.image else "")
    if not media.audio:
        audio = '<p class="note">audio unavailable</p>'
    elif media.inline:
        audio = f'<audio controls preload="none" src="{esc(media.audio)}"></audio>'
    else:  # report.js swaps the link for a player on click; without JS it opens the WAV
        audio = f'<a class="play" href="{esc(media.audio)}">&#9654; listen</a>'

    meta = [esc(clip)]
    if isinstance(value, (int, float)):
        meta.append(f"value {esc(fmt_num(float(value)))}")
    if isinstance(peak, (int, float)):
        meta.append(f"peak {esc(fmt_num(float(peak)))} ms")
    if media.act_range:
        lo, hi = media.act_range
        meta.append(f"activation {esc(fmt_num(lo))} to {esc(fmt_num(hi))}")
    cap = f'<span class="cap">{esc(media.caption)}</span>' if media.caption else ""
    return (f'<figure class="clip">{img}{audio}<figcaption>{" · ".join(meta)}{cap}'
            "</figcaption></figure>")


def render_card(n: Neuron, k: int, media: Mapping[str, ClipMedia] | None = None) -> str:
    """One neuron card (an ``<article>``). ``media``: clip id -> files of this card's clips."""
    media = media or {}
    llm = n.llm or "no summary"
    badge = "llm" if n.by_llm else "rules"
    low = str(n.summary.get("low") or "")
    low_html = f'<p class="low"><b>Low:</b> {esc(low)}</p>' if low else ""
    desc = n.description or "(no description)"
    score_html = _explain_html(n)
    failed = "".join(f'<p class="failed" title="retried on the next run">{esc(t)}</p>'
                     for t in n.llm_failures)
    top = _clips(n.exemplar.get("top"), k, media)
    bottom = _clips(n.exemplar.get("bottom"), k, media)
    return (
        f'<article class="card" id="{esc(card_id(n))}" data-layer="{esc(n.layer)}" '
        f'data-search="{esc(search_text(n))}">'
        f'<header><h3><span class="layer">{esc(n.layer)}</span> · unit {n.unit}</h3>'
        f'<span class="badge {badge}" title="description written by">{esc(llm)}</span>'
        f'<span class="sel" title="(mean of top-k - mean) / std">selectivity '
        f"{esc(fmt_num(n.selectivity))}</span></header>"
        f'<p class="desc{" nocc" if n.no_clear_concept else ""}">{esc(desc)}</p>'
        f"{failed}{score_html}{low_html}"
        f'<div class="facts">{_concepts_html(n.concepts.get("closed") or {})}'
        f'{_keywords_html(n.concepts.get("keywords") or {})}</div>'
        f'<div class="clips"><div class="col"><h4>Top clips</h4>{top}</div>'
        f'<div class="col"><h4>Bottom clips</h4>{bottom}</div></div></article>'
    )


def _explain_html(n: Neuron) -> str:
    """Which candidate is shown, its test score, and the evidence terms with effect sizes."""
    if not n.explanation:
        return ""
    x = n.explanation
    test = x.get("test") or {}
    det, corr = test.get("detection"), test.get("correlation")
    corr_txt = "n/a" if corr is None else fmt_num(corr)
    score = (f"test detection AUROC {esc(fmt_num(det))}, correlation {esc(corr_txt)}"
             if det is not None else "not scored on the test clips")
    head = ("no clear concept: " + esc(str(x.get("why") or "")) if n.no_clear_concept else
            f"shown: {esc(str(x.get('kind') or ''))} ({score})")
    terms = "".join(
        f'<li>{esc(str(e.get("term")))} <span class="num">AUROC {esc(fmt_num(e.get("auroc")))}'
        f', d {esc(fmt_num(e.get("effect")))}, n {esc(str(e.get("support")))}</span></li>'
        for e in n.evidence[:5])
    ev = f'<ul class="evidence">{terms}</ul>' if terms else ""
    return f'<p class="score">{head}</p>{ev}'


def _clips(entries: Sequence[Mapping[str, Any]] | None, k: int,
           media: Mapping[str, ClipMedia]) -> str:
    entries = list(entries or [])[:k]
    if not entries:
        return '<p class="note">none recorded</p>'
    return "".join(_clip_html(e, media.get(str(e.get("clip")))) for e in entries)
