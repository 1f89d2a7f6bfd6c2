"""GURA ensembles built from cached member embeddings equal what the ensemble modules embed."""

import numpy as np
import pytest

from dissect.hear.combine import combine_embedded
from dissect.hear.embed import embed_task, load_module
from dissect.hear.tasks import TaskItem, write_task

SR = 16000


def _tasks(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(int(0.3 * SR)) / SR
    scene, event = [], []
    for i in range(3):
        x = (0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t)
             + 0.01 * rng.normal(size=t.size)).astype(np.float32)
        split = f"fold{i % 3:02d}"
        scene.append(TaskItem(f"s{i}.wav", split, ["lo" if i < 2 else "hi"], waveform=x,
                              source_rate=SR))
        event.append(TaskItem(f"e{i}.wav", split, [{"label": "tone", "start": 50.0,
                                                    "end": 200.0}], waveform=x,
                              source_rate=SR))
    base = {"version": "v1", "split_mode": "new_split_kfold", "sample_duration": 0.3}
    s = write_task(tmp_path / "s-v1-full", {**base, "task_name": "s", "embedding_type": "scene",
                                            "prediction_type": "multiclass",
                                            "evaluation": ["top1_acc"]}, scene)
    e = write_task(tmp_path / "e-v1-full", {**base, "task_name": "e", "embedding_type": "event",
                                            "prediction_type": "multilabel",
                                            "evaluation": ["event_onset_200ms_fms"]}, event)
    return s, e


def test_combined_members_equal_the_ensemble_modules(tmp_path):
    members = "logmel,crepe_tiny"
    loaded = {m: load_module(f"dissect.hear.modules.{m}", device="cpu")
              for m in members.split(",")}
    ensembles = {op: load_module(f"dissect.hear.modules.{module}", device="cpu",
                                 model_options={"members": members})
                 for op, module in (("cat", "gura_cat"), ("avg", "gura_avg"))}
    for task in _tasks(tmp_path):
        parts = [embed_task(lm, task, tmp_path / m / task.name, log=lambda _: None)
                 for m, lm in loaded.items()]
        for op, lm in ensembles.items():
            got = combine_embedded(parts, op, tmp_path / f"c-{op}" / task.name, name=op)
            want = embed_task(lm, task, tmp_path / f"m-{op}" / task.name, log=lambda _: None)
            for split in task.splits:
                g, w = got.split(split), want.split(split)
                assert g.embeddings.shape == w.embeddings.shape
                np.testing.assert_allclose(g.embeddings, w.embeddings, rtol=1e-4, atol=1e-5)
                assert g.labels == w.labels
                assert g.filename_timestamps == w.filename_timestamps


def test_members_of_different_tasks_are_refused(tmp_path):
    s, e = _tasks(tmp_path)
    a = embed_task("dissect.hear.modules.logmel", s, tmp_path / "a", device="cpu",
                   log=lambda _: None)
    b = embed_task("dissect.hear.modules.logmel", e, tmp_path / "b", device="cpu",
                   log=lambda _: None)
    with pytest.raises(ValueError, match="different tasks"):
        combine_embedded([a, b], "cat", tmp_path / "x", name="x")
    with pytest.raises(ValueError, match="op must be"):
        combine_embedded([a], "fusion", tmp_path / "x", name="x")
