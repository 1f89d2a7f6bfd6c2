"""HEAR API on our adapters: shapes, dtypes and timestamp spacing on odd clip lengths, layer
choices, and memory-bounded chunking of long audio (offline, tiny or packaged models)."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from dissect.hear import api
from dissect.hear.api import EmbeddingModel, check_outputs, plan_windows
from dissect.hear.modules import (
    MODULES,
    OFFLINE,
    SINGLE,
    crepe_tiny,
    hubert_base,
    logmel,
    whisper_tiny,
)
from dissect.models.tiny import save_tiny

SR = 16000
LENGTHS = (0.1, 1.07, 1.98, 4.0)


def _audio(seconds: float, n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, int(round(seconds * SR)), generator=g) * 2 - 1  # hearvalidator's noise


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    return save_tiny("hubert", tmp_path_factory.mktemp("hubert") / "tiny")


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return save_tiny("whisper", tmp_path_factory.mktemp("whisper") / "tiny")


@pytest.fixture(scope="module")
def models(hubert_dir, whisper_dir):
    return {
        "crepe_tiny": crepe_tiny.load_model(),
        "logmel": logmel.load_model(),
        "hubert": hubert_base.load_model(hubert_dir),
        "whisper": whisper_tiny.load_model(whisper_dir),
    }


def _expected(name: str, n: int) -> tuple[int, float, float]:
    """(frames, first timestamp ms, hop ms) computed by hand from each model's framing."""
    if name == "crepe_tiny":
        return 1 + n // 800, 0.0, 50.0
    if name == "logmel":
        return 1 + n // 320, 0.0, 20.0
    if name == "whisper":
        return math.ceil(n / 320), 0.0, 20.0
    return (n - 400) // 320 + 1, 399 / 2 / 16, 20.0  # conv stack; centre of the 400-sample RF


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.parametrize("name", ["crepe_tiny", "logmel", "hubert", "whisper"])
def test_shapes_dtypes_and_spacing(models, name, seconds):
    model = models[name]
    audio = _audio(seconds)
    n = audio.shape[1]
    emb, ts = api.get_timestamp_embeddings(audio, model)
    assert check_outputs(emb, ts, 2, n, SR, model.timestamp_embedding_size) == []
    frames, first, hop = _expected(name, n)
    assert emb.shape == (2, frames, model.timestamp_embedding_size)
    want = torch.tensor(first + hop * np.arange(frames), dtype=torch.float32).expand(2, -1)
    assert torch.equal(ts, want)
    assert not emb.requires_grad and emb.device == audio.device
    scene = api.get_scene_embeddings(audio, model)
    assert scene.dtype == torch.float32 and scene.shape == (2, model.scene_embedding_size)
    assert torch.allclose(scene, emb.mean(1), atol=1e-5)
    assert isinstance(model.scene_embedding_size, int) and model.sample_rate == SR


def test_hf_layer_choices_match_hidden_states(hubert_dir):
    audio = _audio(1.07, seed=3)
    last = hubert_base.load_model(hubert_dir)
    fused = hubert_base.load_model(hubert_dir, layer="fusion")
    block0 = hubert_base.load_model(hubert_dir, layer="encoder.layers.0")
    hs1 = hubert_base.load_model(hubert_dir, layer="hidden_states.1")
    net = last.model
    prep = last.adapter.prepare(list(audio.numpy()))
    with torch.no_grad():
        ref = net(**prep.inputs, output_hidden_states=True).hidden_states
    assert len(ref) == 3
    mean = torch.stack(ref).mean(0)
    assert torch.allclose(api.get_timestamp_embeddings(audio, last)[0], ref[-1], atol=1e-5)
    assert torch.allclose(api.get_timestamp_embeddings(audio, fused)[0], mean, atol=1e-5)
    assert torch.allclose(api.get_timestamp_embeddings(audio, block0)[0], ref[1], atol=1e-5)
    assert torch.allclose(api.get_timestamp_embeddings(audio, hs1)[0], ref[1], atol=1e-5)


def test_whisper_fusion_is_the_mean_of_all_hidden_states(whisper_dir):
    audio = _audio(0.5, n=1, seed=4)
    fused = whisper_tiny.load_model(whisper_dir, layer="fusion")
    batch = fused.adapter.prepare(list(audio.numpy()))
    with torch.no_grad():
        hs = fused.model.encoder(input_features=batch.inputs["input_features"],
                                 output_hidden_states=True).hidden_states
    emb, _ = api.get_timestamp_embeddings(audio, fused)
    assert len(hs) == 3 and emb.shape == (1, 25, 32)  # ceil(8000 / 320) valid frames
    assert torch.allclose(emb, torch.stack(hs).mean(0)[:, :25], atol=1e-5)


def test_site_fusion_named_sites_and_errors():
    fused = crepe_tiny.load_model(layer="fusion")
    assert fused.timestamp_embedding_size == 64  # conv1..conv6 mapped to conv6's width
    emb, _ = api.get_timestamp_embeddings(_audio(0.3), fused)
    assert emb.shape[-1] == 64 and torch.isfinite(emb).all()
    head = crepe_tiny.load_model(layer="classifier", hop_ms=10.0)
    emb, ts = api.get_timestamp_embeddings(_audio(0.3), head)
    assert emb.shape == (2, 1 + 4800 // 160, 360) and float(ts[0, 1]) == 10.0
    with pytest.raises(ValueError, match="unknown layer"):
        crepe_tiny.load_model(layer="conv9")
    with pytest.raises(ValueError, match="Hugging Face encoder"):
        crepe_tiny.load_model(layer="hidden_states.2")
    with pytest.raises(ValueError, match="units"):
        EmbeddingModel(head.adapter, head.model, {"conv5": [0, 999]})


def test_units_selection_keeps_those_channels():
    full = crepe_tiny.load_model(layer="conv5")
    picked = EmbeddingModel(full.adapter, full.model, {"conv5": [3, 0, 7], "conv6": None})
    assert picked.timestamp_embedding_size == 3 + 64
    audio = _audio(0.5, seed=5)
    a, _ = api.get_timestamp_embeddings(audio, full)
    b, _ = api.get_timestamp_embeddings(audio, picked)
    assert torch.allclose(b[..., :3], a[..., [3, 0, 7]], atol=1e-6)


# ------------------------------------------------------------------------------- chunking
def test_plan_windows_cover_every_frame_once():
    n = 20 * 60 * SR + 123  # 20 minutes and a bit
    plan = plan_windows(n, 20.0, SR, 10.0, 1.0)
    assert len(plan) == 121
    assert max(w.length for w in plan) == 12 * SR  # bounded, independent of n
    assert plan[0].start == 0 and plan[-1].stop == n and plan[-1].keep_to is None
    for a, b in zip(plan, plan[1:], strict=False):
        assert a.keep_to == b.keep_from  # consecutive cores, no gap, no overlap
        assert b.start % 320 == 0 and b.first == b.start // 320
    assert plan_windows(5 * SR, 20.0, SR, 10.0, 1.0) == [api.Window(0, 0, 5 * SR, 0, 0, None)]
    assert api.frame_step(25.0, 44100) == (2, 2205)  # 25 ms = 1102.5 samples: step 2 frames


@pytest.mark.parametrize("module", [logmel, crepe_tiny])
def test_chunked_equals_unchunked_for_local_models(module):
    whole = module.load_model(chunk_seconds=None)
    chunked = module.load_model(chunk_seconds=1.0, context_seconds=0.1, batch_chunks=2)
    audio = _audio(3.33, seed=7)
    e1, t1 = api.get_timestamp_embeddings(audio, whole)
    e2, t2 = api.get_timestamp_embeddings(audio, chunked)
    assert chunked.last_stats["n_windows"] == 2 * 4 and whole.last_stats["n_windows"] == 2
    assert chunked.last_stats["max_batch_windows"] <= 2
    assert torch.equal(t1, t2)
    assert torch.allclose(e1, e2, atol=1e-4, rtol=1e-4)


def test_chunked_transformer_keeps_the_frame_grid(hubert_dir, whisper_dir):
    audio = _audio(3.33, n=1, seed=8)
    for module, path in ((hubert_base, hubert_dir), (whisper_tiny, whisper_dir)):
        whole = module.load_model(path, chunk_seconds=None)
        chunked = module.load_model(path, chunk_seconds=1.0, context_seconds=0.5)
        e1, t1 = api.get_timestamp_embeddings(audio, whole)
        e2, t2 = api.get_timestamp_embeddings(audio, chunked)
        assert torch.equal(t1, t2) and e1.shape == e2.shape
        assert chunked.last_stats["max_window_samples"] <= 2 * SR  # 1 s core + 2 x 0.5 s
        assert chunked.last_stats["n_windows"] == 4 and torch.isfinite(e2).all()


def test_twenty_minutes_runs_in_bounded_windows():
    model = logmel.load_model()  # default chunking: 10 s cores, 0.1 s context
    n = 20 * 60 * SR
    audio = torch.zeros(1, n)
    audio[0, ::997] = 0.5  # sparse clicks: cheap to make, not silent
    emb, ts = api.get_timestamp_embeddings(audio, model)
    stats = model.last_stats
    assert stats["n_windows"] == 120
    assert stats["max_window_samples"] <= int(10.2 * SR)
    assert stats["max_batch_samples"] <= model.batch_seconds * SR
    assert emb.shape == (1, 1 + n // 320, 128)
    assert check_outputs(emb, ts, 1, n, SR, 128) == []
    assert float(ts[0, -1]) == 20 * 60 * 1000.0


def test_whisper_windows_fit_its_30_s_input_for_20_minutes(whisper_dir):
    model = whisper_tiny.load_model(whisper_dir)
    plan = plan_windows(20 * 60 * SR, model.hop_ms, SR, model.chunk_seconds,
                        model.context_seconds)
    assert len(plan) == 120 and max(w.length for w in plan) <= 30 * SR
    assert model.batch_chunks <= 4


# ------------------------------------------------------------------------------- modules
@pytest.mark.parametrize("name", MODULES)
def test_modules_expose_the_hear_functions(name):
    mod = importlib.import_module(f"dissect.hear.modules.{name}")
    for fn in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        assert callable(getattr(mod, fn)), f"{name}.{fn}"
    assert mod.__doc__ and "model_file_path" in mod.__doc__
    assert set(OFFLINE) <= set(MODULES) and set(SINGLE) <= set(MODULES)


def test_numpy_input_and_bad_shapes():
    model = logmel.load_model()
    emb, ts = api.get_timestamp_embeddings(_audio(0.2).numpy(), model)
    assert emb.dtype == torch.float32 and ts.shape == emb.shape[:2]
    with pytest.raises(ValueError, match="n_sounds, n_samples"):
        api.get_timestamp_embeddings(torch.zeros(3200), model)


@pytest.mark.parametrize("family, module", [("wav2vec2", "wav2vec2_base"),
                                            ("wavlm", "wavlm_base"),
                                            ("data2vec_audio", "data2vec_audio_base")])
def test_every_ssl_family_module_on_a_tiny_checkpoint(tmp_path, family, module):
    path = save_tiny(family, tmp_path / family)
    mod = importlib.import_module(f"dissect.hear.modules.{module}")
    model = mod.load_model(path)
    audio = _audio(1.07, n=2)
    emb, ts = api.get_timestamp_embeddings(audio, model)
    frames, first, hop = _expected("hubert", audio.shape[1])  # the same conv stack
    assert emb.shape == (2, frames, 32) and ts.shape == (2, frames)
    assert float(ts[0, 0]) == pytest.approx(first) and float(ts[0, 1] - ts[0, 0]) == hop
    assert check_outputs(emb, ts, 2, audio.shape[1], SR, 32) == []
    from dissect.hear.modules import _build

    assert _build.speech_module(path) == module  # config.json model_type -> this module
