"""Choosing the neurons that get LLM summaries."""

import pytest

from dissect.description.select import choose_llm_neurons, selectivity


def row(layer, unit, tops, mean, std):
    return {"layer": layer, "unit": unit, "top": [{"value": v} for v in tops], "mean": mean,
            "std": std}


def test_selectivity_by_hand():
    assert selectivity(row("a", 0, [3.0, 5.0], 1.0, 2.0)) == pytest.approx(1.5)
    assert selectivity(row("a", 0, [3.0], 1.0, 0.0)) == 0.0
    assert selectivity(row("a", 0, [], 1.0, 1.0)) == 0.0


def test_budget_split_between_head_and_other_layers():
    rows = [row("head", u, [float(u)], 0.0, 1.0) for u in range(10)]
    rows += [row("conv1", u, [float(10 - u)], 0.0, 1.0) for u in range(6)]
    chosen = choose_llm_neurons(rows, "head", 4)
    assert chosen == {("head", 9), ("head", 8), ("conv1", 0), ("conv1", 1)}
    # too few non-head neurons: the head layer fills the budget
    chosen = choose_llm_neurons(rows[:10] + rows[10:11], "head", 6)
    assert ("conv1", 0) in chosen and len(chosen) == 6
    assert len(choose_llm_neurons(rows, "head", -1)) == 16
    assert choose_llm_neurons(rows, None, 3) == {("conv1", 0), ("head", 9), ("conv1", 1)}
