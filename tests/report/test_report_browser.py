"""The report in headless Chromium from file://: no console errors, every audio source exists and
decodes, the filter box filters, and a hostile LLM description stays text."""

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from dissect.report.browser import Chromium, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary (apt-get install chromium, or set "
                             "DISSECT_CHROMIUM=/path/to/chrome)")

VISIBLE = "Array.from(document.querySelectorAll('article.card')).filter(c => !c.hidden).length"
CLEAR = ("{ const f = document.getElementById('filter'); f.value = '';"
         " f.dispatchEvent(new Event('input')); }")
LAYER = ("{ const s = document.getElementById('layer-filter'); s.value = '%s';"
         " s.dispatchEvent(new Event('change')); }")

# Load every distinct <audio> source and play link with preload=metadata; report the ones that
# fail to decode.
CHECK_AUDIO = """
(async () => {
  const srcs = [...new Set([...document.querySelectorAll('audio')].map(a => a.src).concat(
    [...document.querySelectorAll('a.play')].map(a => a.href)))];
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


@pytest.fixture(scope="module")
def page(report):
    with Chromium(CHROMIUM, width=1280, height=900) as b:
        b.goto(report.as_uri())
        yield b


def test_no_console_errors(page):
    page.evaluate("new Promise(r => setTimeout(r, 300))", await_promise=True)
    assert page.errors() == []
    assert page.evaluate("document.readyState") == "complete"


def test_every_audio_source_exists(page, report):
    srcs = page.evaluate("Array.from(document.querySelectorAll('audio')).map(a => a.src)")
    links = page.evaluate("Array.from(document.querySelectorAll('a.play')).map(a => a.href)")
    assert srcs and links
    srcs += links
    for src in set(srcs):
        url = urlparse(src)
        assert url.scheme == "file", src
        path = Path(unquote(url.path))
        assert path.is_file() and report.parent in path.parents, src
    results = page.evaluate(CHECK_AUDIO, await_promise=True)
    bad = [r for r in results if not r["ok"]]
    assert len(results) == len(set(srcs)) and not bad, bad[:3]


def test_filter_box_hides_cards(page, hostile_key):
    total = page.evaluate("document.querySelectorAll('article.card').length")
    assert total > 10 and page.evaluate(VISIBLE) == total
    page.type_text("#filter", "__xss")
    assert page.evaluate(VISIBLE) == 1
    layer, unit = hostile_key
    shown = page.evaluate("Array.from(document.querySelectorAll('article.card'))"
                          ".filter(c => !c.hidden).map(c => c.id)")
    assert shown == [f"n-{layer}-{unit}"]
    assert page.evaluate("document.getElementById('filter-count').textContent") == \
        f"1 of {total} neurons shown"
    page.evaluate(CLEAR)
    assert page.evaluate(VISIBLE) == total
    page.type_text("#filter", "classifier")
    n_cls = page.evaluate("document.querySelectorAll('article.card[data-layer=\"classifier\"]')"
                          ".length")
    assert 0 < page.evaluate(VISIBLE) <= n_cls < total
    page.evaluate(CLEAR)
    # the layer drop-down filters too
    page.evaluate(LAYER % "conv6")
    assert page.evaluate(VISIBLE) == page.evaluate(
        "document.querySelectorAll('article.card[data-layer=\"conv6\"]').length")
    page.evaluate(LAYER % "")
    assert page.evaluate(VISIBLE) == total


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
    card = f"document.getElementById({json.dumps(f'n-{layer}-{unit}')})"
    desc = page.evaluate(f"{card}.querySelector('p.desc').textContent")
    assert xss in desc
    assert page.evaluate(f"{card}.querySelectorAll('script, p.desc img').length") == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    assert xss in page.evaluate("document.body.textContent")
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_screenshot(page, tmp_path):
    page.evaluate("document.getElementById('neurons').scrollIntoView()")
    shot = page.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
