"""shown_descriptions_table (``dissect show-descriptions``): per layer, the neuron with the best
test AUROC among those whose first shown term has enough fit clips; evenly spaced layers."""

import pytest

from dissect import artifacts
from dissect.report.shown import (
    ShowDescriptionsConfig,
    pick_shown,
    shown_descriptions_table,
    spaced_layers,
)
from dissect.rows import neuron_row


def make_run(tmp_path, layers=("l0", "l1", "l2", "l3")):
    """Three neurons a layer: unit 0 (AUROC 0.9, its term in 5 fit clips), unit 1 (0.8, 20
    clips), unit 2 (0.8, 30 clips, "a | b"); l3's are all "none"."""
    ex, ev = [], []
    for layer in layers:
        for unit, (auroc, support) in enumerate([(0.9, 5), (0.8, 20), (0.8, 30)]):
            text = "a | b" if unit == 2 else f"{layer} sound {unit}"
            term = f"label=t{unit}"
            ex.append({"layer": layer, "unit": unit, "description": text,
                       "kind": "none" if layer == "l3" else "template",
                       "candidates": [{"kind": "template", "text": text, "terms": [term]}],
                       "test": {"detection": auroc, "n_pos": 4, "n_neg": 6}})
            ev.append({"layer": layer, "unit": unit,
                       "evidence": [{"term": term, "auroc": auroc, "support": support}]})
    run = tmp_path / "run"
    artifacts.write_jsonl(run / artifacts.EXPLANATIONS, ex)
    artifacts.write_jsonl(run / artifacts.EVIDENCE, ev)
    return run


def test_table_picks_by_the_rule(tmp_path):
    run = make_run(tmp_path)
    lines = shown_descriptions_table(ShowDescriptionsConfig(run_dir=str(run), n=2,
                                                            min_support=15)).splitlines()
    assert lines[0].startswith("| layer | unit | description |") and lines[1].startswith("|---")
    # n=2: the first and the last layer; l3 has only "none" rows, so only l0 is left; among
    # units 1 and 2 (support >= 15, tied AUROC) the lower unit wins
    assert lines[2:] == ["| l0 | 1 | l0 sound 1 | template | 0.80 | 10 | 20 |"]
    lines = shown_descriptions_table(ShowDescriptionsConfig(
        run_dir=str(run), min_support=0, layers=["l1", "l2"])).splitlines()
    assert lines[2:] == ["| l1 | 0 | l1 sound 0 | template | 0.90 | 10 | 5 |",
                         "| l2 | 0 | l2 sound 0 | template | 0.90 | 10 | 5 |"]
    lines = shown_descriptions_table(ShowDescriptionsConfig(
        run_dir=str(run), min_support=25, layers=["l2"])).splitlines()
    assert lines[2:] == ["| l2 | 2 | a \\| b | template | 0.80 | 10 | 30 |"]  # | escaped


def test_spaced_layers_and_pick_without_terms():
    assert spaced_layers(["a", "b", "c", "d", "e"], 3) == ["a", "c", "e"]
    assert spaced_layers(["a", "b"], 10) == ["a", "b"]
    assert spaced_layers(["a", "b", "c"], 1) == ["a"]
    rows = [neuron_row("a", 0, explanation={"description": "x", "kind": "template",
                                            "test": {"detection": 0.7}})]
    assert pick_shown(rows, ["a"], 1) == [] and pick_shown(rows, ["a"], 0) == rows


def test_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match="explanations.jsonl"):
        shown_descriptions_table(ShowDescriptionsConfig(run_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="n=0: must be an integer >= 1"):
        ShowDescriptionsConfig(run_dir=str(tmp_path), n=0)
