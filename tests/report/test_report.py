"""The static report without a browser: escaping, files, plots, stand-ins, ordering, frames."""

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dissect import artifacts
from dissect.report import MissingArtifactError, build_report, shards
from dissect.report.build import (
    OPEN_CARDS,
    TABLE_COLUMNS,
    WRITTEN_LIST,
    _artifact_section,
    order_neurons,
)
from dissect.report.cards import (
    FIELDS,
    FLAG_LLM,
    FLAG_RICH,
    card_id,
    card_row,
    round_sig,
    row_dict,
    search_text,
    slug,
)
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


def hostile_row(n: Neuron) -> tuple[dict, dict, str]:
    """``n``'s card row through a shard file's text and back: (row as a dict, payload, text)."""
    clip_index = {EVIL: 0, HOSTILE[1]: 1, HOSTILE[2]: 2}
    strings: dict[str, int] = {}
    row = card_row(n, 5, 0, clip_index, strings, overlays=[[0, 12.5, [0, 950, 10000, 50],
                                                             -1.0, 2.0]])
    text = shards.to_js({"kind": "layer", "layer": n.layer, "slug": slug(n.layer),
                         "fields": list(FIELDS), "strings": list(strings), "rows": [row]})
    payload = shards.parse_js(text)
    return row_dict(payload["rows"][0], payload["fields"], payload["strings"]), payload, text


def test_shard_keeps_every_untrusted_field_verbatim_and_inert():
    """Hostile artifact strings go into a shard as JSON data: no character of them can end
    the statement or read as markup, and they come back byte for byte."""
    n = hostile_neuron()
    row, payload, text = hostile_row(n)
    assert text.startswith(shards.PREFIX) and text.endswith(shards.SUFFIX)
    body = text[len(shards.PREFIX):-len(shards.SUFFIX)]
    assert not set("<>&\u2028\u2029") & set(body), "markup characters must be \\u-escaped"
    assert "</script" not in text.lower() and "\\u003cscript" in text
    assert payload["layer"] == EVIL and row["desc"] == EVIL and row["low"] == EVIL
    assert row["writer"] == EVIL and row["kind"] is None  # no explanation row
    assert row["concepts"] == [["db", [[EVIL, 0.5], [HOSTILE[3], EVIL]]], [EVIL, [[EVIL, 0.1]]]]
    assert row["keywords"] == [[EVIL], HOSTILE, [EVIL], []]
    assert row["top"] == [[0, 2, 40], [1, 1.5, 80]] and row["bottom"] == [[2, -1, 0]]
    assert row["flags"] == FLAG_LLM | FLAG_RICH
    assert row["overlays"] == [[0, 12.5, [0, 950, 10000, 50], -1, 2]]
    assert slug(EVIL) == re.sub(r"[^A-Za-z0-9._-]", "", slug(EVIL))  # ids and files stay safe


def test_card_row_marks_failed_llm_calls():
    n = hostile_neuron()
    n.summary.update(failed=True, llm_failed="openai-http:m@host", llm="rule-based (no LLM)",
                     errors=[f"top: LLM call failed: HTTP 503: {EVIL}"])
    n.explanation = {"description": "x", "kind": "evidence", "candidates": [
        {"kind": "llm", "note": "rejected: LLM call failed: timeout after 60 s"}]}
    row, _, _ = hostile_row(n)
    assert row["failed"] == [
        f"summary by openai-http:m@host failed (top: LLM call failed: HTTP 503: {EVIL}); "
        "the rule-based summary stands in",
        "LLM phrasing failed (LLM call failed: timeout after 60 s)"]
    assert row["desc"] == "x" and row["kind"] == "evidence" and row["flags"] & FLAG_LLM == 0
    assert "llm failed" in search_text(n)
    assert hostile_row(hostile_neuron())[0]["failed"] == []


def test_round_sig_and_non_finite():
    assert round_sig(0.123456789, 4) == 0.1235 and round_sig(12345.6, 4) == 12350
    assert round_sig(475.0, 4) == 475 and isinstance(round_sig(475.0, 4), int)
    assert [round_sig(x, 4) for x in (float("nan"), float("inf"), -float("inf"))] == [
        "nan", "inf", "-inf"]
    assert round_sig(7, 4) == 7 and round_sig("n/a", 4) == "n/a" and round_sig(True, 4) is True
    with pytest.raises(ValueError):
        shards.to_js({"x": float("nan")})


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
    from dissect.description.concepts import TAB_STAND_IN

    smol = "transformers:SmolLM2-135M-Instruct (Q4_1 GGUF)"
    tab = TAB_STAND_IN.format(embedder="all-MiniLM-L6-v2")
    run = fake_run(tmp_path, {smol: 40, RULES_NAME: 592},
                   notes={"db": "DB: captions vs prompts, all-MiniLM-L6-v2, softmax",
                          "tab": tab})
    lines = stand_ins(run)
    joined = "\n".join(lines)
    assert f"{smol} (a local LLM, 40 neurons) stands in for" in joined
    assert "Llama-2-13B" in joined
    assert "592 neurons beyond the LLM cap (summarize.max_llm_neurons=40)" in joined
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
    from dissect.description.llm import RuleBasedClient

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


def report_data(out: Path) -> tuple[list[dict], dict[str, dict], dict]:
    """The shards of the report in ``out``: (clip rows as dicts, layer -> payload, top)."""
    clips = shards.read_shard(out / shards.CLIPS_FILE)
    assert clips["kind"] == "clips" and clips["fields"] == list(shards.CLIP_FIELDS)
    layers = {}
    for f in sorted((out / shards.SHARD_DIR).glob("[0-9][0-9][0-9]-*.js")):
        payload = shards.read_shard(f)
        assert payload["kind"] == "layer" and f.name == Path(
            shards.layer_file(int(f.name[:3]), payload["layer"])).name
        layers[payload["layer"]] = payload
    top = shards.read_shard(out / shards.TOP_FILE)
    return [dict(zip(clips["fields"], r, strict=True)) for r in clips["rows"]], layers, top


def test_report_page(report, hostile_key, xss):
    assert xss == XSS
    page = report.read_text(encoding="utf-8")
    assert XSS not in page and "<script>window" not in page
    assert html.escape(XSS, quote=True) in page  # from the prune and HEAR tables
    p = parse(page)
    scripts = [a for t, a in p.tags if t == "script"]
    assert scripts == [{"src": "assets/report.js"}]  # the only script: ours, local
    for tag, attrs in p.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        for k in ("src", "href", "data-shard", "data-clips", "data-top"):
            v = attrs.get(k) or ""
            assert not re.match(r"^[a-z]+:", v) or v.startswith("#"), f"non-local {k}={v!r}"
    # no card markup in the page: one shard per layer, named by the layer options
    assert not [a for t, a in p.tags if t == "article"]
    run = load_run(report.parents[1])
    options = {a["value"]: a.get("data-shard") for t, a in p.tags if t == "option" and
               a.get("value")}
    assert options == {layer: shards.layer_file(i, layer) for i, layer in enumerate(run.layers)}
    neurons = next(a for t, a in p.tags if t == "section" and a.get("id") == "neurons")
    assert neurons["data-clips"] == shards.CLIPS_FILE and neurons["data-top"] == shards.TOP_FILE
    assert int(neurons["data-open"]) == OPEN_CARDS
    assert [a["data-sort"] for t, a in p.tags if t == "th" and "data-sort" in a] == [
        k for k, _ in TABLE_COLUMNS]
    _, layers, _ = report_data(report.parent)
    rows = {(pl["layer"], r[0]) for pl in layers.values() for r in pl["rows"]}
    assert rows == {n.key for n in run.neurons} and len(rows) == len(run.neurons)
    layer, unit = hostile_key
    assert card_id(next(n for n in run.neurons if n.key == (layer, unit))) == f"n-{layer}-{unit}"
    # the overview names every stand-in of this run
    assert "Rule-based contrastive summaries" in page
    assert "instead of an audio LLM such as SALMONN" in page
    assert "all-MiniLM-L6-v2 instead of CLIP" in page
    for section in ('id="overview"', 'id="layers"', 'id="scores"', 'id="prune"', 'id="hear"',
                    'id="neurons"', 'id="filter"', 'id="filter-count"', 'id="neuron-table"'):
        assert section in page
    assert "nsynth_pitch" in page and "brass" in page


def test_report_files(report, audio_cards):
    out = report.parent
    page = report.read_text(encoding="utf-8")
    clips, layers, top = report_data(out)
    run = load_run(out.parent)
    k = 5
    # the clip table: each exemplar clip of a card once, in first-use order
    ordered = order_neurons(run.neurons)
    want = list(dict.fromkeys(e["clip"] for n in ordered
                              for e in n.exemplar["top"][:k] + n.exemplar["bottom"][:k]))
    assert [c["id"] for c in clips] == want
    audio = [c["audio"] for c in clips]
    images = [c["image"] for c in clips if c["image"]]
    assert all(audio) and len(set(audio)) == len(audio)
    for rel in audio + images:
        assert (out / rel).is_file(), rel
    for rel in audio:  # 16-bit WAV, as long as the decoded clip
        info = sf.info(str(out / rel))
        assert info.subtype == "PCM_16" and info.channels == 1
    first = next(iter(run.clips.values()))
    from dissect.report.build import audio_name

    name = out / "audio" / audio_name(first["id"])
    if name.is_file():
        assert sf.info(str(name)).duration == pytest.approx(first["seconds"], abs=1e-3)
    # spectrograms only for the clips of the first audio_cards cards
    spec_clips = {e["clip"] for n in ordered[:audio_cards]
                  for e in n.exemplar["top"][:k] + n.exemplar["bottom"][:k]}
    assert {c["id"] for c in clips if c["image"]} == spec_clips
    assert all(s.startswith("assets/spec/") for s in images)
    rich = [row_dict(r, pl["fields"]) for pl in layers.values() for r in pl["rows"]
            if r[pl["fields"].index("flags")] & FLAG_RICH]
    assert sorted(r["rank"] for r in rich) == list(range(audio_cards))
    assert all(r["overlays"] for r in rich)
    for plot in ("distribution.png", "terms-conv6.png",
                 "terms-classifier.png"):
        data = (out / "assets" / "plots" / plot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert (out / "assets" / "report.js").is_file() and (out / "assets" / "report.css").is_file()
    assert "<h3>Confirmed descriptions per layer</h3>" in page
    ex = artifacts.read_jsonl(run.run_dir / artifacts.EXPLANATIONS)
    n_conf = sum(r["status"] == "confirmed" for r in ex if r["layer"] == "conv6")
    assert f"<tr><td>conv6</td><td>{n_conf}</td>" in page
    # data/top.js: the rows of the cards open on load, equal to their layer shards' rows
    top_rows = {(pl["layer"], r[0]): r for pl in top["shards"] for r in pl["rows"]}
    assert {key for key in top_rows} == {n.key for n in ordered[:OPEN_CARDS]}
    for (layer, unit), r in top_rows.items():
        assert r == next(x for x in layers[layer]["rows"] if x[0] == unit)
    # no stale files: everything under audio/, assets/ and data/ is referenced
    plots = {f"assets/plots/{p}" for p in re.findall(r'src="assets/plots/([^"]+)"', page)}
    data = {shards.CLIPS_FILE, shards.TOP_FILE} | {
        shards.layer_file(i, layer) for i, layer in enumerate(run.layers)}
    referenced = set(audio) | set(images) | plots | data | {"assets/report.js",
                                                           "assets/report.css"}
    on_disk = {f.relative_to(out).as_posix() for f in out.rglob("*") if f.is_file()}
    assert on_disk - referenced == {"index.html", WRITTEN_LIST}  # the list of what it wrote
    assert sorted(json.loads((out / WRITTEN_LIST).read_text())) == sorted(on_disk - {WRITTEN_LIST})


def test_shard_row_equals_artifacts(report, hostile_key):
    """One neuron's shard row holds its artifact rows' values exactly: description, kind,
    test scores, evidence, closed-set concepts, keywords, summaries, exemplars."""
    run_dir = report.parents[1]
    clips, layers, _ = report_data(report.parent)

    def by_key(name):
        return {(r["layer"], r["unit"]): r for r in artifacts.read_jsonl(run_dir / name)}
    ex, su, co, xp, ev = (by_key(n) for n in (artifacts.EXEMPLARS, artifacts.SUMMARIES,
                                              artifacts.CONCEPTS, artifacts.EXPLANATIONS,
                                              artifacts.EVIDENCE))
    checked = 0
    for key in [tuple(hostile_key), *[k for k in xp if not xp[k]["no_clear_concept"]][:3]]:
        pl = layers[key[0]]
        row = row_dict(next(r for r in pl["rows"] if r[0] == key[1]), pl["fields"],
                       pl["strings"])
        x = xp[key]
        assert row["desc"] == x["description"] and row["kind"] == x["kind"]
        test = x.get("test") or {}
        assert row["det"] == test.get("detection") and row["corr"] == test.get("correlation")
        assert bool(row["flags"] & 2) == x["no_clear_concept"]
        assert row["why"] == (x.get("why") or "" if x["no_clear_concept"] else "")
        assert row["writer"] == su[key]["llm"] and row["low"] == (su[key].get("low") or "")
        assert row["evidence"] == [[e["term"], e["auroc"], e["effect"], e["support"]]
                                   for e in ev[key]["evidence"][:5]]
        closed = co[key]["closed"]
        assert row["concepts"] == [[m, [list(c) for c in closed[m]]] for m in closed]
        kw = co[key]["keywords"]
        assert row["keywords"][:3] == [kw["adjectives"], kw["nouns"], kw["verbs"]]
        for side in ("top", "bottom"):
            assert [[clips[c]["id"], v, p] for c, v, p in row[side]] == [
                [e["clip"], round_sig(e["value"], 4), round_sig(e["peak_ms"], 4)]
                for e in ex[key][side][:5]]
        checked += row["det"] is not None
    assert checked >= 3
    hostile = layers[hostile_key[0]]
    assert XSS not in (report.parent / shards.layer_file(
        list(layers).index(hostile_key[0]), hostile_key[0])).read_text(encoding="utf-8")
    assert any(XSS in r[hostile["fields"].index("desc")] for r in hostile["rows"])


def test_index_size_bounded_by_layers_not_neurons(tmp_path, synthetic_run):
    """The page does not grow with the neurons; the data grow by under 1 kB per neuron (k=5);
    each exemplar clip is written once."""
    sizes = {}
    for units in (20, 2000):
        run = synthetic_run(tmp_path / f"run{units}", units)
        index = build_report(run, max_audio_cards=2, progress=False)
        out = index.parent
        data = sum(f.stat().st_size for f in (out / shards.SHARD_DIR).iterdir())
        sizes[units] = (index.stat().st_size, data, len(list((out / "audio").iterdir())))
        assert index.stat().st_size < 20_000
    (small, data_small, wav_small), (big, data_big, wav_big) = sizes[20], sizes[2000]
    assert abs(big - small) < 200, sizes  # only the counts' digits differ
    per_neuron = (data_big - data_small) / (2 * (2000 - 20))
    assert 50 < per_neuron < 1000, sizes
    assert wav_small == wav_big == 12


def test_build_into_out_dir(tmp_path, synthetic_run):
    run = synthetic_run(tmp_path / "run", 3)
    index = build_report(run, out_dir=tmp_path / "elsewhere", max_audio_cards=0, progress=False)
    assert index == tmp_path / "elsewhere" / "index.html" and index.is_file()
    assert not (run / artifacts.REPORT_DIR).exists()
    clips, layers, _ = report_data(index.parent)
    assert all(not c["image"] for c in clips) and len(layers) == 2
    audio_before = {p.name for p in (index.parent / "audio").iterdir()}
    (index.parent / "audio" / "mine.wav").write_bytes(b"x")  # not the report's: kept
    build_report(run, out_dir=tmp_path / "elsewhere", max_cards=2, progress=False)
    assert (index.parent / "audio" / "mine.wav").read_bytes() == b"x"
    clips2, layers2, _ = report_data(index.parent)
    assert sum(len(p["rows"]) for p in layers2.values()) == 2
    specs = sorted((index.parent / "assets" / "spec").iterdir())
    assert len(specs) == 12 and all(c["image"] for c in clips2)
    # without spectrograms again: the previous build's images are stale (its own files), gone
    build_report(run, out_dir=tmp_path / "elsewhere", max_cards=2, max_audio_cards=0,
                 progress=False)
    assert not (index.parent / "assets" / "spec").exists()
    assert {p.name for p in (index.parent / "audio").iterdir()} == audio_before | {"mine.wav"}
    assert (index.parent / "audio" / "mine.wav").read_bytes() == b"x"


def test_a_report_never_deletes_or_overwrites_a_users_files(tmp_path, synthetic_run):
    """Stale-file removal deletes only what the previous build listed as its own; a folder of
    someone else's files is refused as out_dir, untouched."""
    run = synthetic_run(tmp_path / "run", 3)
    index = build_report(run, max_audio_cards=0, progress=False)
    out = index.parent
    listed = json.loads((out / ".dissect-report-files.json").read_text())
    assert "index.html" in listed and "assets/report.js" in listed
    user = {"audio/mine.wav": b"RIFF", "assets/logo.png": b"\x89PNG", "data/notes.txt": b"n",
            "audio/sub/take.wav": b"RIFF2"}
    for rel, data in user.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    build_report(run, max_cards=1, max_audio_cards=0, progress=False)
    for rel, data in user.items():
        assert (out / rel).read_bytes() == data
    foreign = tmp_path / "my-site"
    foreign.mkdir()
    (foreign / "index.html").write_bytes(b"<h1>mine</h1>")
    with pytest.raises(artifacts.RunDirRefused, match="not empty and not a report directory"):
        build_report(run, out_dir=foreign, progress=False)
    assert [p.name for p in foreign.iterdir()] == ["index.html"]
    assert (foreign / "index.html").read_bytes() == b"<h1>mine</h1>"


def test_overlay_traces_match_recorded_peaks(report):
    """Re-running the model for the overlays reproduces the recorded pooled value and peak."""
    from dissect.recording.traces import run_traces

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

    from dissect.description.captions import terms_by_clip
    from dissect.explain.candidates import term_matrix
    from dissect.explain.scoring import claim_prediction, score_prediction
    from dissect.explain.splits import assign_splits, split_keys
    from dissect.recording.store import load_activations

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
    split = assign_splits(ids, (0.6, 0.2, 0.2), 0, *split_keys(clips))
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
        assert r["status"] == "confirmed" and r["val"]["p"] <= 0.05
        assert r["val"]["correlation"] > 0
        if checked >= 20:
            continue
        s = summaries[r["layer"], r["unit"]]
        mask = split == "test"
        mask[[pos[c] for c in s["top_clips"] + s["bottom_clips"]]] = False
        A = load_activations(tiny_run, r["layer"]).numpy()[:, r["unit"]]
        want = score_prediction(claim_prediction(X, index, cand["claims"])[mask], A[mask])
        assert {k: v for k, v in r["test"].items() if k != "p"} == want
        checked += 1
    assert checked > 0
    with open(tiny_run / artifacts.DESCRIPTIONS, newline="") as fh:
        table = list(_csv.DictReader(fh))
    assert [t["description"] for t in table if (t["layer"], int(t["unit"])) != hostile_key] == [
        r["description"] for r in ex if (r["layer"], r["unit"]) != hostile_key]
    assert {"kind", "status", "why", "test_correlation", "test_detection", "evidence",
            "and_summary"} <= set(table[0])


def test_cards_carry_evidence_and_the_overview_the_score_distribution(report):
    page = report.read_text(encoding="utf-8")
    assert "Description scores (test split)" in page
    _, layers, _ = report_data(report.parent)
    rows = [row_dict(r, p["fields"], p["strings"]) for p in layers.values() for r in p["rows"]]
    assert any(r["evidence"] for r in rows) and all(r["kind"] is not None for r in rows)
