"""BEATs: official checkpoint format, architecture and key names, sites, framing, padding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dissect.models import LayerNameError, WeightsUnavailableError, get_adapter
from dissect.models.beats import BEATsAdapter
from dissect.models.beats_net import (
    BEATs,
    BEATsCheckpointError,
    BEATsConfig,
    fbank,
    load_beats_checkpoint,
)
from dissect.recording.hooks import hooks, run_sites
from dissect.recording.pooling import pool

SR = 16000

# BEATs_iter3 (the AND paper's cfg.pkl): 12 layers, 768 wide, FFN 3072, 12 heads, deep norm,
# gated relative position bias with 320 buckets up to distance 800.
ITER3 = dict(
    input_patch_size=16, embed_dim=512, conv_bias=False, encoder_layers=12,
    encoder_embed_dim=768, encoder_ffn_embed_dim=3072, encoder_attention_heads=12,
    activation_fn="gelu", layer_norm_first=False, deep_norm=True, dropout=0.1,
    attention_dropout=0.1, activation_dropout=0.0, encoder_layerdrop=0.05, dropout_input=0.1,
    conv_pos=128, conv_pos_groups=16, relative_position_embedding=True, num_buckets=320,
    max_distance=800, gru_rel_pos=True, finetuned_model=False,
)
TINY = dict(ITER3, embed_dim=32, encoder_layers=2, encoder_embed_dim=64,
            encoder_ffn_embed_dim=128, encoder_attention_heads=4, conv_pos=16,
            conv_pos_groups=4, num_buckets=32, max_distance=64)

# The state-dict keys of one layer of the official model (microsoft/unilm beats/backbone.py:
# TransformerSentenceEncoderLayer + MultiheadAttention with gru_rel_pos). The relative position
# bias table is one module shared by all layers, so the state dict repeats it under every layer.
LAYER_KEYS = [
    "self_attn.k_proj.weight", "self_attn.k_proj.bias",
    "self_attn.v_proj.weight", "self_attn.v_proj.bias",
    "self_attn.q_proj.weight", "self_attn.q_proj.bias",
    "self_attn.out_proj.weight", "self_attn.out_proj.bias",
    "self_attn.relative_attention_bias.weight",
    "self_attn.grep_linear.weight", "self_attn.grep_linear.bias", "self_attn.grep_a",
    "self_attn_layer_norm.weight", "self_attn_layer_norm.bias",
    "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
    "final_layer_norm.weight", "final_layer_norm.bias",
]
# beats/BEATs.py (BEATs) and backbone.py (TransformerEncoder: weight-normed pos_conv in a
# Sequential with SamePad and GELU, so index 0).
TOP_KEYS = [
    "post_extract_proj.weight", "post_extract_proj.bias", "patch_embedding.weight",
    "layer_norm.weight", "layer_norm.bias",
    "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v", "encoder.pos_conv.0.bias",
    "encoder.layer_norm.weight", "encoder.layer_norm.bias",
]


def _random_state(cfg: BEATsConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = BEATs(cfg)
    with torch.no_grad():  # move gates, norms and biases away from their init values
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.state_dict()


def _save(path, cfg_dict: dict, state: dict | None = None, **extra) -> str:
    state = state if state is not None else _random_state(BEATsConfig.from_dict(cfg_dict))
    torch.save({"cfg": cfg_dict, "model": state, **extra}, path)
    return str(path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("beats") / "tiny.pt", TINY)


@pytest.fixture(scope="module")
def ckpt_ft(tmp_path_factory):
    cfg = dict(TINY, finetuned_model=True, predictor_class=5)
    labels = {i: f"/m/label{i}" for i in range(5)}
    return _save(tmp_path_factory.mktemp("beats") / "tiny_ft.pt", cfg, label_dict=labels)


def _clips(seconds=(1.0, 0.55, 2.0, 0.1), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(max(seconds) * SR)) / SR
    out = []
    for i, s in enumerate(seconds):
        n = int(s * SR)
        tone = 0.3 * np.sin(2 * np.pi * (220 * (i + 1)) * t[:n])
        out.append((tone + 0.05 * rng.standard_normal(n)).astype(np.float32))
    return out


# ----------------------------------------------------------------------------- loading
def test_tiny_checkpoint_loads_strict_through_adapter(ckpt):
    adapter = get_adapter("beats", source=ckpt)
    assert isinstance(adapter, BEATsAdapter) and adapter.sample_rate == SR
    model = adapter.load("cpu")
    assert not model.training
    saved = torch.load(ckpt, weights_only=True)["model"]
    got = model.state_dict()
    assert set(got) == set(saved)
    assert all(torch.equal(got[k], saved[k]) for k in saved)
    # one bias table shared by all layers, as in the official model
    rel = [layer.self_attn.relative_attention_bias for layer in model.encoder.layers]
    assert all(r is rel[0] for r in rel)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = _random_state(BEATsConfig.from_dict(TINY))
    del state["encoder.layers.1.fc2.bias"]
    state["encoder.layers.1.extra.weight"] = torch.zeros(1)
    path = _save(tmp_path / "bad.pt", TINY, state)
    with pytest.raises(BEATsCheckpointError) as err:
        load_beats_checkpoint(path)
    msg = str(err.value)
    assert path in msg and "encoder.layers.1.fc2.bias" in msg
    assert "encoder.layers.1.extra.weight" in msg


def test_corrupt_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "nocfg.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(BEATsCheckpointError, match="nocfg.pt.*'cfg'"):
        BEATsAdapter(source=str(path)).load()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(BEATsCheckpointError, match="junk.pt"):
        load_beats_checkpoint(junk)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_beats_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize("source", [None, "microsoft/beats-iter3", "/no/such/BEATs_iter3.pt"])
def test_unavailable_weights_explain_where_to_get_them(source):
    with pytest.raises(WeightsUnavailableError) as err:
        BEATsAdapter(source=source).load()
    msg = str(err.value)
    assert "github.com/microsoft/unilm" in msg and "model.source=" in msg
    assert "BEATs_iter3" in msg


# ----------------------------------------------------------------------------- architecture
def test_iter3_config_parameter_count_and_official_keys():
    cfg = BEATsConfig.from_dict(ITER3)
    with torch.device("meta"):
        model = BEATs(cfg)
    # unique parameters (the shared bias table counted once): ~90M as in the BEATs paper
    assert sum(p.numel() for p in model.parameters()) == 90_311_792
    state = model.state_dict()
    expected = set(TOP_KEYS) | {f"encoder.layers.{i}.{k}" for i in range(12) for k in LAYER_KEYS}
    assert set(state) == expected
    shapes = {
        "patch_embedding.weight": (512, 1, 16, 16),
        "post_extract_proj.weight": (768, 512),
        "encoder.pos_conv.0.weight_g": (1, 1, 128),
        "encoder.pos_conv.0.weight_v": (768, 48, 128),
        "encoder.layers.0.self_attn.relative_attention_bias.weight": (320, 12),
        "encoder.layers.11.self_attn.grep_linear.weight": (8, 64),
        "encoder.layers.11.self_attn.grep_a": (1, 12, 1, 1),
        "encoder.layers.5.fc1.weight": (3072, 768),
        "encoder.layers.5.fc2.weight": (768, 3072),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    with torch.device("meta"):
        ft = BEATs(BEATsConfig.from_dict(dict(ITER3, finetuned_model=True)))
    assert set(ft.state_dict()) - expected == {"predictor.weight", "predictor.bias"}
    assert tuple(ft.predictor.weight.shape) == (527, 768)


def test_config_round_trip_keeps_unknown_keys():
    cfg = BEATsConfig.from_dict(dict(TINY, some_training_flag=3))
    assert cfg.extra == {"some_training_flag": 3}
    assert BEATsConfig.from_dict(cfg.to_dict()) == cfg


def test_tokens_are_time_major(ckpt):
    """Token ``t * 8 + f`` is the patch of time patch ``t`` and frequency patch ``f``."""
    model = BEATsAdapter(source=ckpt).load()
    feats = fbank(torch.from_numpy(_clips((1.0,))[0]))[None]  # [1, 98, 128]
    seen = {}
    handle = model.layer_norm.register_forward_hook(lambda m, i, o: seen.setdefault("x", i[0]))
    try:
        with torch.no_grad():
            model.encode(feats)
    finally:
        handle.remove()
    tokens = seen["x"]  # [1, 6 * 8, 32], before the patch layer norm
    assert tokens.shape == (1, 48, 32)
    w = model.patch_embedding.weight[:, 0]  # [E, 16, 16]
    for t, f in [(0, 0), (0, 7), (1, 0), (5, 3)]:
        patch = feats[0, 16 * t: 16 * t + 16, 16 * f: 16 * f + 16]
        direct = (w * patch).sum((1, 2))
        torch.testing.assert_close(tokens[0, t * 8 + f], direct, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- sites
def test_sites_units_and_default_layers(ckpt, ckpt_ft):
    model = BEATsAdapter(source=ckpt).load()
    ffn = BEATsAdapter(source=ckpt).sites(model)
    assert list(ffn) == ["encoder.layers.0.fc1", "encoder.layers.1.fc1"]
    assert all(s.units == 128 and s.kind == "ffn" and s.transform is not None
               for s in ffn.values())
    pre = BEATsAdapter(source=ckpt, site_kind="ffn_pre").sites(model)
    assert pre["encoder.layers.1.fc1"].transform is None
    att = BEATsAdapter(source=ckpt, site_kind="attention").sites(model)
    assert list(att) == ["encoder.layers.0.self_attn.out_proj",
                         "encoder.layers.1.self_attn.out_proj"]
    assert att["encoder.layers.0.self_attn.out_proj"].units == 64
    blk = BEATsAdapter(source=ckpt, site_kind="block").sites(model)
    assert list(blk) == ["encoder.layers.0", "encoder.layers.1"]
    site = ffn["encoder.layers.0.fc1"]
    assert (site.hop_ms, site.offset_ms) == (160.0, 87.5)
    adapter = BEATsAdapter(source=ckpt)
    assert adapter.default_layers(model) == list(ffn)
    assert adapter.head_layer(model) is None and adapter.class_names(model) is None
    with pytest.raises(ValueError, match="site_kind"):
        BEATsAdapter(source=ckpt, site_kind="conv")

    ft_adapter = BEATsAdapter(source=ckpt_ft)
    ft = ft_adapter.load()
    sites = ft_adapter.sites(ft)
    assert sites["predictor"].units == 5 and sites["predictor"].kind == "output"
    assert "predictor" in ft_adapter.default_layers(ft)
    assert ft_adapter.head_layer(ft) == "predictor"
    assert ft_adapter.class_names(ft) == [f"/m/label{i}" for i in range(5)]
    names = ["dog", "rain", "siren", "speech", "violin"]
    assert BEATsAdapter(source=ckpt_ft, labels=names).class_names(ft) == names
    ft.label_dict = None
    assert ft_adapter.class_names(ft) == [f"class_{i}" for i in range(5)]


def test_bad_layer_lists_valid_names(ckpt):
    adapter = BEATsAdapter(source=ckpt)
    model = adapter.load()
    with pytest.raises(LayerNameError) as err:
        adapter.resolve_layers(model, ["encoder.layers.7.fc1"])
    assert "encoder.layers.0.fc1" in str(err.value) and "encoder.layers.1.fc1" in str(err.value)


# ----------------------------------------------------------------------------- running
def _capture(adapter, model, waves, names):
    sites = adapter.resolve_layers(model, names)
    batch = adapter.prepare(waves)
    raw, framed = {}, {}

    def fn(output, *, site):
        raw[site] = output
        s = next(x for x in sites if x.name == site)
        framed[site] = adapter.frames(s, output, batch)

    with hooks(model, {s.name: s.module for s in sites}, fn), torch.no_grad():
        logits = adapter.forward(model, batch)
    return batch, sites, raw, framed, logits


def test_hook_capture_equals_direct_computation(ckpt):
    model = BEATsAdapter(source=ckpt).load()
    waves = _clips((1.0, 0.6))
    names = {"ffn": "encoder.layers.1.fc1", "attention": "encoder.layers.1.self_attn.out_proj",
             "block": "encoder.layers.1"}
    got = {}
    for kind, name in names.items():
        adapter = BEATsAdapter(source=ckpt, site_kind=kind)
        batch, _, raw, framed, _ = _capture(adapter, model, waves, [name])
        got[kind] = (raw[name], framed[name])

    with torch.no_grad():  # the same layer computed by hand from its input
        feats, pad = batch.inputs["fbank"], batch.inputs["padding_mask"]
        x = model.patch_embedding(feats[:, None]).flatten(2).transpose(1, 2)
        x = model.post_extract_proj(model.layer_norm(x))
        mask = model.token_padding_mask((~pad).sum(1), feats.shape[1] // 16)
        _, results = model.encoder(x, mask, return_layers=True)
        h = results[1]  # output of layer 0
        layer = model.encoder.layers[1]
        bias = model.encoder.layers[0].self_attn.compute_bias(h.shape[1], h.shape[1])
        attn = layer.self_attn(h, mask, bias)
        x1 = layer.self_attn_layer_norm(h * layer.deep_norm_alpha + attn)
        fc1 = layer.fc1(x1)
        block = layer.final_layer_norm(x1 * layer.deep_norm_alpha + layer.fc2(F.gelu(fc1)))
    torch.testing.assert_close(got["attention"][0], attn)
    torch.testing.assert_close(got["ffn"][0], fc1)
    torch.testing.assert_close(got["block"][0], block)
    torch.testing.assert_close(got["block"][0], results[2])
    # framing: post-GELU for ffn, then the mean of the 8 frequency patches of each time patch
    B, N, U = fc1.shape
    torch.testing.assert_close(got["ffn"][1], F.gelu(fc1).view(B, N // 8, 8, U).mean(2))
    assert got["ffn"][1].shape == (2, 6, 128)


@pytest.mark.parametrize("kind", ["ffn", "attention", "block", "and"])
def test_pooled_values_alone_equal_padded_batch(ckpt_ft, kind):
    adapter = BEATsAdapter(source=ckpt_ft, site_kind=kind)
    assert adapter.padding_safe
    model = adapter.load()
    waves = _clips()  # 1.0 s, 0.55 s, 2.0 s and 0.1 s (shorter than one patch)
    names = list(adapter.sites(model))
    batch, sites, _, framed, logits = _capture(adapter, model, waves, names)
    assert batch.extra["n_frames"].tolist() == [98, 53, 198, 8]
    for b, w in enumerate(waves):
        one, _, _, framed1, logits1 = _capture(adapter, model, [w], names)
        torch.testing.assert_close(logits[b: b + 1], logits1, atol=1e-4, rtol=1e-4)
        for s in sites:
            fb, f1 = framed[s.name][b: b + 1], framed1[s.name]
            vb = adapter.valid_frames(s, batch, fb.shape[1])[b: b + 1]
            v1 = adapter.valid_frames(s, one, f1.shape[1])
            assert int(vb.sum()) == int(v1.sum()) == [6, 3, 12, 1][b]
            for how in ("mean", "max"):
                pb, _ = pool(fb, vb, how)
                p1, _ = pool(f1, v1, how)
                torch.testing.assert_close(pb, p1, atol=1e-4, rtol=1e-4)


def test_valid_frames_follow_real_fbank_length(ckpt):
    adapter = BEATsAdapter(source=ckpt)
    model = adapter.load()
    batch = adapter.prepare(_clips())
    site = adapter.sites(model)["encoder.layers.0.fc1"]
    valid = adapter.valid_frames(site, batch, 12)  # 2.0 s -> 198 frames -> 12 time patches
    assert valid.sum(1).tolist() == [6, 3, 12, 1]


def test_extract_features_on_waveforms_matches_the_adapter(ckpt, ckpt_ft):
    model = BEATsAdapter(source=ckpt).load()
    waves = _clips((1.0, 0.6))
    padded = torch.zeros(2, SR)
    padded[0], padded[1, : len(waves[1])] = torch.from_numpy(waves[0]), torch.from_numpy(waves[1])
    pad = torch.arange(SR)[None, :] >= torch.tensor([SR, len(waves[1])])[:, None]
    with torch.no_grad():
        x, mask = model.extract_features(padded, pad)
        alone, _ = model.extract_features(padded[1:, : len(waves[1])])
    assert x.shape == (2, 48, 64) and mask[1].sum() == 48 - 24
    torch.testing.assert_close(x[1, :24], alone[0], atol=1e-4, rtol=1e-4)
    ft = BEATsAdapter(source=ckpt_ft).load()
    with torch.no_grad():
        probs, _ = ft.extract_features(padded, pad)
        logits = BEATsAdapter(source=ckpt_ft).forward(ft, BEATsAdapter().prepare(waves))
    assert probs.shape == (2, 5) and bool(((probs > 0) & (probs < 1)).all())
    torch.testing.assert_close(probs, torch.sigmoid(logits), atol=1e-5, rtol=1e-5)


def test_config_rejects_unsupported_settings():
    with pytest.raises(ValueError, match="activation"):
        BEATs(dataclasses.replace(BEATsConfig.from_dict(TINY), activation_fn="glu"))
    with pytest.raises(ValueError, match="input_patch_size"):
        BEATs(BEATsConfig.from_dict(dict(TINY, input_patch_size=-1)))


# ----------------------------------------------------------------------------- model.site=and
def test_and_sites_are_fc1_fc2_of_every_layer_and_the_head(ckpt, ckpt_ft):
    adapter = BEATsAdapter(source=ckpt_ft, site_kind="and")
    model = adapter.load()
    sites = adapter.sites(model)
    expected = [f"encoder.layers.{i}.{m}" for i in range(2) for m in ("fc1", "fc2")]
    assert list(sites) == expected + ["predictor"]  # layer order; fc1 before fc2
    assert [s.units for s in sites.values()] == [128, 64, 128, 64, 5]
    assert sum(s.units for s in sites.values()) == 2 * (128 + 64) + 5
    for name in expected:
        s = sites[name]
        assert (s.module, s.kind, s.transform) == (name, "and", None)
        assert (s.hop_ms, s.offset_ms) == (160.0, 87.5)
    assert sites["predictor"].kind == "output"
    assert adapter.default_layers(model) == list(sites)
    ssl = BEATsAdapter(source=ckpt, site_kind="and")  # no head: the Linears only
    assert list(ssl.sites(ssl.load())) == expected


def test_and_records_fc1_before_gelu_and_fc2(ckpt):
    adapter = BEATsAdapter(source=ckpt, site_kind="and")
    model = adapter.load()
    sites = adapter.resolve_layers(model, ["encoder.layers.1.fc1", "encoder.layers.1.fc2"])
    layer = model.encoder.layers[1]
    seen = {}
    handles = [m.register_forward_hook(lambda _m, i, o, k=k: seen.update({k: (i[0], o)}))
               for k, m in (("fc1", layer.fc1), ("fc2", layer.fc2))]
    try:
        run = run_sites(adapter, model, _clips((1.0, 0.6)), sites)
    finally:
        for h in handles:
            h.remove()

    def patches(x):  # mean of the 8 frequency patches of each time patch
        B, N, U = x.shape
        return x.view(B, N // 8, 8, U).mean(2)

    fc1 = run.sites["encoder.layers.1.fc1"].frames
    fc2 = run.sites["encoder.layers.1.fc2"].frames
    assert fc1.shape == (2, 6, 128) and fc2.shape == (2, 6, 64)
    assert torch.allclose(fc1, patches(seen["fc1"][1]), rtol=1e-6, atol=1e-6)
    assert torch.allclose(fc2, patches(seen["fc2"][1]), rtol=1e-6, atol=1e-6)
    # fc2 reads GELU(fc1): the recorded fc1 is what GELU is applied to, not its output
    torch.testing.assert_close(seen["fc2"][0], F.gelu(seen["fc1"][1]))
    assert not torch.allclose(fc1, patches(F.gelu(seen["fc1"][1])), atol=1e-3)
    assert (fc1 < -0.2).any()  # below GELU's minimum
    assert run.sites["encoder.layers.1.fc1"].valid.sum(1).tolist() == [6, 3]


def test_and_full_size_beats_has_46130_neurons():
    torch.manual_seed(0)
    model = BEATs(BEATsConfig.from_dict(dict(ITER3, finetuned_model=True, predictor_class=50)))
    sites = BEATsAdapter(site_kind="and").sites(model)
    assert len(sites) == 12 * 2 + 1
    assert sum(s.units for s in sites.values()) == 12 * (3072 + 768) + 50 == 46_130
