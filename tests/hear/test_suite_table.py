"""The suite table (:mod:`dissect.hear.suite`) on synthetic score rows, against numbers computed
by hand: min-max normalisation per task, the mean normalised score, and whether an ensemble
beats each of its members (no model runs)."""

import csv
import io

import pytest

from dissect.hear.suite import (
    compare,
    normalise,
    parse_entries,
    suite_csv,
    suite_markdown,
    suite_plot,
    suite_table,
)

CAT2 = "gura_cat[crepe_tiny+logmel]"
# gura_cat's default members are crepe_full, crepe_tiny and logmel: crepe_full is not in the suite
ENTRIES = ["logmel", "crepe_tiny", "gura_cat(members=crepe_tiny+logmel)", "gura_cat"]
# task -> (primary score, {label: (mean, std)}); segment_1s_er: lower is better
SCORES = {
    "a": ("top1_acc", {"logmel": (0.60, 0.01), "crepe_tiny": (0.70, 0.02), CAT2: (0.80, 0.01),
                       "gura_cat": (0.65, 0.03)}),
    "b": ("segment_1s_er", {"logmel": (0.40, 0.02), "crepe_tiny": (0.30, 0.01),
                            CAT2: (0.35, 0.02), "gura_cat": (0.20, 0.01)}),
    "c": ("mAP", {"logmel": (0.50, 0.0), CAT2: (0.50, 0.0)}),  # a tie; two modules lack it
}


def _rows():
    """label -> score rows as :func:`dissect.hear.evaluate.summarize` makes them (plus a
    secondary score row, which the table ignores)."""
    out = {}
    for task, (score, by_label) in SCORES.items():
        for label, (mean, std) in by_label.items():
            out.setdefault(label, []).append({
                "module": "ignored", "task": task, "score": score, "primary": True, "mean": mean,
                "std": std, "n": 3, "n_nan": 0, "over": "folds", "values": []})
            out[label].append({**out[label][-1], "score": "other", "primary": False,
                               "mean": 0.0})
    return out


@pytest.fixture(scope="module")
def table():
    return suite_table(parse_entries(ENTRIES), _rows(), ["a", "b", "c"])


def test_normalise_is_min_max_per_task_flipped_for_lower_is_better():
    assert normalise({"x": 0.5, "y": 0.7, "z": 0.6}) == pytest.approx(
        {"x": 0.0, "y": 1.0, "z": 0.5})
    assert normalise({"x": 0.5, "y": 0.7, "z": 0.6}, maximize=False) == pytest.approx(
        {"x": 1.0, "y": 0.0, "z": 0.5})
    assert normalise({"x": 0.3, "y": 0.3, "z": None}) == {"x": 1.0, "y": 1.0, "z": None}
    assert normalise({"x": None}) == {"x": None}


def test_compare_verdicts_and_margin_vs_best_member():
    got = compare(0.8, [("m1", "m1", 0.7), ("m2", "m2", 0.6)])
    assert got["verdict"] == "yes" and got["best_member"] == "m1"
    assert got["margin_vs_best"] == pytest.approx(0.1)
    assert [m["beats"] for m in got["members"]] == [True, True]
    lower = compare(0.35, [("m1", "m1", 0.30), ("m2", "m2", 0.40)], maximize=False)
    assert lower["verdict"] == "no" and lower["margin_vs_best"] == pytest.approx(-0.05)
    partial = compare(0.8, [("m0", None, None), ("m1", "m1", 0.7)])
    assert partial["verdict"] == "partial"
    assert partial["members"][0] == {"member": "m0", "entry": None, "note": "member not in suite"}
    assert compare(0.8, [("m0", None, None)])["verdict"] is None
    assert compare(0.5, [("m1", "m1", 0.5)])["verdict"] == "no"  # a tie does not beat


def test_table_normalised_scores_and_means_by_hand(table):
    norm = {(r["module"], r["task"]): r["normalised"] for r in table["rows"]}
    # a: min .6 max .8; b (lower is better): min .2 max .4; c: a tie -> both 1
    assert norm == pytest.approx({
        ("logmel", "a"): 0.0, ("crepe_tiny", "a"): 0.5, (CAT2, "a"): 1.0, ("gura_cat", "a"): 0.25,
        ("logmel", "b"): 0.0, ("crepe_tiny", "b"): 0.5, (CAT2, "b"): 0.25, ("gura_cat", "b"): 1.0,
        ("logmel", "c"): 1.0, (CAT2, "c"): 1.0})
    means = table["mean_normalised"]
    assert {k: v["mean"] for k, v in means.items()} == pytest.approx(
        {"logmel": 1 / 3, "crepe_tiny": 0.5, CAT2: 0.75, "gura_cat": 0.625})
    assert {k: v["n_tasks"] for k, v in means.items()} == {
        "logmel": 3, "crepe_tiny": 2, CAT2: 3, "gura_cat": 2}
    assert [t["maximize"] for t in table["tasks"]] == [True, False, True]
    assert {m["label"]: m["members"] for m in table["modules"]} == {
        "logmel": None, "crepe_tiny": None, CAT2: ["crepe_tiny", "logmel"],
        "gura_cat": ["crepe_full", "crepe_tiny", "logmel"]}


def test_table_says_whether_an_ensemble_beats_each_member(table):
    cat2, cat3 = table["comparisons"][CAT2], table["comparisons"]["gura_cat"]
    assert set(table["comparisons"]) == {CAT2, "gura_cat"}
    verdicts = {t: (c["verdict"], c["best_member"], c["margin_vs_best"])
                for t, c in cat2["tasks"].items()}
    assert verdicts == {"a": ("yes", "crepe_tiny", pytest.approx(0.10)),
                        "b": ("no", "crepe_tiny", pytest.approx(-0.05)),
                        "c": ("no", "logmel", 0.0)}  # crepe_tiny has no score on c
    assert [m["margin"] for m in cat2["tasks"]["a"]["members"]] == pytest.approx([0.10, 0.20])
    assert cat3["tasks"]["b"]["verdict"] == "partial"  # beats crepe_tiny and logmel
    assert cat3["tasks"]["b"]["members"][0]["note"] == "member not in suite"
    assert cat3["tasks"]["a"]["verdict"] == "no"
    assert (cat2["mean_normalised"]["verdict"], cat2["mean_normalised"]["margin_vs_best"]) == (
        "yes", pytest.approx(0.25))
    assert cat3["mean_normalised"]["verdict"] == "partial"


def test_markdown_and_csv(table):
    md = suite_markdown(table)
    assert md.splitlines()[0] == ("| module | a (top1_acc) | b (segment_1s_er) | c (mAP) "
                                  "| mean normalised |")
    assert (f"| {CAT2} (ensemble) | 0.800 ± 0.010 ✓ +0.100 | 0.350 ± 0.020 ✗ -0.050 "
            "| 0.500 ± 0.000 ✗ +0.000 | 0.750 ✓ +0.250 |") in md
    assert "| crepe_tiny | 0.700 ± 0.020 | 0.300 ± 0.010 | – | 0.500 (2/3 tasks) |" in md
    assert "| gura_cat (ensemble) | 0.650 ± 0.030 ✗ -0.050 | 0.200 ± 0.010 ✓* +0.100 |" in md
    assert "- gura_cat: members in the suite: crepe_tiny, logmel; member not in suite: " \
        "crepe_full; beats every member on 0 of 3 tasks, the members in the suite on 1 more." \
        in md
    rows = list(csv.DictReader(io.StringIO(suite_csv(table))))
    assert len(rows) == 10  # 4 + 4 + 2 module x task rows
    b = next(r for r in rows if r["module"] == "gura_cat" and r["task"] == "b")
    assert (b["score"], float(b["mean"]), float(b["std"]), b["n"], b["ensemble"]) == (
        "segment_1s_er", 0.20, 0.01, "3", "True")
    assert (b["beats_members"], b["normalised"], b["margin_vs_best_member"]) == (
        "partial", "1.0", "0.1")  # rounded to 6 decimals
    plain = next(r for r in rows if r["module"] == "logmel" and r["task"] == "a")
    assert (plain["beats_members"], plain["margin_vs_best_member"]) == ("", "")


def test_plot_is_a_png(table, tmp_path):
    path = suite_plot(table, tmp_path / "suite.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
