"""One tiny real run (CREPE tiny, 30 synth clips, two layers, rule-based summaries) and its report,
shared by the report tests. A hostile description is injected before the report is built."""

import json

import pytest

from dissect import artifacts

XSS = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"
#: How many cards get spectrograms in the shared report (keeps the model re-run small).
AUDIO_CARDS = 3


@pytest.fixture(scope="session")
def xss():
    return XSS


@pytest.fixture(scope="session")
def audio_cards():
    return AUDIO_CARDS


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    from dissect.cli import main

    root = tmp_path_factory.mktemp("report")
    run_dir = root / "run"
    rc = main(["run", f"run_dir={run_dir}", "probe.synth.n_clips=60",
               f"probe.synth.cache_dir={root / 'synth'}", "model.layers=[conv6,classifier]",
               "llm.client=rules", "record.progress=false",
               "stages=[probe,record,caption,summarize,concepts,explain,evaluate]"])
    assert rc in (0, None), "dissect run failed"
    return run_dir


@pytest.fixture(scope="session")
def hostile_key(tiny_run):
    """Inject the XSS description into the first conv6 neuron; return its (layer, unit)."""
    path = tiny_run / artifacts.SUMMARIES
    rows = artifacts.read_jsonl(path)
    target = next(r for r in rows if r["layer"] == "conv6")
    target["calibrated"] = target["high"] = f"Hostile {XSS} description"
    target["llm"] = "evil-llm<b>bold</b>\"'"
    artifacts.write_jsonl(path, rows)
    # the card shows the explain stage's chosen description: make that one hostile too
    ex_path = tiny_run / artifacts.EXPLANATIONS
    ex = artifacts.read_jsonl(ex_path)
    for r in ex:
        if (r["layer"], r["unit"]) == (target["layer"], target["unit"]):
            r["description"] = target["calibrated"]
            r["why"] = f"why {XSS}"
    artifacts.write_jsonl(ex_path, ex)
    return target["layer"], target["unit"]


@pytest.fixture(scope="session")
def report(tiny_run, hostile_key):
    """Build the report (with fake prune and HEAR results holding hostile strings too)."""
    from dissect.recording.traces import run_traces
    from dissect.report import build_report

    (tiny_run / "prune").mkdir(exist_ok=True)
    (tiny_run / "prune" / "brass.json").write_text(json.dumps({
        "concept": "brass" + XSS, "measures": {"acc": {"target": {"before": 0.9, "after": 0.2},
                                                       "rest": {"before": 0.8, "after": 0.75}}},
        "neurons": [{"layer": "conv6", "unit": 3, "why": XSS}]}), encoding="utf-8")
    (tiny_run / "hear").mkdir(exist_ok=True)
    (tiny_run / "hear" / "scores.csv").write_text(
        f"module,task,score\ndissect.hear.crepe,nsynth_pitch,0.71\nx{XSS},t,1\n", encoding="utf-8")
    index = build_report(tiny_run, max_audio_cards=AUDIO_CARDS, progress=False,
                         traces=run_traces)
    return index


def write_synthetic_run(run_dir, units, layers=("enc.conv1", "enc.fc2"), n_clips=12,
                        hostile=False, seed=0):
    """Artifacts of a run written directly (no model): ``units`` neurons per layer, k=5.

    Every neuron has a summary, concepts, an explanation and evidence; the clips are short
    sine WAVs. ``hostile``: the clip ids, captions, descriptions, LLM names, concepts,
    keywords, evidence terms and failure messages all carry XSS strings (layer names cannot:
    a run refuses any but a plain name, ``artifacts.check_layer_name``).
    """
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    h = XSS if hostile else ""
    (run_dir / "clips").mkdir(exist_ok=True)
    clips = []
    for i in range(n_clips):
        path = run_dir / "clips" / f"c{i}.wav"
        t = np.arange(2000) / 8000.0
        sf.write(str(path), (0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t)).astype("float32"),
                 8000, subtype="PCM_16")
        clips.append({"id": f"clip-{i}{h}", "path": str(path), "seconds": 0.25,
                      "labels": {"kind": "tone"}})
    artifacts.write_jsonl(run_dir / artifacts.CLIPS, clips)
    (run_dir / artifacts.CONFIG).write_text(json.dumps({
        "model": {"name": f"synthetic{h}"}, "audio": {"sample_rate": 8000},
        "describe": {"k": 5}, "caption": {"captioners": ["acoustic"]}}), encoding="utf-8")
    (run_dir / artifacts.MANIFEST).write_text(json.dumps({"stages": {}}), encoding="utf-8")
    (run_dir / artifacts.SCORES).write_text(json.dumps({
        "layers": {layer: {"interpretable_fraction": 0.5} for layer in layers}}),
        encoding="utf-8")
    artifacts.write_jsonl(run_dir / artifacts.CAPTIONS, [
        {"clip": c["id"], "captioner": "acoustic", "text": f"a tone {i}{h}"}
        for i, c in enumerate(clips)])
    ex, su, co, xp, ev = [], [], [], [], []
    for layer in layers:
        for unit in range(units):
            order = rng.permutation(n_clips)
            vals = np.sort(rng.normal(size=n_clips))[::-1]
            ex.append({"layer": layer, "unit": unit, "mean": 0.0, "std": 1.0,
                       "top": [{"clip": clips[j]["id"], "value": float(v), "peak_ms": 120.0}
                               for j, v in zip(order[:5], vals[:5], strict=True)],
                       "bottom": [{"clip": clips[j]["id"], "value": float(v), "peak_ms": 40.0}
                                  for j, v in zip(order[-5:], vals[-5:], strict=True)]})
            failed = hostile and unit == 0
            su.append({"layer": layer, "unit": unit, "high": f"high tones {unit}{h}",
                       "calibrated": f"high tones {unit}{h}", "low": f"low tones{h}",
                       "llm": f"rule-based (no LLM){h}" if hostile else "rule-based (no LLM)",
                       "failed": failed, "llm_failed": f"openai-http:m{h}",
                       "errors": [f"top: LLM call failed: HTTP 503{h}"] if failed else []})
            co.append({"layer": layer, "unit": unit,
                       "closed": {"db": [[f"tone{h}", 0.41235], [f"hum{h}", 0.1]]},
                       "keywords": {"adjectives": [f"bright{h}"], "nouns": [f"tone{h}"],
                                    "verbs": ["ring"], "all_adjectives": [f"bright{h}", "high"]}})
            det = round(float(rng.uniform(0.4, 1.0)), 4)
            xp.append({"layer": layer, "unit": unit, "description": f"tone {unit}{h}",
                       "kind": "evidence", "no_clear_concept": unit % 7 == 3,
                       "why": f"nothing passes{h}",
                       "test": {"detection": det, "correlation": round(det - 0.5, 4)},
                       "candidates": [{"kind": "llm", "note": f"rejected: LLM call failed: t{h}"}]
                       if failed else []})
            ev.append({"layer": layer, "unit": unit, "evidence": [
                {"term": f"kind=tone{h}", "auroc": 0.8123, "effect": 1.25, "support": 7}]})
    for name, rows in ((artifacts.EXEMPLARS, ex), (artifacts.SUMMARIES, su),
                       (artifacts.CONCEPTS, co), (artifacts.EXPLANATIONS, xp),
                       (artifacts.EVIDENCE, ev)):
        artifacts.write_jsonl(run_dir / name, rows)
    return run_dir


@pytest.fixture(scope="session")
def synthetic_run():
    """``synthetic_run(run_dir, units, **kw)``: see :func:`write_synthetic_run`."""
    return write_synthetic_run


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory):
    """A synthetic run with XSS strings in every artifact field, and its report."""
    from dissect.report import build_report

    run = write_synthetic_run(tmp_path_factory.mktemp("hostile") / "run", 30, hostile=True)
    return build_report(run, max_audio_cards=2, progress=False)
