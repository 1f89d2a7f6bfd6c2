"""Table 4 on a run: several concepts and methods in one table (the CLI's and the script's),
refused on a run without held-out clips."""

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from prune_toys import TwoUnitAdapter, TwoUnitNet

from dissect import artifacts
from dissect.pruning import NoHeldOutClips, prune_run, prune_table
from dissect.pruning.table4 import ConceptSpec, parse_concept

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "and_table4.py"


def make_run(tmp_path, heldout: bool | None = True, n: int = 24):
    """A run dir for the two-unit toy: fc1:0 described as dogs, fc1:1 as trains; held-out
    clips (x0, x1) with class a/b and a 'kind' label (dog when x0 > x1)."""
    run = tmp_path / "run"
    artifacts.write_jsonl(run / artifacts.SUMMARIES, [
        {"layer": "fc1", "unit": 0, "calibrated": "Loud dogs.", "llm": "x"},
        {"layer": "fc1", "unit": 1, "calibrated": "A quiet train.", "llm": "x"}])
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n):
        x = rng.uniform(0, 3, 2).astype(np.float32)
        path = tmp_path / f"h{i}.wav"
        sf.write(path, x, 16000, subtype="FLOAT")
        cls = "a" if i % 2 else "b"
        clips.append({"id": f"h{i}", "path": str(path),
                      "labels": {"category": cls, "kind": "dog" if x[0] > x[1] else "train"},
                      "metadata": {"group": f"src{i // 2}"}})
    artifacts.write_jsonl(run / artifacts.CLIPS, clips)  # stands in for the dissected clips
    if heldout is True:
        artifacts.write_jsonl(run / artifacts.HELDOUT, clips)
    elif heldout is False:
        artifacts.write_jsonl(run / artifacts.HELDOUT, [])
    return run


def toy(**kw):
    return dict(model=TwoUnitNet(), adapter=TwoUnitAdapter(), log=lambda s: None, **kw)


def test_parse_concept():
    assert parse_concept("hi-hat=Hi-hat") == ConceptSpec("hi-hat", ["Hi-hat"])
    assert parse_concept("bass drum=Bass drum, Kick") == ConceptSpec("bass drum",
                                                                    ["Bass drum", "Kick"])
    assert parse_concept("dog") == ConceptSpec("dog", [])
    with pytest.raises(ValueError):
        parse_concept("=x")


def test_table_with_several_concepts_and_methods(tmp_path):
    run = make_run(tmp_path)
    specs = [ConceptSpec("dog", target="kind=dog"), ConceptSpec("train", target="kind=train")]
    out = prune_table(run, specs, ["keyword"], seeds=(0, 1), points=2, bootstrap=200, **toy())
    assert [(r["concept"], r["method"]) for r in out["rows"]] == [("dog", "keyword"),
                                                                 ("train", "keyword")]
    ev = out["evaluation"]
    assert ev["source"] == "probe.holdout" and ev["heldout"] is True
    assert ev["split"]["n_select"] + ev["split"]["n_report"] == ev["n_clips"] == 24
    # groups (src0 = h0, h1, ...) are never divided between the halves
    sel = set(ev["select_ids"])
    for g in range(12):
        assert (f"h{2 * g}" in sel) == (f"h{2 * g + 1}" in sel)
    for r in out["rows"]:
        assert r["counts"]["select_target"] > 0 and r["counts"]["report_target"] > 0
        assert set(r["random"]["chosen_n"]) == {"0", "1"}
        stat = r["report"]["logit_delta_A"]
        assert stat["lo"] <= stat["value"] <= stat["hi"]
    assert out["mean"]["keyword"]["concepts"] == 2  # every concept, none dropped
    saved = json.loads((run / "prune" / "table4.json").read_text())
    assert saved["rows"] == out["rows"]
    md = (run / "prune" / "table4.md").read_text()
    assert "| dog | keyword |" in md and "mean over all concepts" in md and "held-out" in md
    assert (run / "prune" / "dog.keyword.masks.json").is_file()


def test_refused_without_held_out_clips(tmp_path, capsys):
    for kind in (None, False):  # no heldout.jsonl; an empty one
        run = make_run(tmp_path / str(kind), heldout=kind)
        with pytest.raises(NoHeldOutClips, match="heldout.jsonl") as exc:
            prune_table(run, ["dog"], ["keyword"], **toy())
        assert str(run) in str(exc.value)
        with pytest.raises(NoHeldOutClips, match="no held-out clips"):
            prune_run(run, "dog", "keyword", target="kind=dog", **toy())
    # asked for by name, the dissected clips are used and labelled as such
    out = prune_table(run, [ConceptSpec("dog", target="kind=dog")], ["keyword"],
                      eval_on="dissected", holdout=1.0, seeds=(0,), points=1, bootstrap=50,
                      write=False, **toy())
    assert out["evaluation"]["source"] == "dissected" and not out["evaluation"]["heldout"]
    assert "DISSECTED" in out["markdown"]

    from dissect.cli import main

    assert main(["prune", f"run_dir={run}", "concept=[dog=x,train=y]"]) == 2
    err = capsys.readouterr().err
    assert "no held-out clips" in err and str(run) in err

    argv = sys.argv
    sys.argv = [str(SCRIPT), str(run), "--concept", "dog=dog"]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = argv
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "and_table4: error" in err and "heldout.jsonl" in err


def test_a_concept_without_targets_in_a_half_is_refused_before_any_pass(tmp_path):
    run = make_run(tmp_path, n=24)
    with pytest.raises(ValueError, match="'nothing'.*0 target"):
        prune_table(run, [ConceptSpec("nothing", target="kind=cat")], ["keyword"], **toy())


def test_cli_concept_specs():
    from omegaconf import OmegaConf

    from dissect.cli import command_config, prune_specs
    from dissect.config import PruneConfig

    c = command_config(PruneConfig, ["run_dir=r", "concept=[hi-hat=Hi-hat,cymbal=Cymbal]"])
    assert [(s.name, s.classes) for s in prune_specs(c)] == [("hi-hat", ["Hi-hat"]),
                                                            ("cymbal", ["Cymbal"])]
    c = command_config(PruneConfig, ["run_dir=r", "concept=brass", "target=family=Brass"])
    (spec,) = prune_specs(c)
    assert spec.name == "brass" and spec.target == "family=Brass"
    c = command_config(PruneConfig, ["run_dir=r", "concept=[a,b]", "target=x=1"])
    with pytest.raises(ValueError, match="single concept"):
        prune_specs(c)
    assert OmegaConf.to_container(command_config(PruneConfig, ["run_dir=r", "concept=x"]))[
        "max_rest_acc_drop"] == 0.02
