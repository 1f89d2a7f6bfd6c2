"""One typed row per neuron (:mod:`dissect.rows`): the join of a run's per-neuron artifacts."""

from dissect import artifacts
from dissect.rows import and_summary, join, neuron_row, read_rows, summary_concept


def _artifacts():
    exemplars = [{"layer": "l", "unit": u, "top": [{"clip": f"c{u}"}, {"clip": "z"}],
                  "bottom": [], "mean": 0.0, "std": 1.0} for u in (0, 1, 2)]
    summaries = [
        {"layer": "l", "unit": 0, "calibrated": "Bright piano notes.", "high": "raw",
         "low": "noise", "llm": "smollm2"},
        {"layer": "l", "unit": 1, "calibrated": "", "high": "Responds most to sounds described "
         "as: hiss; least to: tone", "llm": "rule-based (no LLM)", "failed": True},
        {"layer": "l", "unit": 2, "llm": "rule-based (no LLM)"},
    ]
    concepts = [{"layer": "l", "unit": 0, "closed": {"db": [["piano", 0.9]]},
                 "keywords": {"adjectives": ["bright"]}}]
    evidence = [{"layer": "l", "unit": 0, "evidence": [
        {"term": "family=Piano", "auroc": 0.9, "effect": 2.0, "p": 0.001, "support": 12},
        {"term": "register=high", "auroc": 0.7, "effect": 1.0, "p": 0.01, "support": 30}]}]
    explanations = [{"layer": "l", "unit": 0, "description": "piano (family=Piano)",
                     "kind": "evidence", "status": "confirmed", "why": "best on validation",
                     "no_clear_concept": False, "test": {"correlation": 0.6},
                     "candidates": [{"kind": "and", "text": "x", "terms": []},
                                    {"kind": "evidence", "text": "piano (family=Piano)",
                                     "terms": ["family=Piano"]}]},
                    {"layer": "l", "unit": 1, "description": "no clear concept", "kind": "none",
                     "status": "unconfirmed", "no_clear_concept": True, "candidates": []}]
    return summaries, concepts, evidence, explanations, exemplars


def test_join_by_hand():
    rows = join(*_artifacts())
    assert [r.key for r in rows] == [("l", 0), ("l", 1), ("l", 2)]
    a, b, c = rows
    assert (a.text, a.kind, a.status, a.test) == ("piano (family=Piano)", "evidence",
                                                 "confirmed", {"correlation": 0.6})
    assert a.summary == "Bright piano notes." and a.low == "noise" and a.llm == "smollm2"
    assert a.shown_terms == [{"term": "family=Piano", "auroc": 0.9, "effect": 2.0, "p": 0.001,
                              "support": 12}]
    assert a.concepts == {"db": [["piano", 0.9]]} and a.keywords == {"adjectives": ["bright"]}
    assert a.top_clips == ["c0", "z"] and a.explained and not a.no_clear_concept
    # an empty calibrated summary falls back to the raw one; the shown text is the verdict
    assert b.summary.startswith("Responds most") and b.failed and b.no_clear_concept
    assert b.text == "no clear concept" and b.shown_terms == []
    # not explained: the text is AND's summary ("" here), no kind, no shown record
    assert (c.text, c.kind, c.explained) == ("", "", False) and c.record()["shown"] is None


def test_record_is_what_the_scorers_select_on():
    a, b, _ = join(*_artifacts())
    assert a.record() == {
        "layer": "l", "unit": 0, "description": "Bright piano notes.", "llm": "smollm2",
        "keywords": {"adjectives": ["bright"]}, "closed": {"db": [["piano", 0.9]]},
        "top_clips": ["c0", "z"],
        "shown": {"text": "piano (family=Piano)", "kind": "evidence",
                  "terms": [{"term": "family=Piano", "auroc": 0.9, "effect": 2.0, "p": 0.001,
                             "support": 12}]}}
    assert b.record()["description"] == "Responds most to sounds described as: hiss"


def test_summary_helpers_and_reading_a_run(tmp_path):
    assert and_summary({"calibrated": "", "high": "h"}) == "h" == and_summary({"high": "h"})
    assert and_summary({}) == ""
    assert summary_concept({"high": "a; b", "llm": "rule-based (no LLM)"}) == "a"
    assert summary_concept({"high": "a; b", "llm": "smollm2"}) == "a; b"
    names = (artifacts.SUMMARIES, artifacts.CONCEPTS, artifacts.EVIDENCE,
             artifacts.EXPLANATIONS, artifacts.EXEMPLARS)
    for name, rows in zip(names, _artifacts(), strict=True):
        artifacts.write_jsonl(tmp_path / name, rows)
    assert read_rows(tmp_path) == join(*_artifacts())
    (tmp_path / artifacts.EXPLANATIONS).unlink()
    assert [r.text for r in read_rows(tmp_path)] == ["Bright piano notes.",
                                                     "Responds most to sounds described as: "
                                                     "hiss; least to: tone", ""]
    assert read_rows(tmp_path / "nothing") == []
    assert neuron_row("x", 3).key == ("x", 3)
