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
    rc = main(["run", f"run_dir={run_dir}", "probe.synth.n_clips=30",
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
    from dissect.record.traces import run_traces
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
