"""The report in headless Chromium from file://, with a user's file policy (no
--allow-file-access-from-files: the data shards load as scripts, not by fetch): no console
errors, every audio source exists and decodes, the table filters and sorts, cards render from
the shards on demand, and hostile artifact strings stay text."""

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from dissect.report.browser import BASE_FLAGS, Chromium, find_chromium
from dissect.report.build import OPEN_CARDS, order_neurons
from dissect.report.cards import card_id, search_text
from dissect.report.data import load_run

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary (apt-get install chromium, or set "
                             "DISSECT_CHROMIUM=/path/to/chrome)")

READY = "window.dissectReport && window.dissectReport.ready"
CARDS = "Array.from(document.querySelectorAll('article.card')).map(c => c.id)"
ROWS = "Array.from(document.querySelectorAll('tr.row')).map(r => r.getAttribute('data-card'))"
VIEW = "window.dissectReport.view.map(n => n.id)"
COUNT = "document.getElementById('filter-count').textContent"
CLEAR = ("{ const f = document.getElementById('filter'); f.value = '';"
         " f.dispatchEvent(new Event('input')); }")
LAYER = ("{ const s = document.getElementById('layer-filter'); s.value = '%s';"
         " s.dispatchEvent(new Event('change')); }")
# Every clip of the clip table, every <audio> and play link in the DOM: load each distinct
# source with preload=metadata; report the ones that fail to decode.
CHECK_AUDIO = """
(async () => {
  const srcs = [...new Set([...document.querySelectorAll('audio')].map(a => a.src).concat(
    [...document.querySelectorAll('a.play')].map(a => a.href),
    window.dissectReport.clips.filter(c => c.audio).map(c => new URL(c.audio, location).href)))];
  const one = src => new Promise(resolve => {
    const a = new Audio();
    const t = setTimeout(() => resolve({src, ok: false, why: 'timeout'}), 10000);
    a.preload = 'metadata';
    a.addEventListener('loadedmetadata', () => { clearTimeout(t);
      resolve({src, ok: isFinite(a.duration) && a.duration > 0, why: String(a.duration)}); });
    a.addEventListener('error', () => { clearTimeout(t);
      resolve({src, ok: false, why: 'error ' + (a.error && a.error.code)}); });
    a.src = src;
  });
  const out = [];
  for (let i = 0; i < srcs.length; i += 16) {
    out.push(...await Promise.all(srcs.slice(i, i + 16).map(one)));
  }
  return out;
})()
"""


def open_report(index: Path) -> Chromium:
    b = Chromium(CHROMIUM, width=1280, height=900, flags=BASE_FLAGS).__enter__()
    b.goto(index.as_uri())
    b.wait_for(READY)
    return b


@pytest.fixture(scope="module")
def page(report):
    b = open_report(report)
    yield b
    b.__exit__(None, None, None)


@pytest.fixture(scope="module")
def run(report):
    return load_run(report.parents[1])


def test_no_console_errors(page, run):
    page.evaluate("new Promise(r => setTimeout(r, 300))", await_promise=True)
    assert page.errors() == []
    assert page.evaluate("document.readyState") == "complete"
    assert page.evaluate("document.getElementById('neurons').dataset.ready") == "1"
    assert page.evaluate("window.dissectReport.neurons.length") == len(run.neurons)
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # shards removed


def test_first_cards_open_on_load(page, run):
    """The top cards by order_neurons are open; the table lists the first page in that order."""
    first = [card_id(n) for n in order_neurons(run.neurons)]
    assert page.evaluate(CARDS) == first[:OPEN_CARDS]
    assert page.evaluate(ROWS) == first[:100]
    assert page.evaluate(COUNT) == f"{len(first)} of {len(first)} neurons match (100 listed)"
    page.evaluate("document.getElementById('more').click()")
    assert page.evaluate(ROWS) == first[:200]


def test_filter_text_equals_search_text(page, run):
    """The page's filter matches exactly what cards.search_text says (same words)."""
    hay = dict(page.evaluate("window.dissectReport.neurons.map(n => [n.id, n.hay])"))
    assert len(hay) == len(run.neurons)
    for n in run.neurons:
        assert set(hay[card_id(n)].split()) == set(search_text(n).split()), card_id(n)


def test_every_audio_source_exists(page, report):
    srcs = page.evaluate("Array.from(document.querySelectorAll('audio')).map(a => a.src)")
    links = page.evaluate("Array.from(document.querySelectorAll('a.play')).map(a => a.href)")
    assert srcs and links
    clips = page.evaluate("window.dissectReport.clips.map(c => new URL(c.audio, location).href)")
    srcs += links + clips
    for src in set(srcs):
        url = urlparse(src)
        assert url.scheme == "file", src
        path = Path(unquote(url.path))
        assert path.is_file() and report.parent in path.parents, src
    results = page.evaluate(CHECK_AUDIO, await_promise=True)
    bad = [r for r in results if not r["ok"]]
    assert len(results) == len(set(srcs)) and not bad, bad[:3]


def test_filter_box_filters_rows_and_cards(page, run, hostile_key):
    total = len(run.neurons)
    assert page.evaluate(f"{VIEW}.length") == total
    page.type_text("#filter", "__xss")
    layer, unit = hostile_key
    assert page.evaluate(VIEW) == page.evaluate(ROWS) == [f"n-{layer}-{unit}"]
    assert page.evaluate(CARDS) == [f"n-{layer}-{unit}"]  # a single match opens its card
    assert page.evaluate(COUNT) == f"1 of {total} neurons match"
    page.evaluate(CLEAR)
    assert page.evaluate(f"{VIEW}.length") == total and len(page.evaluate(CARDS)) == OPEN_CARDS
    page.type_text("#filter", "classifier")
    layers = page.evaluate("window.dissectReport.view.map(n => n.layer)")
    n_cls = sum(n.layer == "classifier" for n in run.neurons)
    assert 0 < len(layers) <= n_cls < total and set(layers) == {"classifier"}
    page.evaluate(CLEAR)
    # the layer drop-down filters too
    page.evaluate(LAYER % "conv6")
    assert page.evaluate(VIEW) == [card_id(n) for n in order_neurons(run.neurons)
                                   if n.layer == "conv6"]
    assert all(c.startswith("n-conv6-") for c in page.evaluate(CARDS))
    page.evaluate(LAYER % "")
    assert page.evaluate(f"{VIEW}.length") == total


def test_card_renders_from_shard_on_demand(page, run):
    """The last neuron in card order is not rendered on load; the filter finds it, and its card
    is built from the shard with the artifact's values; a row click opens and closes a card."""
    keys = [f"{n.layer}:{n.unit}" for n in run.neurons]
    # the last neuron whose filter text is no other's prefix ("conv6:5" matches conv6:57)
    last = next(n for n in reversed(order_neurons(run.neurons))
                if sum(k.startswith(f"{n.layer}:{n.unit}") for k in keys) == 1)
    cid = card_id(last)
    page.evaluate(CLEAR)
    assert page.evaluate(f"document.getElementById({json.dumps(cid)})") is None
    page.type_text("#filter", f"{last.layer}:{last.unit}")
    assert page.evaluate(VIEW)[0] == cid
    card = f"document.getElementById({json.dumps(cid)})"
    assert page.evaluate(f"{card}.getBoundingClientRect().height") > 50
    assert page.evaluate(f"{card}.querySelector('p.desc').textContent") == (
        last.description or "(no description)")
    assert page.evaluate(f"{card}.querySelector('h3').textContent") == (
        f"{last.layer} · unit {last.unit}")
    top = [e["clip"] for e in last.exemplar["top"][:5]]
    figs = page.evaluate(f"Array.from({card}.querySelectorAll('.col')[0].querySelectorAll("
                         "'figcaption')).map(f => f.firstChild.textContent)")
    assert [f.split(" · ")[0] for f in figs] == top
    if last.explanation:
        assert page.evaluate(f"{card}.querySelector('p.score').textContent").startswith(
            "no clear concept: " if last.no_clear_concept else "shown: ")
    page.evaluate(CLEAR)
    # a link to the card's id opens it
    assert page.evaluate(f"document.getElementById({json.dumps(cid)})") is None
    page.evaluate(f"location.hash = {json.dumps('#' + cid)}")
    page.wait_for(f"{card} && {card}.getBoundingClientRect().height > 50", timeout_s=5)
    page.evaluate(f"history.replaceState(null, '', location.pathname); {CLEAR}")
    # a closed row opens on click, and closes again
    row = page.evaluate(ROWS)[OPEN_CARDS + 1]
    sel = f"document.querySelector('tr.row[data-card={json.dumps(row)}]')"
    page.evaluate(f"{sel}.click()")
    assert row in page.evaluate(CARDS) and page.evaluate(f"{sel}.getAttribute('aria-expanded')") \
        == "true"
    page.evaluate(f"{sel}.click()")
    assert row not in page.evaluate(CARDS)
    assert page.errors() == []


def test_column_headers_sort(page, run):
    page.evaluate(CLEAR)
    page.evaluate("document.querySelector('th[data-sort=\"sel\"]').click()")
    sels = page.evaluate("window.dissectReport.view.map(n => n.get('sel'))")
    assert sels == sorted(sels) and len(sels) == len(run.neurons)
    page.evaluate("document.querySelector('th[data-sort=\"sel\"]').click()")
    sels = page.evaluate("window.dissectReport.view.map(n => n.get('sel'))")
    assert sels == sorted(sels, reverse=True)
    assert page.evaluate("document.querySelector('th[data-sort=\"sel\"]')"
                         ".getAttribute('aria-sort')") == "descending"
    page.evaluate("document.querySelector('th[data-sort=\"rank\"]').click()")
    assert page.evaluate(VIEW) == [card_id(n) for n in order_neurons(run.neurons)]


def test_play_link_becomes_player(page):
    before = page.evaluate("document.querySelectorAll('audio').length")
    href = page.evaluate("document.querySelector('a.play').href")
    page.evaluate("document.querySelector('a.play').click()")
    assert page.evaluate("document.querySelectorAll('audio').length") == before + 1
    assert page.evaluate(f"[...document.querySelectorAll('audio')].some(a => a.src === "
                         f"{json.dumps(href)} && a.controls)")
    assert page.errors() == []


def test_hostile_description_is_text(page, hostile_key, xss):
    assert page.evaluate("typeof window.__xss") == "undefined"
    layer, unit = hostile_key
    page.evaluate(CLEAR)
    page.type_text("#filter", "__xss")
    card = f"document.getElementById({json.dumps(f'n-{layer}-{unit}')})"
    desc = page.evaluate(f"{card}.querySelector('p.desc').textContent")
    assert desc == f"Hostile {xss} description"
    assert page.evaluate(f"{card}.querySelectorAll('script, p.desc img').length") == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    assert xss in page.evaluate("document.body.textContent")
    row = page.evaluate("document.querySelector('tr.row td.c-desc').textContent")
    assert row == desc
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.evaluate(CLEAR)


def test_hostile_strings_everywhere_render_as_text(hostile_report, xss):
    """A run whose clip ids, captions, descriptions, writers, concepts, keywords,
    evidence terms and failure messages all hold XSS: every card shows them as text."""
    b = open_report(hostile_report)
    try:
        b.type_text("#filter", ":0")  # "<layer>:<unit>" of unit 0, which has failed LLM calls
        ids = b.evaluate(CARDS)
        assert len(ids) == 2 and all(i.endswith("-0") for i in ids)  # both layers' unit 0
        text = b.evaluate("Array.from(document.querySelectorAll('article.card'))"
                          ".map(c => c.textContent).join('\\n')")
        for piece in ("· unit 0", f"tone 0{xss}", f"low tones{xss}", f"tone{xss}",
                      f"bright{xss}", f"kind=tone{xss} AUROC 0.8123",
                      f"rule-based (no LLM){xss}", f"openai-http:m{xss} failed",
                      f"LLM phrasing failed (LLM call failed: t{xss})"):
            assert piece in text, piece
        caps = b.evaluate("Array.from(document.querySelectorAll('article.card figcaption'))"
                          ".map(f => [f.firstChild.textContent, f.querySelector('.cap')"
                          ".textContent])")
        assert len(caps) == 20
        for meta, cap in caps:  # clip id, then value and peak; the caption
            assert meta.startswith("clip-") and f"{xss} · value " in meta, meta
            assert cap.startswith("acoustic: a tone ") and cap.endswith(xss), cap
        tags = set(b.evaluate("Array.from(document.querySelectorAll('article.card *'))"
                              ".map(e => e.tagName.toLowerCase())"))
        assert "script" not in tags and "iframe" not in tags
        srcs = b.evaluate("Array.from(document.querySelectorAll('article.card img'))"
                          ".map(i => i.getAttribute('src'))")
        assert all(s.startswith("assets/spec/") and "<" not in s for s in srcs)
        onattrs = b.evaluate("Array.from(document.querySelectorAll('*')).flatMap(e => "
                             "Array.from(e.attributes).map(a => a.name))"
                             ".filter(n => n.startsWith('on'))")
        assert onattrs == []
        assert b.evaluate("typeof window.__xss") == "undefined" and b.errors() == []
    finally:
        b.__exit__(None, None, None)


def test_screenshot(page, tmp_path):
    page.evaluate("document.getElementById('neurons').scrollIntoView()")
    shot = page.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
