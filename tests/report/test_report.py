"""The static report without a browser: escaping, files, plots, stand-ins, ordering, frames."""

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dissect import artifacts
from dissect.report import MissingArtifactError, build_report
from dissect.report.build import _artifact_section, order_neurons
from dissect.report.cards import ClipMedia, render_card
from dissect.report.data import RULES_NAME, Neuron, RunData, load_run
from dissect.report.html import render_value
from dissect.report.overview import overview_html, stand_ins

XSS = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"
HOSTILE = [
    XSS,
    "\"><script>alert(1)</script>",
    "' onmouseover='alert(2)' x='",
    "</textarea></td></table><svg onload=alert(3)>",
    "javascript:alert(4)",
    "&lt;already&gt; & <b>bold</b>",
]
EVIL = " | ".join(HOSTILE)


class TagCollector(HTMLParser):
    """Start tags with attributes, and the text as a browser would show it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(markup: str) -> TagCollector:
    p = TagCollector()
    p.feed(markup)
    p.close()
    return p


def assert_inert(markup: str, allowed_tags: set[str]) -> TagCollector:
    """No script, no event handler, only expected tags, no javascript: URL."""
    p = parse(markup)
    for tag, attrs in p.tags:
        assert tag in allowed_tags, f"unexpected <{tag}> from artifact text"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler attribute {name}={value!r}"
            if name in ("src", "href"):
                assert not (value or "").lower().startswith("javascript:")
    return p


def hostile_neuron() -> Neuron:
    ex = {"layer": EVIL, "unit": 7, "mean": 0.0, "std": 1.0,
          "top": [{"clip": EVIL, "value": 2.0, "peak_ms": 40.0},
                  {"clip": HOSTILE[1], "value": 1.5, "peak_ms": 80.0}],
          "bottom": [{"clip": HOSTILE[2], "value": -1.0, "peak_ms": 0.0}]}
    summary = {"calibrated": EVIL, "high": EVIL, "low": EVIL, "llm": EVIL}
    concepts = {"closed": {"db": [[EVIL, 0.5], [HOSTILE[3], EVIL]], EVIL: [[EVIL, 0.1]]},
                "keywords": {"adjectives": [EVIL], "nouns": HOSTILE, "verbs": [EVIL]}}
    return Neuron(EVIL, 7, ex, summary, concepts)


CARD_TAGS = {"article", "header", "h3", "h4", "span", "p", "b", "div", "table", "thead",
             "tbody", "tr", "th", "td", "svg", "rect", "polyline", "line", "polygon",
             "figure", "figcaption", "img", "audio", "a"}


def test_card_escapes_every_untrusted_field():
    n = hostile_neuron()
    media = {EVIL: ClipMedia(audio=f"audio/{EVIL}.wav", image=f"assets/{EVIL}.png",
                             caption=EVIL, overlay="", act_range=(0.0, 1.0)),
             HOSTILE[1]: ClipMedia(audio=f"audio/{HOSTILE[2]}.wav", caption=EVIL, inline=False)}
    markup = render_card(n, 5, media)
    p = assert_inert(markup, CARD_TAGS)
    text = "".join(p.text)
    for h in HOSTILE:  # every hostile string is shown literally, as text
        assert h in text or h in html.unescape(markup)
    assert "<script" not in markup and "onerror=" not in markup.replace("onerror=window", "")
    # attributes hold the escaped text verbatim (round trip), never break out of the quotes
    card = p.tags[0][1]
    assert card["data-layer"] == EVIL
    assert EVIL.lower() in card["data-search"]
    srcs = [a["src"] for t, a in p.tags if t in ("audio", "img")]
    assert f"audio/{EVIL}.wav" in srcs and f"assets/{EVIL}.png" in srcs
    assert [a["href"] for t, a in p.tags if t == "a"] == [f"audio/{HOSTILE[2]}.wav"]


def test_card_marks_failed_llm_calls_escaped():
    n = hostile_neuron()
    n.summary.update(failed=True, llm_failed="openai-http:m@host", llm="rule-based (no LLM)",
                     errors=[f"top: LLM call failed: HTTP 503: {EVIL}"])
    n.explanation = {"description": "x", "candidates": [
        {"kind": "llm", "note": "rejected: LLM call failed: timeout after 60 s"}]}
    markup = render_card(n, 5)
    p = assert_inert(markup, CARD_TAGS)
    failed = [t for t in html.unescape(markup).split('<p class="failed"')[1:]]
    assert len(failed) == 2
    assert (f"summary by openai-http:m@host failed (top: LLM call failed: HTTP 503: {EVIL}); "
            "the rule-based summary stands in") in "".join(p.text)
    assert "LLM phrasing failed (LLM call failed: timeout after 60 s)" in "".join(p.text)
    assert "llm failed" in p.tags[0][1]["data-search"]
    plain = render_card(hostile_neuron(), 5)
    assert 'class="failed"' not in plain


def test_render_value_escapes_keys_and_values():
    data = {EVIL: [{EVIL: HOSTILE[1], "n": 1.5}, {EVIL: None, "n": float("nan")}],
            "nested": {"list": HOSTILE, "deep": {"x": {"y": [[EVIL]]}}}}
    markup = render_value(data)
    p = assert_inert(markup, {"table", "thead", "tbody", "tr", "th", "td", "em", "ol", "li",
                              "code"})
    assert EVIL in "".join(p.text)


def fake_run(tmp_path: Path, llm_rows: dict[str, int], notes=None, captioners=None) -> RunData:
    neurons = []
    for name, count in llm_rows.items():
        for _ in range(count):
            neurons.append(Neuron("l", len(neurons), {}, {"llm": name}, {}))
    manifest = {"stages": {"concepts": {"info": {"method_notes": notes or {}}}}}
    config = {"describe": {"max_llm_neurons": 40},
              "caption": {"captioners": captioners or ["acoustic", "labels"]},
              "model": {"name": EVIL}}
    return RunData(tmp_path, config, manifest, {}, neurons, {}, [], ["l"])


def test_stand_ins_named(tmp_path):
    from dissect.describe.concepts import TAB_STAND_IN

    smol = "transformers:SmolLM2-135M-Instruct (Q4_1 GGUF)"
    tab = TAB_STAND_IN.format(embedder="all-MiniLM-L6-v2")
    run = fake_run(tmp_path, {smol: 40, RULES_NAME: 592},
                   notes={"db": "DB: captions vs prompts, all-MiniLM-L6-v2, softmax",
                          "tab": tab})
    lines = stand_ins(run)
    joined = "\n".join(lines)
    assert f"{smol} (a local LLM, 40 neurons) stands in for" in joined
    assert "Llama-2-13B" in joined
    assert "592 neurons beyond the LLM cap (describe.max_llm_neurons=40)" in joined
    assert "instead of an audio LLM such as SALMONN" in joined
    assert tab in joined and "YAMNet" in joined
    assert "all-MiniLM-L6-v2 instead of CLIP" in joined
    # an audio-LLM captioner is not a stand-in
    run2 = fake_run(tmp_path, {RULES_NAME: 3}, captioners=["audio_llm"])
    assert not any("SALMONN" in s for s in stand_ins(run2))
    assert any("for all 3 neurons" in s for s in stand_ins(run2))
    assert_inert(overview_html(run), {"section", "h2", "h3", "div", "table", "thead", "tbody",
                                      "tr", "th", "td", "ul", "li", "em"})


def test_rules_name_matches_summariser():
    from dissect.describe.llm import RuleBasedClient

    assert RuleBasedClient().name == RULES_NAME


def test_order_llm_first_then_selectivity():
    def n(unit, llm, top, mean=0.0, std=1.0):
        return Neuron("l", unit, {"top": [{"value": v} for v in top], "mean": mean, "std": std},
                      {"llm": llm}, {})

    ns = [n(0, RULES_NAME, [1.0]), n(1, RULES_NAME, [5.0]), n(2, "gpt", [0.5]),
          n(3, RULES_NAME, [3.0], std=0.0), n(4, "gpt", [2.0])]
    assert [x.unit for x in order_neurons(ns)] == [4, 2, 1, 0, 3]


def test_label_fraction_needs_enriched_shared_label(tmp_path):
    from dissect.report.layers import label_fraction

    clips = {f"n{i}": {"labels": {"kind": "note", "family": "brass" if i < 3 else "reed"}}
             for i in range(8)}
    clips |= {f"t{i}": {"labels": {"kind": "tone"}} for i in range(2)}
    top = lambda ids: {"top": [{"clip": c} for c in ids]}  # noqa: E731
    neurons = [Neuron("a", 0, top(["n0", "n1", "n2", "n5", "n6"])),  # 3 brass: 3/5 vs 3/10
               Neuron("a", 1, top(["n3", "n4", "n5", "n6", "n7"])),  # reed 5/5 vs 5/10
               Neuron("a", 2, top(["n0", "n3", "t0", "n5", "t1"])),  # nothing 3x and enriched 2x
               Neuron("b", 0, top(["t0", "t1", "n0", "n1", "n2"]))]  # brass again
    run = RunData(tmp_path, {}, {}, clips, neurons, {}, [], ["a", "b"])
    assert label_fraction(run) == {"a": pytest.approx(2 / 3), "b": 1.0}


def test_missing_artifact_is_named(tmp_path):
    with pytest.raises(MissingArtifactError, match="run directory not found"):
        build_report(tmp_path / "nope")
    (tmp_path / artifacts.CONFIG).write_text("model: {name: crepe}\n")
    (tmp_path / artifacts.MANIFEST).write_text("{}")
    with pytest.raises(MissingArtifactError, match=re.escape(str(tmp_path / artifacts.CLIPS))):
        build_report(tmp_path)


def test_optional_sections_skip_when_absent(tmp_path):
    assert _artifact_section(tmp_path, "prune", "Pruning", "prune") == ""
    (tmp_path / "hear").mkdir()
    (tmp_path / "hear" / "scores.json").write_text('[{"task": "t", "score": 1}]')
    (tmp_path / "hear" / "scores.csv").write_text("task,score\nt,1\n")
    (tmp_path / "hear" / "bad.json").write_text("{nope")
    html_ = _artifact_section(tmp_path, "hear", "HEAR", "hear")
    assert "hear/scores.csv" in html_ and "hear/scores.json" not in html_  # CSV twin wins
    assert "bad.json: cannot parse" in html_


# --------------------------------------------------------------------------- the built report


def test_report_page(report, hostile_key, xss):
    assert xss == XSS
    page = report.read_text(encoding="utf-8")
    assert XSS not in page and "<script>window" not in page
    assert html.escape(XSS, quote=True) in page
    p = parse(page)
    scripts = [a for t, a in p.tags if t == "script"]
    assert scripts == [{"src": "assets/report.js"}]  # the only script: ours, local
    for tag, attrs in p.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        for k in ("src", "href"):
            v = attrs.get(k) or ""
            assert not re.match(r"^[a-z]+:", v) or v.startswith("#"), f"non-local {k}={v!r}"
    cards = [a for t, a in p.tags if t == "article"]
    layer, unit = hostile_key
    assert len(cards) == len(artifacts.read_jsonl(report.parents[1] / artifacts.EXEMPLARS))
    assert any(a["id"] == f"n-{layer}-{unit}" for a in cards)
    # the overview names every stand-in of this run
    assert "Rule-based contrastive summaries" in page
    assert "instead of an audio LLM such as SALMONN" in page
    assert "all-MiniLM-L6-v2 instead of CLIP" in page
    for section in ('id="overview"', 'id="layers"', 'id="scores"', 'id="prune"', 'id="hear"',
                    'id="neurons"', 'id="filter"', 'id="filter-count"'):
        assert section in page
    assert "nsynth_pitch" in page and "brass" in page


def test_report_files(report, audio_cards):
    out = report.parent
    page = report.read_text(encoding="utf-8")
    p = parse(page)
    players = [a["src"] for t, a in p.tags if t == "audio"]
    links = [a["href"] for t, a in p.tags if t == "a" and a.get("class") == "play"]
    audio = players + links
    images = [a["src"] for t, a in p.tags if t == "img"]
    assert players and links and images
    assert len(players) <= audio_cards * 10
    for rel in set(audio) | set(images):
        assert (out / rel).is_file(), rel
    run = load_run(out.parent)
    for rel in set(audio):  # 16-bit WAV, as long as the decoded clip
        info = sf.info(str(out / rel))
        assert info.subtype == "PCM_16" and info.channels == 1
    first = next(iter(run.clips.values()))
    from dissect.report.build import audio_name

    name = out / "audio" / audio_name(first["id"])
    if name.is_file():
        assert sf.info(str(name)).duration == pytest.approx(first["seconds"], abs=1e-3)
    specs = {s for s in images if s.startswith("assets/spec/")}
    assert 0 < len(specs) <= audio_cards * 10
    for plot in ("interpretable.png", "distribution.png", "terms-conv6.png",
                 "terms-classifier.png"):
        data = (out / "assets" / "plots" / plot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert (out / "assets" / "report.js").is_file() and (out / "assets" / "report.css").is_file()
    assert "from scores.json: AND&#x27;s rule" in page
    # the page carries no stale files: everything under audio/ and assets/ is referenced
    referenced = set(audio) | set(images) | {"assets/report.js", "assets/report.css"}
    on_disk = {f.relative_to(out).as_posix() for f in out.rglob("*") if f.is_file()}
    assert on_disk - referenced == {"index.html"}


def test_overlay_traces_match_recorded_peaks(report):
    """Re-running the model for the overlays reproduces the recorded pooled value and peak."""
    from dissect.record.traces import run_traces

    run = load_run(report.parents[1])
    n = next(x for x in run.neurons if x.layer == "conv6")
    top = n.exemplar["top"][:2]
    wanted = {e["clip"]: {"conv6": {n.unit}} for e in top}
    traces = run_traces(run.config, {c: run.clips[c]["path"] for c in wanted}, wanted,
                        progress=False, batch_size=2)
    for e in top:
        tr = traces[e["clip"]]["conv6"]
        v = tr.values[n.unit]
        assert float(np.mean(v)) == pytest.approx(e["value"], rel=1e-3, abs=1e-4)
        assert float(tr.times_ms[int(np.argmax(v))]) == pytest.approx(e["peak_ms"])


def test_explain_stage_artifacts_and_scores_recompute(tiny_run, hostile_key):
    """explanations.jsonl: one row per neuron; the shown term candidate's test score equals a
    recomputation from the artifacts; descriptions.csv shows the chosen text (the neuron the
    fixtures made hostile excepted)."""
    import csv as _csv

    from dissect.describe.captions import terms_by_clip
    from dissect.describe.explain import term_matrix
    from dissect.evaluate.explanations import assign_splits, score_prediction, term_prediction
    from dissect.record.store import load_activations

    ex = artifacts.read_jsonl(tiny_run / artifacts.EXPLANATIONS)
    ev = artifacts.read_jsonl(tiny_run / artifacts.EVIDENCE)
    ex_rows = artifacts.read_jsonl(tiny_run / artifacts.EXEMPLARS)
    assert [(r["layer"], r["unit"]) for r in ex] == [(r["layer"], r["unit"]) for r in ex_rows]
    assert len(ev) == len(ex)
    clips = artifacts.read_jsonl(tiny_run / artifacts.CLIPS)
    ids = [c["id"] for c in clips]
    pos = {c: i for i, c in enumerate(ids)}
    terms, X = term_matrix(ids, terms_by_clip(tiny_run))
    index = {t.lower(): j for j, t in enumerate(terms)}
    split = assign_splits(ids, (0.6, 0.2, 0.2), 0)
    summaries = {(s["layer"], s["unit"]): s
                 for s in artifacts.read_jsonl(tiny_run / artifacts.SUMMARIES)}
    checked = 0
    for r in ex:
        if (r["layer"], r["unit"]) == tuple(hostile_key):
            continue
        cand = next((c for c in r["candidates"] if c["kind"] == r["kind"]), None)
        if r["no_clear_concept"]:
            assert r["description"] == "no clear concept" and r["kind"] == "none"
            continue
        assert cand is not None and cand["text"] == r["description"]
        if cand["terms"] is None or checked >= 20:
            continue
        s = summaries[r["layer"], r["unit"]]
        mask = split == "test"
        mask[[pos[c] for c in s["top_clips"] + s["bottom_clips"]]] = False
        A = load_activations(tiny_run, r["layer"]).numpy()[:, r["unit"]]
        want = score_prediction(term_prediction(X, index, cand["terms"])[mask], A[mask])
        assert r["test"] == want
        checked += 1
    assert checked > 0
    with open(tiny_run / artifacts.DESCRIPTIONS, newline="") as fh:
        table = list(_csv.DictReader(fh))
    assert [t["description"] for t in table if (t["layer"], int(t["unit"])) != hostile_key] == [
        r["description"] for r in ex if (r["layer"], r["unit"]) != hostile_key]
    assert {"kind", "test_detection", "evidence", "and_summary"} <= set(table[0])


def test_cards_show_evidence_and_the_overview_the_score_distribution(report):
    page = report.read_text(encoding="utf-8")
    assert "Description scores (test split)" in page
    assert 'class="evidence"' in page and "shown: " in page
