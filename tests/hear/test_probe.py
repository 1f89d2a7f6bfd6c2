"""The HEAR probe: hear-eval-kit's model, grid, early stopping and k-fold bookkeeping."""

import math
import random
import types

import numpy as np
import pytest
import torch

from dissect.hear import probe as P
from dissect.hear.evaluate import evaluate_embeddings, run_hear
from dissect.hear.tasks import TaskItem, data_splits, write_task

# The protocol's own points use 1024 hidden units; the tests train narrower probes to stay fast.
FAST_CONF = {**P.parameter_grid(P.PARAM_GRID)[0], "hidden_layers": 1, "hidden_dim": 64,
             "lr": 3.2e-3, "max_epochs": 30, "check_val_every_n_epoch": 3}  # fmt: skip
SMALL_GRID = {**P.PARAM_GRID, "hidden_dim": [64], "max_epochs": [15], "lr": [3.2e-3, 1e-3]}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_kfold_bookkeeping_matches_hand_made_split():
    got = P.data_splits_from_folds(["fold02", "fold00", "fold04", "fold01", "fold03"])
    hand = [
        {"train": ["fold02", "fold03", "fold04"], "valid": ["fold01"], "test": ["fold00"]},
        {"train": ["fold00", "fold03", "fold04"], "valid": ["fold02"], "test": ["fold01"]},
        {"train": ["fold00", "fold01", "fold04"], "valid": ["fold03"], "test": ["fold02"]},
        {"train": ["fold00", "fold01", "fold02"], "valid": ["fold04"], "test": ["fold03"]},
        {"train": ["fold01", "fold02", "fold03"], "valid": ["fold00"], "test": ["fold04"]},
    ]
    assert got == hand
    assert data_splits({"split_mode": "trainvaltest"}) == [
        {"train": ["train"], "valid": ["valid"], "test": ["test"]}]  # fmt: skip
    assert data_splits({"split_mode": "presplit_kfold", "splits": ["b", "a", "c"]})[2] == {
        "train": ["b"], "valid": ["a"], "test": ["c"]}  # fmt: skip
    with pytest.raises(ValueError):
        P.data_splits_from_folds(["fold00", "fold00", "fold01"])
    with pytest.raises(ValueError):
        data_splits({"split_mode": "random"})


def test_grid_points_are_heareval_sklearn_order_shuffled_with_seed_42():
    ParameterGrid = pytest.importorskip("sklearn.model_selection").ParameterGrid
    for name, grid in P.GRIDS.items():
        expected = list(ParameterGrid(grid))
        assert P.parameter_grid(grid) == expected, name
        random.seed(42)  # heareval: seed_everything(42), then random.shuffle(confs)
        random.shuffle(expected)
        assert P.grid_confs(name, {}, 8) == expected[:8], name
    assert len(P.parameter_grid(P.PARAM_GRID)) == 16
    assert len(P.parameter_grid(P.FAST_PARAM_GRID)) == 64
    dcase = P.grid_confs("default", {"task_name": "dcase2016_task2"})
    assert {c["check_val_every_n_epoch"] for c in dcase} == {10}


def test_model_is_heareval_mlp():
    conf = {**P.parameter_grid(P.PARAM_GRID)[0], "hidden_layers": 2}
    m = P.ProbeMLP(16, 5, "multiclass", conf)
    kinds = [type(x).__name__ for x in m.hidden]
    assert kinds == ["Linear", "BatchNorm1d", "Dropout", "ReLU"] * 2
    assert m.hidden[2].p == 0.1 and m.hidden[0].out_features == 1024
    assert m.projection.in_features == 1024 and m.projection.out_features == 5
    x = torch.randn(8, 16)
    m.eval()
    assert torch.allclose(m(x).sum(1), torch.ones(8), atol=1e-5)
    ml = P.ProbeMLP(16, 5, "multilabel", {**conf, "hidden_layers": 0})
    assert isinstance(ml.hidden, torch.nn.Identity)
    assert ((ml(x) > 0) & (ml(x) < 1)).all()


def _blobs(n, d=20, k=4, seed=0):
    """Linearly separable classes: class c has feature c shifted by +6 (unit noise)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[np.arange(n), y] += 6.0
    return x, np.eye(k, dtype=np.float32)[y]


def test_probe_learns_linearly_separable_toy_task():
    xt, yt = _blobs(400, seed=0)
    xv, yv = _blobs(100, seed=1)
    xs, ys = _blobs(200, seed=2)

    def acc(p, y=yv):
        return float(np.mean(p.argmax(1) == y.argmax(1))), None

    res = P.train_probe(xt, yt, xv, yv, FAST_CONF, "multiclass", acc, seed=0)
    assert acc(P.predict(res.model, xs), ys)[0] >= 0.97
    assert res.validation_score >= 0.97
    # same seed, same model; the global RNG is left untouched
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    res2 = P.train_probe(xt, yt, xv, yv, FAST_CONF, "multiclass", acc, seed=0)
    assert torch.rand(1) == before
    assert np.array_equal(P.predict(res.model, xs), P.predict(res2.model, xs))
    shuffled = P.train_probe(xt, yt, xv, yv, FAST_CONF, "multiclass", acc, seed=0, shuffle=True)
    assert not np.array_equal(P.predict(shuffled.model, xs), P.predict(res.model, xs))


def test_early_stopping_patience_and_best_checkpoint():
    xt, yt = _blobs(64)
    scripted = iter([0.1, 0.5, 0.5, 0.4, 0.9, 0.9])
    conf = {**FAST_CONF, "patience": 2, "max_epochs": 100}
    res = P.train_probe(xt, yt, xt, yt, conf, "multiclass", lambda p: (next(scripted), "pp"))
    # checks after epochs 2, 5, 8, 11: 0.5 at epoch 5 is the best (ties do not improve);
    # 0.5 and 0.4 are 2 checks without improvement -> stop after epoch 11
    assert res.history == [(2, 0.1), (5, 0.5), (8, 0.5), (11, 0.4)]
    assert (res.best_epoch, res.validation_score, res.epochs) == (5, 0.5, 12)
    assert res.postprocessing == "pp"
    nan_first = iter([math.nan, 0.9])
    res = P.train_probe(xt, yt, xt, yt, conf, "multiclass", lambda p: (next(nan_first), None))
    assert res.epochs == 3 and math.isnan(res.validation_score)  # check_finite stops at once
    loss = P.train_probe(xt, yt, xt, yt, {**conf, "max_epochs": 9}, "multiclass", None)
    assert len(loss.history) == 3 and loss.history[0][1] > loss.history[-1][1]  # val loss
    with pytest.raises(RuntimeError):
        P.train_probe(xt, yt, xt, yt, {**conf, "max_epochs": 2}, "multiclass", None)


def _tone_module():
    """A HEAR module whose embedding is the log energy in 32 FFT bands."""
    mod = types.ModuleType("tone_hear")

    class Model(torch.nn.Module):
        sample_rate = 16000
        scene_embedding_size = 32
        timestamp_embedding_size = 32

    def ts_emb(audio, model):
        frames = audio.unfold(1, 512, 320)
        spec = torch.fft.rfft(frames * torch.hann_window(512), dim=-1).abs() ** 2
        emb = torch.log(spec[..., :256].reshape(*spec.shape[:2], 32, 8).sum(-1) + 1e-6)
        ts = (256 + 320 * torch.arange(emb.shape[1])) / 16.0
        return emb.float(), ts.float().expand(audio.shape[0], -1)

    mod.load_model = lambda model_file_path="": Model()
    mod.get_timestamp_embeddings = ts_emb
    mod.get_scene_embeddings = lambda audio, model: ts_emb(audio, model)[0].mean(1)
    return mod


def test_protocol_end_to_end_on_tone_task(tmp_path):
    rng = np.random.default_rng(0)
    freqs = {"low": 300.0, "mid": 1200.0, "high": 4000.0}
    items = []
    for i in range(45):
        lab = list(freqs)[i % 3]
        t = np.arange(4000) / 16000
        x = 0.3 * np.sin(2 * np.pi * freqs[lab] * (1 + 0.02 * rng.normal()) * t)
        x = (x + 0.01 * rng.normal(size=t.size)).astype(np.float32)
        items.append(TaskItem(f"c{i:02d}.wav", f"fold{i % 5:02d}", [lab], waveform=x,
                              source_rate=16000))  # fmt: skip
    meta = {"task_name": "tones", "embedding_type": "scene", "prediction_type": "multiclass",
            "split_mode": "new_split_kfold", "sample_duration": 0.25,
            "evaluation": ["top1_acc", "mAP"]}  # fmt: skip
    write_task(tmp_path / "tasks" / "tones-v1-full", meta, items)
    rows = run_hear(_tone_module(), tmp_path / "tasks", tmp_path / "out", grid=SMALL_GRID,
                    grid_points=2, seeds=(0, 1), log=lambda s: None)  # fmt: skip
    top1 = next(r for r in rows if r["score"] == "top1_acc")
    assert top1["primary"] and top1["n"] == 10 and top1["over"] == "folds x seeds"
    assert top1["mean"] >= 0.9
    assert (tmp_path / "out" / "scores.csv").read_text().startswith("module,task,score")
    assert (tmp_path / "out" / "predictions" / "tones-v1-full.json").is_file()
    # per-fold search is an opt-in deviation and still scores every fold
    from dissect.hear.embed import EmbeddedTask
    from dissect.hear.tasks import read_task

    emb = EmbeddedTask(tmp_path / "out" / "embeddings" / "tones-v1-full",
                       read_task(tmp_path / "tasks" / "tones-v1-full"), "tone_hear")
    res = evaluate_embeddings(emb, grid=SMALL_GRID, grid_points=2, per_fold_search=True,
                              log=lambda s: None)
    assert sorted(res["folds"]) == [f"fold{i:02d}" for i in range(5)]
    assert set(res["aggregated_scores"]) == {"top1_acc_mean", "top1_acc_std", "top1_acc_n_nan",
                                             "mAP_mean", "mAP_std", "mAP_n_nan"}  # fmt: skip
    assert res["aggregated_scores"]["mAP_n_nan"] == 0


def test_event_task_saves_its_test_events_and_they_rescore_to_the_reported_score(tmp_path):
    """The predicted events of every test fold are kept in predictions/<task>.json; scored
    again (ours, and heareval's sed_eval code when installed) they give the reported score."""
    import json

    rng = np.random.default_rng(0)
    items = []
    for i in range(15):
        t = np.arange(16000) / 16000
        x = (0.01 * rng.normal(size=t.size)).astype(np.float32)
        start = 0.2 + 0.1 * (i % 4)
        on = (t >= start) & (t < start + 0.4)
        lab = "low" if i % 2 else "high"
        x[on] += 0.3 * np.sin(2 * np.pi * (400.0 if lab == "low" else 3000.0) * t[on])
        items.append(TaskItem(f"e{i:02d}.wav", f"fold{i % 3:02d}",
                              [{"label": lab, "start": 1000 * start,
                                "end": 1000 * (start + 0.4)}], waveform=x, source_rate=16000))
    meta = {"task_name": "blips", "embedding_type": "event", "prediction_type": "multilabel",
            "split_mode": "new_split_kfold", "sample_duration": 1.0,
            "evaluation": ["event_onset_200ms_fms", "segment_1s_er"]}
    write_task(tmp_path / "tasks" / "blips-v1-full", meta, items)
    run_hear(_tone_module(), tmp_path / "tasks", tmp_path / "out", grid=SMALL_GRID,
             grid_points=1, log=lambda s: None)
    pred = json.loads((tmp_path / "out" / "predictions" / "blips-v1-full.json").read_text())
    from dissect.hear import metrics as M
    from dissect.hear.tasks import read_task

    task = read_task(tmp_path / "tasks" / "blips-v1-full")
    folds = pred["seeds"]["0"]["folds"]
    assert sorted(folds) == ["fold00", "fold01", "fold02"]
    heareval_score = pytest.importorskip("heareval.score")
    for fold, f in folds.items():
        events = f["predicted_events"]
        assert set(events) <= set(task.labels(fold)) and sum(map(len, events.values())) >= 3
        for name in meta["evaluation"]:
            ours = M.score_all([name], events, task.labels(fold), task.vocabulary)[name]
            assert ours == pytest.approx(f["scores"][name], abs=1e-6)
            fn = heareval_score.available_scores[name](
                label_to_idx={x: i for i, x in enumerate(task.vocabulary)})
            assert fn(events, task.labels(fold))[0][1] == pytest.approx(ours, abs=1e-12)


def test_fold_aggregation_skips_nan_folds_as_heareval_pandas_does():
    """heareval aggregates folds with pandas, whose mean/std skip NaN: [.5, NaN, .7, .6] is
    0.6 +- 0.1 (sample std), and the row says one fold was NaN."""
    import pandas as pd

    from dissect.hear.evaluate import _mean_std, format_table, scores_csv, summarize

    vals = [0.5, None, 0.7, 0.6]
    col = pd.Series([np.nan if v is None else v for v in vals])
    mean, std = _mean_std(vals)
    assert mean == pytest.approx(col.mean()) == pytest.approx(0.6)
    assert std == pytest.approx(col.std()) == pytest.approx(0.1)
    assert _mean_std([None, float("nan")]) == (None, None)
    assert _mean_std([0.4, None]) == (pytest.approx(0.4), None)  # one finite value: no std
    per_seed = {0: {"folds": {f"fold{i}": {"scores": {"mAP": v, "top1_acc": 0.5}}
                              for i, v in enumerate(vals)}}}  # fmt: skip
    rows = summarize("m", "t", ["mAP", "top1_acc"], per_seed)
    mAP = next(r for r in rows if r["score"] == "mAP")
    assert (mAP["n"], mAP["n_nan"]) == (4, 1)
    assert mAP["mean"] == pytest.approx(0.6) and mAP["std"] == pytest.approx(0.1)
    assert "| 0.600 ± 0.100 | 4 (1 nan) |" in format_table(rows)
    assert "m,t,mAP,True,0.600000,0.100000,4,1,folds,0.500000 nan 0.700000 0.600000" in (
        scores_csv(rows))


def test_defaults_are_heareval_protocol():
    """A plain ``dissect hear`` / ``run_hear`` / ``evaluate_embeddings`` runs heareval's own
    grid (its runner's ``--grid default``); ``fast`` is an explicit choice."""
    import inspect

    from dissect.config import HearConfig
    from dissect.hear.evaluate import evaluate_embeddings as ev

    assert inspect.signature(run_hear).parameters["grid"].default == "default"
    assert inspect.signature(ev).parameters["grid"].default == "default"
    assert HearConfig().grid == "default"
