"""HuBERT / wav2vec 2.0 / WavLM / data2vec-audio adapters on tiny random checkpoints (offline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from dissect.models.base import LayerNameError, WeightsUnavailableError, unwrap
from dissect.models.registry import _REGISTRY
from dissect.models.ssl import (
    Data2VecAudioAdapter,
    HubertAdapter,
    Wav2Vec2Adapter,
    WavLMAdapter,
)
from dissect.recording.hooks import hooks
from dissect.recording.pooling import pool

ADAPTERS = {
    "hubert": (HubertAdapter, "HubertConfig", {}),
    "wav2vec2": (Wav2Vec2Adapter, "Wav2Vec2Config", {}),
    "wavlm": (WavLMAdapter, "WavLMConfig", {"num_buckets": 16, "max_bucket_distance": 20}),
    "data2vec_audio": (
        Data2VecAudioAdapter,
        "Data2VecAudioConfig",
        {"num_conv_pos_embeddings": 2, "conv_pos_kernel_size": 5},
    ),
}
HIDDEN, FFN, LAYERS = 32, 48, 2


def _save_tiny(root, family: str, norm: str = "layer", **extra) -> str:
    cls, config_name, family_kw = ADAPTERS[family]
    kw = dict(
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=FFN,
        conv_dim=(16,) * 7,
        **family_kw,
        **extra,
    )  # standard conv strides/kernels: 20 ms hop, 400-sample receptive field
    if family != "data2vec_audio":  # data2vec-audio always uses layer norm
        kw.update(
            feat_extract_norm=norm, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2
        )
    torch.manual_seed(0)
    model = getattr(transformers, cls.model_class)(getattr(transformers, config_name)(**kw))
    path = root / f"{family}-{norm}"
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    out = {(f, "layer"): _save_tiny(root, f) for f in ADAPTERS}
    out.update(
        {(f, "group"): _save_tiny(root, f, "group") for f in ADAPTERS if f != "data2vec_audio"}
    )
    return out


def _clips(*seconds: float) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [(0.3 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]


def _run(adapter, model, sites, clips):
    batch = adapter.prepare(clips)
    raw = {}
    with (
        torch.no_grad(),
        hooks(
            model, {s.name: s.module for s in sites}, lambda out, site: raw.__setitem__(site, out)
        ),
    ):
        adapter.forward(model, batch)
    return batch, raw


def test_registered():
    for name, (cls, _, _) in ADAPTERS.items():
        assert _REGISTRY[name] is cls
        assert cls.sample_rate == 16000


@pytest.mark.parametrize("family", list(ADAPTERS))
def test_sites_and_units(ckpts, family):
    cls = ADAPTERS[family][0]
    model = cls(source=ckpts[family, "layer"]).load()
    attn = "attention" if family == "wavlm" else "attention.out_proj"
    expected = {
        "ffn": ("feed_forward.intermediate_dense", FFN),
        "ffn_pre": ("feed_forward.intermediate_dense", FFN),
        "attention": (attn, HIDDEN),
        "block": (None, HIDDEN),
    }
    for kind, (suffix, units) in expected.items():
        sites = cls(site_kind=kind).sites(model)
        names = [f"encoder.layers.{i}" + (f".{suffix}" if suffix else "") for i in range(LAYERS)]
        assert list(sites) == names
        for s in sites.values():
            assert (s.kind, s.units, s.module) == (kind, units, s.name)
            assert s.hop_ms == pytest.approx(20.0)
            assert s.offset_ms == pytest.approx(199.5 / 16)  # centre of a 400-sample field
            model.get_submodule(s.module)
        assert (sites[names[0]].transform is not None) == (kind == "ffn")


def test_bad_layer_name_lists_valid(ckpts):
    adapter = HubertAdapter(source=ckpts["hubert", "layer"])
    model = adapter.load()
    with pytest.raises(LayerNameError) as err:
        adapter.resolve_layers(model, ["encoder.layers.0.feed_forward.intermediate_dense", "nope"])
    assert "nope" in str(err.value)
    assert "encoder.layers.1.feed_forward.intermediate_dense" in str(err.value)


@pytest.mark.parametrize("family", list(ADAPTERS))
def test_capture_equals_direct(ckpts, family):
    """Hooked attention / ffn_pre / ffn / block outputs recompute layer 1 exactly."""
    cls = ADAPTERS[family][0]
    loader = cls(source=ckpts[family, "layer"])
    model = loader.load()
    kinds = {k: cls(site_kind=k).sites(model) for k in ("ffn", "ffn_pre", "attention", "block")}
    every = [s for sites in kinds.values() for s in sites.values()]
    batch, raw = _run(loader, model, [s for s in every if s.kind != "ffn"], _clips(0.5))
    name = {k: list(v)[1] for k, v in kinds.items()}
    x = unwrap(raw[list(kinds["block"])[0]])  # block 0 output = layer 1 input
    layer = model.encoder.layers[1]
    attn = loader.frames(kinds["attention"][name["attention"]], raw[name["attention"]], batch)
    ffn_pre = loader.frames(kinds["ffn_pre"][name["ffn_pre"]], raw[name["ffn_pre"]], batch)
    block = loader.frames(kinds["block"][name["block"]], raw[name["block"]], batch)
    with torch.no_grad():
        h = layer.layer_norm(x + attn)
        torch.testing.assert_close(ffn_pre, layer.feed_forward.intermediate_dense(h))
        torch.testing.assert_close(block, layer.final_layer_norm(h + layer.feed_forward(h)))
        final = model(**batch.inputs).last_hidden_state
    torch.testing.assert_close(block, final)
    ffn_site = kinds["ffn"][name["ffn"]]
    ffn = loader.frames(ffn_site, raw[name["ffn"]], batch)
    torch.testing.assert_close(ffn, layer.feed_forward.intermediate_act_fn(ffn_pre))
    assert ffn.shape == (1, 24, FFN)  # 0.5 s -> 24 frames


def _pooled(adapter, model, clips):
    sites = adapter.resolve_layers(model, None)
    batch, raw = _run(adapter, model, sites, clips)
    out = {}
    for s in sites:
        frames = adapter.frames(s, raw[s.name], batch)
        valid = adapter.valid_frames(s, batch, frames.shape[1])
        out[s.name] = (pool(frames, valid, "mean")[0][0], pool(frames, valid, "max")[0][0])
    return out


@pytest.mark.parametrize("family", ["hubert", "wav2vec2", "wavlm"])
def test_layer_norm_models_are_padding_invariant(ckpts, family):
    adapter = ADAPTERS[family][0](source=ckpts[family, "layer"], site_kind="ffn")
    model = adapter.load()
    assert adapter.padding_safe is True and adapter.use_attention_mask
    short, long = _clips(0.37, 1.3)
    alone, padded = _pooled(adapter, model, [short]), _pooled(adapter, model, [short, long])
    for name, (mean, peak) in alone.items():
        torch.testing.assert_close(padded[name][0], mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(padded[name][1], peak, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["hubert", "wav2vec2", "wavlm"])
def test_any_clip_length_pools_the_same_in_a_batch_as_alone(ckpts, family):
    """250 samples (under the 400-sample receptive field), 401, 5,321 and 16,000: each clip's
    pooled activations in one batch equal the clip's own. Before the mask was clamped to the
    receptive field, the 250-sample clip had 0 mask frames and attended to the padding."""
    adapter = ADAPTERS[family][0](source=ckpts[family, "layer"], site_kind="ffn")
    model = adapter.load()
    rng = np.random.default_rng(3)
    clips = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in (250, 401, 5321, 16000)]
    together = _pooled_all(adapter, model, clips)
    for i, clip in enumerate(clips):
        alone = _pooled_all(adapter, model, [clip])
        for name, (mean, peak) in alone.items():
            torch.testing.assert_close(together[name][0][i], mean[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(together[name][1][i], peak[0], atol=1e-5, rtol=1e-5)


def _pooled_all(adapter, model, clips):
    sites = adapter.resolve_layers(model, None)
    batch, raw = _run(adapter, model, sites, clips)
    out = {}
    for s in sites:
        frames = adapter.frames(s, raw[s.name], batch)
        valid = adapter.valid_frames(s, batch, frames.shape[1])
        assert valid.any(1).all()  # every clip has a valid frame
        out[s.name] = (pool(frames, valid, "mean")[0], pool(frames, valid, "max")[0])
    return out


@pytest.mark.parametrize(
    "family,norm",
    [("hubert", "group"), ("wav2vec2", "group"), ("wavlm", "group"), ("data2vec_audio", "layer")],
)
def test_padding_unsafe_models_say_so(ckpts, family, norm):
    """GroupNorm over time (and data2vec's stacked positional convs) make padding leak in."""
    adapter = ADAPTERS[family][0](source=ckpts[family, norm], site_kind="ffn")
    model = adapter.load()
    assert adapter.padding_safe is False
    assert adapter.use_attention_mask == (norm == "layer")
    short, long = _clips(0.37, 1.3)
    alone, padded = _pooled(adapter, model, [short]), _pooled(adapter, model, [short, long])
    gap = max((padded[n][0] - alone[n][0]).abs().max().item() for n in alone)
    assert gap > 1e-3  # the difference is real, so the recorder must not mix lengths


def test_valid_frames_match_conv_lengths(ckpts):
    adapter = Wav2Vec2Adapter(source=ckpts["wav2vec2", "layer"])
    model = adapter.load()
    clips = _clips(1.0, 0.025, 0.5123, 0.01)
    batch = adapter.prepare(clips)
    expected = model._get_feat_extract_output_lengths(batch.lengths.clamp(min=400))
    assert batch.extra["n_frames"].tolist() == expected.tolist() == [49, 1, 25, 1]
    site = adapter.resolve_layers(model, ["encoder.layers.0.feed_forward.intermediate_dense"])[0]
    n = 49
    valid = adapter.valid_frames(site, batch, n)
    assert valid.sum(1).tolist() == [49, 1, 25, 1]  # a clip under 25 ms still gets one frame
    assert valid[2, :25].all() and not valid[2, 25:].any()
    _, raw = _run(adapter, model, [site], clips)
    assert adapter.frames(site, raw[site.name], batch).shape == (4, n, FFN)


def test_normalisation_follows_checkpoint(ckpts, tmp_path):
    group = Wav2Vec2Adapter(source=ckpts["wav2vec2", "group"])
    group.load()
    assert group.do_normalize is False  # no preprocessor config: group norm -> raw audio
    layer = Wav2Vec2Adapter(source=ckpts["wav2vec2", "layer"])
    layer.load()
    assert layer.do_normalize is True
    path = _save_tiny(tmp_path, "wav2vec2", "group")
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(path)
    group = Wav2Vec2Adapter(source=path)
    group.load()
    assert group.do_normalize is True and group.use_attention_mask is False
    a, b = _clips(0.2, 0.5)
    x = group.prepare([a + 3.0, b]).inputs["input_values"]
    n = len(a)
    assert abs(x[0, :n].mean().item()) < 1e-5 and x[0, :n].std(unbiased=False).item() == (
        pytest.approx(1.0, abs=1e-3)
    )
    assert x[0, n:].abs().max().item() == 0.0


def test_missing_weights_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        HubertAdapter(source="nobody-xyz/no-such-hubert").load()
    assert "nobody-xyz/no-such-hubert" in str(err.value) and "local path" in str(err.value)
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        HubertAdapter(source="/no/such/dir").load()
