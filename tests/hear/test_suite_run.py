"""A whole suite end to end (:func:`dissect.hear.suite.run_suite`, ``dissect hear modules=``) on
the tiny ``loud`` task with cheap modules (logmel, CREPE tiny, and their concatenation), and the
resume rule: a finished module is read back, not run again."""

import csv
import json
import shutil

import pytest

from dissect.cli import main
from dissect.hear import suite as S

pytestmark = pytest.mark.usefixtures("one_thread")

ENTRIES = ["logmel", "crepe_tiny", "gura_cat(members=crepe_tiny+logmel)"]
LABELS = ["logmel", "crepe_tiny", "gura_cat[crepe_tiny+logmel]"]
RUN = {"grid": "faster", "grid_points": 1, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def finished(loud_task, tmp_path_factory, one_thread):
    """``(out_dir, suite)`` of one real run (read only: tests that change it copy it)."""
    out = tmp_path_factory.mktemp("suite")
    return out, S.run_suite(ENTRIES, loud_task, out, log=lambda s: None, **RUN)


def _scores(out, label):
    return json.loads((out / label / "scores.json").read_text())


def test_suite_rows_are_the_modules_scores_exactly(finished):
    out, suite = finished
    assert suite["reused"] == [] and [m["label"] for m in suite["modules"]] == LABELS
    rows = list(csv.DictReader((out / "suite.csv").open()))
    assert [(r["module"], r["task"]) for r in rows] == [(x, "loud-v1-full") for x in LABELS]
    for r in rows:
        want = next(x for x in _scores(out, r["module"])["rows"] if x["primary"])
        assert r["score"] == want["score"] == "top1_acc"
        assert (float(r["mean"]), float(r["std"]), int(r["n"]), int(r["n_nan"])) == (
            want["mean"], want["std"], want["n"], want["n_nan"])
    assert rows[2]["ensemble"] == "True" and rows[2]["beats_members"] in ("yes", "no")
    saved = json.loads((out / "suite.json").read_text())
    cmp = saved["comparisons"]["gura_cat[crepe_tiny+logmel]"]["tasks"]["loud-v1-full"]
    assert [m["entry"] for m in cmp["members"]] == ["crepe_tiny", "logmel"]
    assert (out / "suite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "suite.md").read_text() == suite["markdown"]
    assert "| gura_cat[crepe_tiny+logmel] (ensemble) |" in suite["markdown"]


def test_finished_modules_are_not_run_again(finished, loud_task, tmp_path, monkeypatch):
    out = tmp_path / "suite"
    shutil.copytree(finished[0], out)
    mtimes = {lab: (out / lab / "scores.json").stat().st_mtime_ns for lab in LABELS}
    ran: list[str] = []

    def fake_run_hear(module, tasks_dir, where, *args, **kw):
        ran.append(where.name)
        return _scores(finished[0], where.name)["rows"]

    monkeypatch.setattr(S, "run_hear", fake_run_hear)
    again = S.run_suite(ENTRIES, loud_task, out, log=lambda s: None, **RUN)
    assert ran == [] and again["reused"] == LABELS
    assert {lab: (out / lab / "scores.json").stat().st_mtime_ns for lab in LABELS} == mtimes
    assert again["rows"] == finished[1]["rows"]
    (out / "crepe_tiny" / "scores.json").unlink()  # killed before crepe_tiny finished
    S.run_suite(ENTRIES, loud_task, out, log=lambda s: None, **RUN)
    assert ran == ["crepe_tiny"]
    ran.clear()
    S.run_suite(ENTRIES, loud_task, out, log=lambda s: None, **{**RUN, "grid_points": 2})
    assert ran == ["logmel", "crepe_tiny", "gura_cat[crepe_tiny+logmel]"]  # other settings


def test_hear_command_runs_a_suite_and_prints_the_table(finished, loud_task, tmp_path, capsys):
    out = tmp_path / "suite"
    shutil.copytree(finished[0], out)
    assert main(["hear", f"modules=[{','.join(ENTRIES)}]", f"tasks_dir={loud_task}",
                 f"out_dir={out}", "grid=faster", "grid_points=1", "device=cpu"]) == 0
    err = capsys.readouterr().err
    assert finished[1]["markdown"] in err  # every module reused: the same table
    assert json.loads((out / "suite.json").read_text())["reused"] == LABELS


def test_ensemble_is_combined_from_the_members_caches(finished, loud_task, tmp_path):
    """The concatenation is computed from the members' cached embeddings (no member runs twice)
    and scores what the gura_cat module itself scores on the same task."""
    out, suite = finished
    label = "gura_cat[crepe_tiny+logmel]"
    assert suite["combined"] == {label: ["crepe_tiny", "logmel"]}
    meta = json.loads((out / label / "embeddings" / "loud-v1-full"
                       / "fold00.embedding-meta.json").read_text())
    assert meta["combined_from"] == [f"dissect.hear.modules.{m}" for m in ("crepe_tiny", "logmel")]
    assert meta["op"] == "cat"
    widths = [json.loads((out / m / "embeddings" / "loud-v1-full"
                          / "fold00.embedding-dimensions.json").read_text())[1]
              for m in ("crepe_tiny", "logmel")]
    assert meta["shape"][1] == sum(widths)
    direct = S.run_hear("dissect.hear.modules.gura_cat", loud_task, tmp_path / "direct",
                        model_options={"members": "crepe_tiny,logmel"}, log=lambda s: None,
                        grid="faster", grid_points=1, device="cpu")
    got = _scores(out, label)["rows"]
    assert [(r["score"], r["n"]) for r in got] == [(r["score"], r["n"]) for r in direct]
    for g, d in zip(got, direct, strict=True):
        assert g["mean"] == pytest.approx(d["mean"], abs=1e-6, nan_ok=True)


def test_which_ensembles_are_combined():
    entries = S.parse_entries(["logmel", "crepe_tiny", "gura_cat(members=crepe_tiny+logmel)",
                               "gura_avg(members=crepe_tiny+logmel;seed=3)",
                               "gura_cat(members=crepe_tiny+whisper_tiny)",
                               "gura_avg(members=crepe_tiny+logmel;dim=16)",
                               "gura_fusion(members=crepe_tiny+logmel)"])
    got = {e.label: S.combinable(e, entries) for e in entries}
    assert {k: [m.label for m in v] for k, v in got.items() if v is not None} == {
        "gura_cat[crepe_tiny+logmel]": ["crepe_tiny", "logmel"],
        "gura_avg[crepe_tiny+logmel;seed=3]": ["crepe_tiny", "logmel"]}
