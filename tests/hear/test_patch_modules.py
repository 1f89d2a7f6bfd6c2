"""HEAR modules of the patch-token encoders (AST, BEATs, CLAP) on tiny random checkpoints, and
the time resampling / time stitching they need (their own frames are 100-313 ms apart)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dissect.hear import api
from dissect.hear.api import EmbeddingModel, check_outputs
from dissect.hear.modules import ast_audioset, beats_iter3, clap_htsat, crepe_tiny
from dissect.models import WeightsUnavailableError
from dissect.models.tiny import save_tiny

SR = 16000
LENGTHS = (0.1, 1.07, 1.98, 4.0)


def _audio(seconds: float, n: int = 2, sr: int = SR, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, int(round(seconds * sr)), generator=g) * 2 - 1


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    return save_tiny("ast", tmp_path_factory.mktemp("ast") / "tiny")


@pytest.fixture(scope="module")
def beats_ckpt(tmp_path_factory):
    return save_tiny("beats", tmp_path_factory.mktemp("beats") / "tiny.pt")


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    return save_tiny("clap", tmp_path_factory.mktemp("clap") / "tiny")  # reads at most 1 s


@pytest.fixture(scope="module")
def models(ast_dir, beats_ckpt, clap_dir):
    return {
        "ast": (ast_audioset.load_model(ast_dir), SR),
        "beats": (beats_iter3.load_model(beats_ckpt), SR),
        # the tiny CLAP reads 1 s: the default chunking shrinks to 0.8 s + 0.1 s either side;
        # its last stage is ~31 ms apart, so ask for 20 ms to exercise the resampling
        "clap": (clap_htsat.load_model(clap_dir, output_hop_ms=20.0), 48000),
    }


@pytest.mark.parametrize("seconds", LENGTHS)
@pytest.mark.parametrize("name", ["ast", "beats", "clap"])
def test_hear_outputs_on_odd_lengths(models, name, seconds):
    model, sr = models[name]
    audio = _audio(seconds, sr=sr)
    emb, ts = api.get_timestamp_embeddings(audio, model)
    assert check_outputs(emb, ts, 2, audio.shape[1], sr, model.timestamp_embedding_size) == []
    assert emb.dtype == ts.dtype == torch.float32 and model.sample_rate == sr
    if ts.shape[1] > 1:  # the output grid, whatever the model's own hop
        assert torch.allclose(ts[0, 1:] - ts[0, :-1], torch.tensor(model.hop_ms), atol=1e-3)
    scene = api.get_scene_embeddings(audio, model)
    assert scene.shape == (2, model.scene_embedding_size) and scene.dtype == torch.float32


def test_ast_frames_are_interpolated_in_time_by_hand(ast_dir):
    native = ast_audioset.load_model(ast_dir, output_hop_ms=None)
    model = ast_audioset.load_model(ast_dir)
    assert (native.hop_ms, model.hop_ms, model.frame_hop_ms) == (100.0, 50.0, 100.0)
    audio = _audio(0.56, n=1)  # 54 fbank frames -> time columns 0..3 fully real
    e, t = native.timestamp_embeddings(audio)
    assert t[0].tolist() == [87.5, 187.5, 287.5, 387.5]  # 12.5 + 7.5 * 10 + 100 k ms
    got, ts = model.timestamp_embeddings(audio)
    assert ts[0].tolist() == [87.5 + 50 * k for k in range(7)]
    want = torch.stack([e[0, 0], (e[0, 0] + e[0, 1]) / 2, e[0, 1], (e[0, 1] + e[0, 2]) / 2,
                        e[0, 2], (e[0, 2] + e[0, 3]) / 2, e[0, 3]])
    assert torch.allclose(got[0], want, atol=1e-5)
    # scene: the model's own frames, not the interpolated ones
    assert torch.allclose(model.scene_embeddings(audio)[0], e[0].mean(0), atol=1e-6)


def test_time_stitching_equals_one_pass_for_a_local_model():
    """CREPE frames see 64 ms, so stitching 1 s chunks must give the unchunked frames exactly;
    with output_hop_ms below CREPE's 50 ms hop the stitched path is the one used."""
    audio = _audio(3.33, n=2, seed=4)
    whole = crepe_tiny.load_model(chunk_seconds=None)
    net = whole.model
    chunked = EmbeddingModel(whole.adapter, net, "last", chunk_seconds=1.0, context_seconds=0.1,
                             output_hop_ms=20.0)
    one = EmbeddingModel(whole.adapter, net, "last", chunk_seconds=None, output_hop_ms=20.0)
    assert chunked.resample and chunked.hop_ms == 20.0
    e1, t1 = chunked.timestamp_embeddings(audio)
    e2, t2 = one.timestamp_embeddings(audio)
    assert chunked.last_stats["n_windows"] == 2 * 4 and torch.equal(t1, t2)
    assert torch.allclose(e1, e2, atol=1e-5)
    native, nt = whole.timestamp_embeddings(audio)
    assert t1[0, 0] == nt[0, 0] and float(t1[0, -1]) <= float(nt[0, -1])
    on_both = e1[:, ::5]  # every 100 ms the 20 ms grid meets a 50 ms frame (every 2nd)
    assert torch.allclose(on_both, native[:, ::2][:, : on_both.shape[1]], atol=1e-5)
    mid = (native[:, 0] + native[:, 1]) / 2  # 20 ms: 0.4 of the way from frame 0 to 1
    assert torch.allclose(e1[:, 1], native[:, 0] + 0.4 * (native[:, 1] - native[:, 0]),
                          atol=1e-5) and not torch.allclose(e1[:, 1], mid, atol=1e-7)


def test_long_audio_is_stitched_in_bounded_windows(ast_dir):
    model = ast_audioset.load_model(ast_dir, batch_chunks=2)
    audio = _audio(30.0, n=1, seed=1)
    emb, ts = api.get_timestamp_embeddings(audio, model)
    assert check_outputs(emb, ts, 1, audio.shape[1], SR, model.timestamp_embedding_size) == []
    assert model.last_stats["n_windows"] == 4  # 8 s cores: 0-8, 8-16, 16-24, 24-30
    assert model.last_stats["max_window_samples"] <= 10 * SR
    assert float(ts[0, -1]) > 29_000  # the frames reach the end of the clip


def test_errors(clap_dir, ast_dir):
    with pytest.raises(WeightsUnavailableError, match="checkpoint"):
        beats_iter3.load_model()
    with pytest.raises(ValueError, match="at most 1 s"):
        clap_htsat.load_model(clap_dir, chunk_seconds=8.0)  # asked for more than it reads
    shrunk = clap_htsat.load_model(clap_dir)
    assert (shrunk.chunk_seconds, shrunk.context_seconds) == pytest.approx((0.8, 0.1))
    with pytest.raises(ValueError, match="different frame timings"):
        clap_htsat.load_model(clap_dir, layer="fusion", chunk_seconds=0.6,
                              context_seconds=0.2)
    with pytest.raises(ValueError, match="output_hop_ms"):
        ast_audioset.load_model(ast_dir, output_hop_ms=0.0)


def test_fusion_of_ast_blocks_is_their_mean(ast_dir):
    fused = ast_audioset.load_model(ast_dir, layer="fusion", output_hop_ms=None)
    names = [n for n, s in fused.adapter.sites(fused.model).items() if s.kind != "output"]
    blocks = [ast_audioset.load_model(ast_dir, layer=n, output_hop_ms=None) for n in names]
    audio = _audio(1.2, n=1, seed=3)
    want = torch.stack([b.timestamp_embeddings(audio)[0] for b in blocks]).mean(0)
    assert torch.allclose(fused.timestamp_embeddings(audio)[0], want, atol=1e-5)
    assert np.isclose(fused.hop_ms, 100.0)


def test_a_finer_own_hop_is_kept_and_long_clips_stitch(clap_dir):
    """The tiny CLAP's last stage is ~31.4 ms apart (< 50 ms): its own hop is the grid. A 2 s
    clip is longer than the 1 s it reads, so it is stitched from 0.8 s cores (hearvalidator's
    case that the frame-grid path could not chunk)."""
    model = clap_htsat.load_model(clap_dir)
    assert model.hop_ms == pytest.approx(model.frame_hop_ms) and model.hop_ms < 50
    audio = _audio(2.0, n=3, sr=48000, seed=5)
    emb, ts = api.get_timestamp_embeddings(audio, model)
    assert check_outputs(emb, ts, 3, audio.shape[1], 48000, model.timestamp_embedding_size) == []
    assert model.last_stats["n_windows"] == 3 * 3 and float(ts[0, -1]) > 1900


def test_clap_hop_is_what_docs_say(clap_dir):
    """docs/hear.md: CLAP's own hop is ``patch_stride x 2^(stages-1)`` mel columns, 312.8 ms on
    laion's 10 s four-stage models (so the HEAR output is resampled to 50 ms) and 31.4 ms on
    the 1 s two-stage test checkpoint (kept, no resampling)."""
    import re
    from pathlib import Path

    import transformers

    from dissect.models.clap import ClapAdapter

    row = next(line for line in (Path(__file__).parents[2] / "docs" / "hear.md")
               .read_text().splitlines() if line.startswith("| `clap_htsat` |"))  # fmt: skip
    full_ms, tiny_ms = (float(x) for x in re.findall(r"([\d.]+) ms for", row))
    assert "min(50 ms, own)" in row
    tiny = clap_htsat.load_model(clap_dir)
    assert tiny.frame_hop_ms == pytest.approx(tiny_ms, abs=0.05)
    assert tiny.hop_ms == tiny.frame_hop_ms
    # laion/clap-htsat-unfused's architecture (transformers' ClapAudioConfig defaults), random
    # weights: the adapter's last-stage site timing
    net = transformers.ClapAudioModelWithProjection(transformers.ClapAudioConfig())
    adapter = ClapAdapter()
    adapter.fe = transformers.ClapFeatureExtractor()
    last = list(adapter.sites(net).values())[-1]
    assert last.hop_ms == pytest.approx(full_ms, abs=0.05)
    assert min(50.0, last.hop_ms) == 50.0
