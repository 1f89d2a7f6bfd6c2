"""Spreadsheet-safe CSV cells (OWASP CSV injection): every CSV dissect writes for people."""

from __future__ import annotations

import csv
import io

import pytest

from dissect.util import FORMULA_START, csv_cell, csv_text, csv_uncell

ATTACKS = ["=HYPERLINK(\"http://x\",\"click\")", "-2+3+cmd|' /C calc'!A0", "+1+1", "@SUM(A1)",
           "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("text", ATTACKS)
def test_formula_cells_are_quoted_and_round_trip(text):
    cell = csv_cell(text)
    assert cell == "'" + text
    assert not cell.startswith(FORMULA_START)
    assert csv_uncell(cell) == text


@pytest.mark.parametrize("value", ["-0.5", "+3", "-inf", "1e-3", "plain text", "", 0.25, -7,
                                   None, "'quoted already"])
def test_numbers_and_plain_text_are_unchanged(value):
    assert csv_cell(value) == value
    if isinstance(value, str):
        assert csv_uncell(value) == value


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_text_quotes_every_cell_including_header():
    out = _cells(csv_text(["=h", "b"], [["-2+3", -1.5], ["ok", "@x"]]))
    assert out == [["'=h", "b"], ["'-2+3", "-1.5"], ["ok", "'@x"]]


def test_descriptions_csv_cells_never_start_a_formula():
    """A label like ``=HYPERLINK(...)`` reaches ``descriptions.csv`` as the description, the
    evidence and the summary; no cell may start like a formula (36 such rows before)."""
    from dissect.explain.explainer import explanations_csv

    label = "=HYPERLINK(\"http://evil\",\"x\")"
    ex = [{"layer": "l", "unit": u, "description": label, "kind": "template",
           "status": "confirmed", "why": "-1 below", "test": {"correlation": -0.25}}
          for u in range(3)]
    ev = [{"evidence": [{"term": f"label={label}", "auroc": 0.9, "effect": 1.0}]}] * 3
    summ = [{"high": "@cmd", "low": "+x", "llm": "rules"}] * 3
    conc = [{"closed": {"db": [("-2+3", 0.5)]}, "keywords": {"adjectives": ["=k"]}}] * 3
    rows = _cells(explanations_csv(ex, ev, summ, conc, ["labels"]))
    assert len(rows) == 4
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START) or cell == "-0.25", (row, cell)
    body = rows[1]
    assert body[2] == "'" + label
    assert body[6] == "-0.25"  # a number stays a number
    assert body[13] == "'@cmd" and body[14] == "'+x"


def test_guided_reader_undoes_the_quote(tmp_path):
    """The guided ensemble reads ``descriptions.csv`` back: it sees the original text."""
    from dissect.ensemble.guided import read_unit_texts

    (tmp_path / "descriptions.csv").write_text(
        csv_text(["layer", "unit", "description", "top_concepts", "keywords"],
                 [["conv1", 0, "-dark sounds", "", "=k1, k2"]]), "utf-8")
    texts = read_unit_texts(tmp_path)
    assert texts[("conv1", 0)]["description"] == ["-dark sounds"]
    assert "=k1" in texts[("conv1", 0)]["keywords"]
