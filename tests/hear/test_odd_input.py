"""HEAR modules on odd input: an empty batch gives empty tensors of the right shapes, integer or
boolean samples are refused (never cast unscaled), and NaN/Inf audio is an error that names
the sound's batch index, for every module (they all go through dissect.hear.api)."""

from __future__ import annotations

import importlib

import pytest
import torch

from dissect.hear import api
from dissect.hear.modules import (
    MODULES,
    ast_audioset,
    beats_iter3,
    clap_htsat,
    crepe_tiny,
    gura_avg,
    gura_cat,
    gura_fusion,
    hubert_base,
    logmel,
    whisper_tiny,
)
from dissect.models.tiny import save_tiny

NAMES = ["crepe_tiny", "logmel", "hubert", "whisper", "ast", "beats", "clap", "gura_avg",
         "gura_cat", "gura_fusion"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    return {
        "crepe_tiny": crepe_tiny.load_model(),
        "logmel": logmel.load_model(),
        "hubert": hubert_base.load_model(save_tiny("hubert", tmp / "hubert")),
        "whisper": whisper_tiny.load_model(save_tiny("whisper", tmp / "whisper")),
        "ast": ast_audioset.load_model(save_tiny("ast", tmp / "ast")),
        "beats": beats_iter3.load_model(save_tiny("beats", tmp / "beats.pt")),
        "clap": clap_htsat.load_model(save_tiny("clap", tmp / "clap")),
        "gura_avg": gura_avg.load_model(members="crepe_tiny,logmel"),
        "gura_cat": gura_cat.load_model(members="crepe_tiny,logmel"),
        "gura_fusion": gura_fusion.load_model(members="crepe_tiny:fusion,logmel:fusion"),
    }


def _noise(n_sounds: int, seconds: float, sr: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n_sounds, int(seconds * sr), generator=g) * 2 - 1


@pytest.mark.parametrize("name", MODULES)
def test_every_module_uses_the_checked_hear_functions(name):
    mod = importlib.import_module(f"dissect.hear.modules.{name}")
    assert mod.get_scene_embeddings is api.get_scene_embeddings
    assert mod.get_timestamp_embeddings is api.get_timestamp_embeddings


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_gives_empty_tensors_of_the_right_shape(models, name):
    model = models[name]
    sr = model.sample_rate
    n = int(1.07 * sr)
    scene = api.get_scene_embeddings(torch.zeros(0, n), model)
    assert scene.dtype == torch.float32 and scene.shape == (0, model.scene_embedding_size)
    emb, ts = api.get_timestamp_embeddings(torch.zeros(0, n), model)
    # T is the number of timestamps one real sound of that length gets
    ref_emb, ref_ts = api.get_timestamp_embeddings(_noise(1, 1.07, sr), model)
    assert ref_emb.shape[1] > 0
    assert emb.shape == (0, ref_emb.shape[1], model.timestamp_embedding_size)
    assert ts.shape == (0, ref_ts.shape[1])
    assert emb.dtype == ts.dtype == torch.float32
    # and the model methods themselves, not only the HEAR functions
    assert model.scene_embeddings(torch.zeros(0, n)).shape == (0, model.scene_embedding_size)


def test_empty_batch_frame_counts_by_hand(models):
    n = 16000
    emb, ts = api.get_timestamp_embeddings(torch.zeros(0, n), models["crepe_tiny"])
    assert emb.shape == (0, 1 + n // 800, 64)  # 50 ms hop, frames centred at 0, 50, ... ms
    emb, ts = api.get_timestamp_embeddings(torch.zeros(0, n), models["logmel"])
    assert emb.shape == (0, 1 + n // 320, 128) and ts.shape == (0, 51)
    emb, ts = api.get_timestamp_embeddings(torch.zeros(0, 0), models["logmel"])
    assert emb.shape == (0, 0, 128) and ts.shape == (0, 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.uint8, torch.bool])
def test_non_float_audio_is_refused(models, name, dtype):
    model = models[name]
    x = (_noise(2, 0.5, model.sample_rate) * 32767).to(dtype)
    for fn in (api.get_scene_embeddings, api.get_timestamp_embeddings):
        with pytest.raises(TypeError, match=r"float32 samples in \[-1, 1\].*" + str(dtype)[6:]):
            fn(x, model)
    with pytest.raises(TypeError, match="float32"):
        api.get_scene_embeddings(x.numpy(), model)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_audio_names_the_sound(models, name, bad):
    model = models[name]
    x = _noise(4, 0.5, model.sample_rate)
    x[2, 123] = bad
    x[3, -1] = bad
    for fn in (api.get_scene_embeddings, api.get_timestamp_embeddings):
        with pytest.raises(ValueError, match=r"batch index \[2, 3\] of 4 contain NaN or Inf"):
            fn(x, model)


def test_float64_input_equals_float32_and_scaled_int16_is_the_way(models):
    """Why int16 is refused: the unscaled cast is 32768 times too loud. Scaled by hand it
    gives the float result; float64 input is computed as float32."""
    model = models["logmel"]
    x = _noise(2, 0.5, 16000)
    ref = api.get_scene_embeddings(x, model)
    torch.testing.assert_close(api.get_scene_embeddings(x.double(), model), ref)
    pcm = torch.round(x * 32767).to(torch.int16)
    scaled = api.get_scene_embeddings(pcm.float() / 32768, model)
    torch.testing.assert_close(scaled, ref, atol=0.05, rtol=0.01)
