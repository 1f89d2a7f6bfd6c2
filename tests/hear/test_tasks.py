"""HEAR task directories (write + read round trips) and the embedding memmap cache."""

import json
import pickle
import random
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from dissect.config import SynthConfig
from dissect.datasets.hear_task import load_hear_task
from dissect.hear import embed as E
from dissect.hear.evaluate import evaluate_embeddings
from dissect.hear.tasks import (
    TaskItem,
    read_task,
    stratified_folds,
    write_esc50_task,
    write_spoken_digit_tasks,
    write_synth_tasks,
    write_task,
)


@pytest.fixture(scope="module")
def synth_pitch(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(n_clips=40, min_seconds=0.25, max_seconds=0.25, speech=False)
    tasks = write_synth_tasks(root / "tasks", cfg, tasks=("pitch",), cache_dir=root / "cache")
    return root, cfg, tasks["synth_pitch"]


def test_synth_pitch_task_round_trip(synth_pitch):
    from dissect.datasets.synth import load_synth

    root, cfg, task = synth_pitch
    back = read_task(task.root)
    assert back.name == "synth_pitch-v1-full"
    meta = back.metadata
    assert meta["embedding_type"] == "scene" and meta["prediction_type"] == "multiclass"
    assert meta["split_mode"] == "new_split_kfold" and meta["nfolds"] == 5
    assert meta["splits"] == [f"fold{i:02d}" for i in range(5)]
    assert meta["evaluation"] == ["pitch_acc", "chroma_acc"]
    vocab = [int(v) for v in back.vocabulary]
    assert vocab == list(range(vocab[0], vocab[-1] + 1))  # contiguous MIDI range
    clips = {c.id: c for c in load_synth(cfg, cache_dir=root / "cache", progress=False)}
    pitched = {k for k, c in clips.items() if c.concepts["midi_note"] is not None}
    seen = {}
    for split in back.splits:
        for name, labels in back.labels(split).items():
            stem = name[: -len(".wav")]
            assert labels == [str(clips[stem].concepts["midi_note"])]
            x, sr = sf.read(back.audio_dir(split, 16000) / name, dtype="float32")
            ref, _ = sf.read(clips[stem].path, dtype="float32")
            assert sr == 16000 and len(x) == 4000
            np.testing.assert_array_equal(x, ref[:4000])
            seen[stem] = split
    assert set(seen) == pitched
    sizes = [len(back.labels(s)) for s in back.splits]
    assert max(sizes) - min(sizes) <= 1
    # the dataset-layer reader sees the same clips and labels
    ps = load_hear_task(back.root, sample_rate=16000)
    assert {c.id.split("/")[1]: c.labels["labels"] for c in ps} == {
        k: [str(clips[k].concepts["midi_note"])] for k in pitched}  # fmt: skip


def test_synth_tasks_are_deterministic(synth_pitch, tmp_path):
    root, cfg, task = synth_pitch
    again = write_synth_tasks(tmp_path, cfg, tasks=("pitch",), cache_dir=root / "cache")
    again = again["synth_pitch"]
    for split in task.splits:
        assert again.split_hash(split, 16000) == task.split_hash(split, 16000)
        assert (again.root / f"{split}.json").read_bytes() == (task.root / f"{split}.json") \
            .read_bytes()


def test_stratified_folds_balance_every_label():
    keys = [f"k{i}" for i in range(23)]
    labels = ["a"] * 11 + ["b"] * 7 + ["c"] * 5
    folds = stratified_folds(keys, labels, 5, seed=3)
    assert folds == stratified_folds(list(reversed(keys)), list(reversed(labels)), 5, seed=3)
    for lab in "abc":
        counts = [sum(1 for k, la in zip(keys, labels, strict=True)
                      if la == lab and folds[k] == f"fold{i:02d}") for i in range(5)]  # fmt: skip
        assert max(counts) - min(counts) <= 1
    sizes = [list(folds.values()).count(f"fold{i:02d}") for i in range(5)]
    assert max(sizes) - min(sizes) <= 1


def _write_wav(path, seconds, sr, freq):
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, subtype="PCM_16")


def test_spoken_digit_tasks_from_a_tiny_tree(tmp_path):
    src = tmp_path / "recordings"
    for d in range(3):
        for spk in ("alice", "bob"):
            for i in range(5):
                _write_wav(src / f"{d}_{spk}_{i}.wav", 0.4 + 0.3 * i, 8000, 200 + 100 * d)
    tasks = write_spoken_digit_tasks(src, tmp_path / "tasks", nfolds=5)
    digit, speaker = tasks["spoken_digit"], tasks["spoken_digit_speaker"]
    assert digit.vocabulary == ["0", "1", "2"] and speaker.vocabulary == ["alice", "bob"]
    for task, pos in ((digit, 0), (speaker, 1)):
        back = read_task(task.root)
        assert back.splits == [f"fold{i:02d}" for i in range(5)]
        assert back.sample_rates() == [16000]
        for split in back.splits:
            table = back.labels(split)
            assert len(table) == 6
            for name, labels in table.items():
                d, spk, idx = name[:-4].split("_")
                assert split == f"fold{int(idx) % 5:02d}"
                assert labels == [(d, spk)[pos]]
                x, sr = sf.read(back.audio_dir(split, 16000) / name, dtype="float32")
                assert sr == 16000 and len(x) == 16000  # padded/trimmed to 1.0 s
                if int(idx) < 2:  # shorter than 1 s: zero padded at the end
                    assert np.all(x[int((0.4 + 0.3 * int(idx)) * 16000) + 64:] == 0)


def test_esc50_task_uses_its_folds(tmp_path):
    src = tmp_path / "ESC-50-master"
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for k, cat in enumerate(("dog", "rain")):
            name = f"{fold}-{100 + k}-A-{k}.wav"
            _write_wav(src / "audio" / name, 5.0, 44100, 300 * (k + 1))
            rows.append(f"{name},{fold},{k},{cat},False,{100 + k},A")
    (src / "meta").mkdir(parents=True)
    (src / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    task = write_esc50_task(tmp_path, tmp_path / "tasks")
    assert task.name == "esc50-v2.0.0-full"
    assert task.metadata["split_mode"] == "presplit_kfold"
    assert task.evaluation == ["top1_acc", "mAP", "d_prime", "aucroc"]
    assert task.labels("fold02") == {"3-100-A-0.wav": ["dog"], "3-101-A-1.wav": ["rain"]}
    info = sf.info(task.audio_dir("fold02", 16000) / "3-100-A-0.wav")
    assert (info.samplerate, info.frames) == (16000, 80000)


def test_write_task_rejects_bad_input(tmp_path):
    meta = {"task_name": "t", "embedding_type": "scene", "prediction_type": "multiclass",
            "split_mode": "new_split_kfold", "sample_duration": 0.1, "evaluation": ["top1_acc"]}
    x = np.zeros(1600, np.float32)
    with pytest.raises(ValueError, match="duplicate"):
        write_task(tmp_path / "t", meta, [TaskItem("a.wav", "fold00", ["x"], waveform=x,
                                                   source_rate=16000)] * 2)  # fmt: skip
    with pytest.raises(ValueError, match="exactly one label"):
        write_task(tmp_path / "t", meta, [TaskItem("a.wav", "fold00", ["x", "y"], waveform=x,
                                                   source_rate=16000)])  # fmt: skip
    assert not (tmp_path / "t").exists()


# --------------------------------------------------------------------------- embedding cache


def _module(scale=1.0, name="fake_hear"):
    mod = types.ModuleType(name)
    calls = {"n": 0}

    class Model(torch.nn.Module):
        sample_rate = 16000
        scene_embedding_size = 8
        timestamp_embedding_size = 8

    def ts_emb(audio, model):
        calls["n"] += len(audio)
        frames = audio.unfold(1, 400, 400)  # 25 ms frames
        feats = torch.stack([frames.pow(2).mean(-1) * (k + 1) * scale for k in range(8)], -1)
        ts = (200 + 400 * torch.arange(frames.shape[1])) / 16.0
        return feats.float(), ts.float().expand(audio.shape[0], -1)

    mod.load_model = lambda model_file_path="": Model()
    mod.get_timestamp_embeddings = ts_emb
    mod.get_scene_embeddings = lambda audio, model: ts_emb(audio, model)[0].mean(1)
    mod.calls = calls
    return mod


def _scene_task(root, n=12):
    rng = np.random.default_rng(0)
    items = [TaskItem(f"c{i:02d}.wav", f"fold{i % 3:02d}", [str(i % 2)],
                      waveform=rng.normal(0, 0.1, 1600).astype(np.float32), source_rate=16000)
             for i in range(n)]  # fmt: skip
    meta = {"task_name": "toy", "embedding_type": "scene", "prediction_type": "multiclass",
            "split_mode": "new_split_kfold", "sample_duration": 0.1, "evaluation": ["top1_acc"]}
    return write_task(root, meta, items)


def test_embedding_cache_reused_only_when_hashes_match(tmp_path):
    task = _scene_task(tmp_path / "toy-v1-full")
    out = tmp_path / "emb"
    mod = _module()
    lm = E.load_module(mod, device="cpu")
    logs = []
    emb = E.embed_task(lm, task, out, log=logs.append)
    first = mod.calls["n"]
    assert first == 12 + 1  # 12 clips (each once) + the fingerprint signal
    x0 = np.array(emb.split("fold00").embeddings)
    assert x0.shape == (4, 8) and x0.dtype == np.float32
    # heareval-compatible files: raw memmap + dims + pickled labels in heareval's row order
    order = E.heareval_file_order(task)
    prng = random.Random(0)
    for split in task.splits:
        files = list(task.labels(split))
        prng.shuffle(files)
        assert order[split] == files
        dims = json.loads((out / f"{split}.embedding-dimensions.json").read_text())
        raw = np.memmap(out / f"{split}.embeddings.npy", dtype=np.float32, mode="r",
                        shape=tuple(dims))  # fmt: skip
        labels = pickle.loads((out / f"{split}.target-labels.pkl").read_bytes())
        assert labels == [task.labels(split)[f] for f in files]
        assert np.array_equal(raw, emb.split(split).embeddings)

    # same module, same task: every split skipped (a fresh load: no in-memory reuse)
    mod2 = _module()
    logs.clear()
    E.embed_task(E.load_module(mod2), task, out, log=logs.append)
    assert mod2.calls["n"] == 1 and all("up to date" in s for s in logs)

    # a module that behaves differently (same name, other outputs): everything re-embedded
    mod3 = _module(scale=2.0)
    emb3 = E.embed_task(E.load_module(mod3), task, out, log=lambda s: None)
    assert mod3.calls["n"] == 1 + 12
    assert np.allclose(np.array(emb3.split("fold00").embeddings), 2 * x0)

    # one audio file changed: only its split is re-embedded
    mod4 = _module(scale=2.0)
    name = next(iter(task.labels("fold01")))
    wav = task.audio_dir("fold01", 16000) / name
    x, sr = sf.read(wav, dtype="float32")
    sf.write(wav, x * 0.5, sr, subtype="FLOAT")
    E.embed_task(E.load_module(mod4), task, out, log=lambda s: None)
    assert mod4.calls["n"] == 1 + 4

    # files present but the memmap bytes corrupted (same size): not trusted, re-embedded
    path = out / "fold02.embeddings.npy"
    path.write_bytes(bytes(path.stat().st_size))
    mod5 = _module(scale=2.0)
    E.embed_task(E.load_module(mod5), task, out, log=lambda s: None)
    assert mod5.calls["n"] == 1 + 4
    # no cache record at all (files alone): re-embedded
    (out / "fold00.embedding-meta.json").unlink()
    mod6 = _module(scale=2.0)
    E.embed_task(E.load_module(mod6), task, out, log=lambda s: None)
    assert mod6.calls["n"] == 1 + 4


def test_column_views_read_a_unit_subset_without_re_embedding(tmp_path):
    task = _scene_task(tmp_path / "toy-v1-full")
    emb = E.embed_task(E.load_module(_module(), device="cpu"), task, tmp_path / "emb",
                       log=lambda s: None)
    full = np.array(emb.split("fold01").embeddings)
    view = emb.select([5, 1, 6])
    sub = view.split("fold01")
    assert np.array_equal(sub.embeddings, full[:, [5, 1, 6]]) and view.module == "fake_hear[3]"
    assert sub.labels == emb.split("fold01").labels and sub.files == emb.split("fold01").files
    nested = view.select([2, 0], label="pair")  # indices into the view: columns 6, 5
    assert np.array_equal(nested.split("fold02").embeddings,
                          np.array(emb.split("fold02").embeddings)[:, [6, 5]])
    with pytest.raises(ValueError, match="empty"):
        emb.select([])
    with pytest.raises(ValueError, match="columns outside"):
        view.select([3])
    with pytest.raises(ValueError, match="columns outside"):
        emb.select([8]).split("fold00")
    # the probe runs on a view like on any embedded task
    res = evaluate_embeddings(view, grid="faster", grid_points=1, log=lambda s: None)
    assert set(res["folds"]) == {"fold00", "fold01", "fold02"}


def test_event_task_frame_labels_and_timestamps(tmp_path):
    items = [TaskItem(f"e{i}.wav", f"fold{i:02d}",
                      [{"label": "beep", "start": 100.0, "end": 200.0}],
                      waveform=np.zeros(8000, np.float32), source_rate=16000)
             for i in range(3)]  # fmt: skip
    meta = {"task_name": "ev", "embedding_type": "event", "prediction_type": "multilabel",
            "split_mode": "new_split_kfold", "sample_duration": 0.5,
            "evaluation": ["event_onset_200ms_fms"]}  # fmt: skip
    task = write_task(tmp_path / "ev-v1-full", meta, items)
    emb = E.embed_task(E.load_module(_module()), task, tmp_path / "emb", log=lambda s: None)
    sp = emb.split("fold01")
    assert sp.embeddings.shape == (20, 8)  # 20 frames of 25 ms
    ts = [t for _, t in sp.filename_timestamps]
    assert ts == [12.5 + 25 * k for k in range(20)]
    active = [t for t, lab in zip(ts, sp.labels, strict=True) if lab == ["beep"]]
    assert active == [112.5, 137.5, 162.5, 187.5]  # start <= t < end + 0.0001
    assert E.frame_labels([{"label": "x", "start": 0.0, "end": 50.0}], [0.0, 50.0, 50.001]) == [
        ["x"], ["x"], []]  # fmt: skip
