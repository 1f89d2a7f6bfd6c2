"""CLAP audio-tower adapter on a tiny random ClapModel (offline), incl. laion-clap checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from dissect.models.base import LayerNameError, WeightsUnavailableError, unwrap
from dissect.models.clap import ClapAdapter, hf_to_laion, laion_to_hf, unwindow
from dissect.models.registry import _REGISTRY
from dissect.recording.hooks import hooks
from dissect.recording.pooling import pool

# 16 mel bins, spec 64 -> freq_ratio 4; 1 s at 48 kHz -> 101 mel frames, interpolated to 256
# columns folded into a 64 x 64 image (4 time chunks of 64 columns); patch stride 4 -> 16 x 16
# tokens at stage 0, 8 x 8 at stage 1; window 4 so odd blocks of stage 0 are shifted.
AUDIO = dict(
    spec_size=64,
    num_mel_bins=16,
    patch_embeds_hidden_size=8,
    depths=[2, 2],
    num_attention_heads=[2, 2],
    window_size=4,
    hidden_size=16,
    projection_dim=8,
)
TEXT = dict(
    vocab_size=50,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=16,
    projection_dim=8,
    max_position_embeddings=40,
)
COL_MS = 100 / 255 * 10  # ms per interpolated mel column
ENC = "audio_model.audio_encoder"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("clap") / "tiny"
    config = transformers.ClapConfig(audio_config=AUDIO, text_config=TEXT, projection_dim=8)
    transformers.ClapModel(config).save_pretrained(path)
    transformers.ClapFeatureExtractor(feature_size=16, max_length_s=1).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def loaded(ckpt):
    adapter = ClapAdapter(source=ckpt)
    return adapter, adapter.load()


def _clips(*seconds: float) -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [(0.3 * rng.standard_normal(int(s * 48000))).astype(np.float32) for s in seconds]


def _capture(model, sites, batch, adapter):
    raw = {}
    with (
        torch.no_grad(),
        hooks(
            model, {s.name: s.module for s in sites}, lambda out, site: raw.__setitem__(site, out)
        ),
    ):
        adapter.forward(model, batch)
    return raw


def test_registered_and_loads_audio_tower(loaded):
    adapter, model = loaded
    assert _REGISTRY["clap"] is ClapAdapter and ClapAdapter.sample_rate == 48000
    assert isinstance(model, transformers.ClapAudioModelWithProjection)
    full = transformers.ClapModel.from_pretrained(adapter.source)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, full.state_dict()[key])


def test_sites_and_units(loaded):
    _, model = loaded
    for kind, suffix, units in [
        ("ffn", ".intermediate.dense", (32, 64)),
        ("ffn_pre", ".intermediate.dense", (32, 64)),
        ("attention", ".attention.output.dense", (8, 16)),
        ("block", "", (8, 16)),
    ]:
        sites = _kind_sites(loaded[0], model, kind)
        names = [f"{ENC}.layers.{s}.blocks.{b}{suffix}" for s in range(2) for b in range(2)]
        assert list(sites) == names
        for i, name in enumerate(names):
            stage = i // 2
            s = sites[name]
            assert (s.kind, s.units) == (kind, units[stage])
            span = 4 * 2**stage
            assert s.hop_ms == pytest.approx(span * COL_MS)
            assert s.offset_ms == pytest.approx((span - 1) / 2 * COL_MS)


def test_bad_layer_name_lists_valid(loaded):
    adapter, model = loaded
    with pytest.raises(LayerNameError) as err:
        adapter.resolve_layers(model, ["audio_branch.layers.0.blocks.0.mlp.fc1"])
    assert f"{ENC}.layers.1.blocks.1.intermediate.dense" in str(err.value)


def _kind_sites(adapter, model, kind):
    other = ClapAdapter(source=adapter.source, site_kind=kind)
    other.fe = adapter.fe
    return other.sites(model)


def test_capture_equals_direct(loaded):
    """Un-windowed attention + hooked ffn_pre/ffn/block recompute a plain and a shifted block."""
    adapter, model = loaded
    kinds = {k: _kind_sites(adapter, model, k) for k in ("ffn", "ffn_pre", "attention", "block")}
    names = {k: list(v) for k, v in kinds.items()}
    wanted = {s.name: s.module for v in kinds.values() for s in v.values() if s.kind != "ffn"}
    wanted["embed"] = f"{ENC}.patch_embed"  # input of block 0
    batch = adapter.prepare(_clips(0.7))
    raw = {}
    with torch.no_grad(), hooks(model, wanted, lambda out, site: raw.__setitem__(site, out)):
        adapter.forward(model, batch)
    stage = model.audio_model.audio_encoder.layers[0]
    x = raw["embed"]
    for b, layer in enumerate(stage.blocks):
        assert int(layer.shift_size) == (2 if b else 0)
        attn = unwindow(raw[names["attention"][b]], layer, 16, 16)
        with torch.no_grad():
            h = x + attn
            ffn_pre = layer.intermediate.dense(layer.layernorm_after(h))
            torch.testing.assert_close(raw[names["ffn_pre"][b]], ffn_pre)
            out = unwrap(raw[names["block"][b]])
            torch.testing.assert_close(
                out, h + layer.output(layer.intermediate(layer.layernorm_after(h)))
            )
            torch.testing.assert_close(out, layer(x, (16, 16))[0])
        x = out
    # frames: tokens (h, w) of a 16 x 16 grid; rows 4k..4k+3 hold time chunk k
    frames = adapter.frames(kinds["ffn"][names["ffn"][1]], raw[names["ffn_pre"][1]], batch)
    grid = stage.blocks[1].intermediate.intermediate_act_fn(ffn_pre)[0].reshape(16, 16, 32)
    assert frames.shape == (1, 64, 32)
    for k, w in [(0, 0), (1, 5), (3, 15)]:
        torch.testing.assert_close(frames[0, k * 16 + w], grid[4 * k : 4 * k + 4, w].mean(0))
    attn_frames = adapter.frames(
        kinds["attention"][names["attention"][1]], raw[names["attention"][1]], batch
    )
    torch.testing.assert_close(attn_frames[0, 16 + 5], attn[0].reshape(16, 16, 8)[4:8, 5].mean(0))


def test_valid_columns_exclude_zero_tail(loaded):
    adapter, model = loaded
    clips = _clips(0.3, 1.0, 2.5)
    batch = adapter.prepare(clips)
    assert batch.extra["real_samples"].tolist() == [43200, 48000, 48000]  # 3 whole repeats
    assert batch.inputs["input_features"].shape == (3, 1, 101, 16)
    assert not batch.inputs["is_longer"].any()
    names = list(adapter.sites(model))
    sites = adapter.resolve_layers(model, [names[0], names[2]])
    raw = _capture(model, sites, batch, adapter)
    for site, n_cols in zip(sites, (64, 32), strict=True):
        frames = adapter.frames(site, raw[site.name], batch)
        assert frames.shape[:2] == (3, n_cols)
        valid = adapter.valid_frames(site, batch, n_cols)
        # a column is valid when its last mel column is centred by 900 ms
        span = site.hop_ms / COL_MS
        expect = int(np.floor((900 / COL_MS + 1) / span))
        assert valid.sum(1).tolist() == [expect, n_cols, n_cols]
        assert expect < n_cols
        values, _ = pool(frames, valid, "mean")
        torch.testing.assert_close(values[0], frames[0, :expect].mean(0))


def test_batching_does_not_change_a_clip(loaded):
    adapter, model = loaded
    assert adapter.padding_safe
    short, long = _clips(0.4, 1.0)
    site = adapter.resolve_layers(model, None)[-1]
    out = []
    for clips in ([short], [short, long]):
        batch = adapter.prepare(clips)
        frames = adapter.frames(site, _capture(model, [site], batch, adapter)[site.name], batch)
        out.append(pool(frames, adapter.valid_frames(site, batch, frames.shape[1]), "max")[0][0])
    torch.testing.assert_close(out[0], out[1], atol=1e-5, rtol=1e-5)


def test_laion_checkpoint_round_trip(loaded, tmp_path):
    adapter, model = loaded
    hf_state = model.state_dict()
    laion = hf_to_laion(hf_state)
    assert "audio_branch.layers.0.blocks.1.attn.qkv.weight" in laion
    assert "audio_branch.layers.0.blocks.1.attn.proj.weight" in laion
    assert "audio_branch.layers.0.blocks.1.mlp.fc2.bias" in laion
    assert "audio_branch.bn0.running_mean" in laion and "audio_projection.2.weight" in laion
    assert not any("query" in k or "layernorm" in k or "audio_model" in k for k in laion)
    assert laion["audio_branch.layers.0.blocks.1.attn.qkv.weight"].shape == (24, 8)
    back = laion_to_hf(laion)
    assert back.keys() == hf_state.keys()
    for k, v in hf_state.items():
        assert torch.equal(back[k], v), k

    # what a laion-clap training checkpoint also holds: DDP prefix, text tower, front end, masks
    extra = {
        "audio_branch.spectrogram_extractor.stft.conv_real.weight": torch.zeros(3),
        "audio_branch.logmel_extractor.melW": torch.zeros(3),
        "audio_branch.layers.0.blocks.1.attn_mask": torch.zeros(3),
        "text_branch.embeddings.word_embeddings.weight": torch.zeros(3),
        "logit_scale_a": torch.zeros(()),
    }
    state = {f"module.{k}": v for k, v in {**laion, **extra}.items()}
    path = tmp_path / "630k-tiny.pt"
    torch.save({"epoch": 3, "state_dict": state}, path)
    other = ClapAdapter(source=str(path), config=adapter.source)
    reloaded = other.load()
    for k, v in hf_state.items():
        assert torch.equal(reloaded.state_dict()[k], v), k
    batch = adapter.prepare(_clips(0.6))
    with torch.no_grad():
        a, b = model(**batch.inputs).audio_embeds, reloaded(**other.prepare(_clips(0.6)).inputs)
    torch.testing.assert_close(b.audio_embeds, a)

    # strict: a missing audio weight is an error, not a silent random init
    del state["module.audio_branch.layers.1.blocks.0.mlp.fc1.weight"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError, match="intermediate.dense.weight"):
        ClapAdapter(source=str(path), config=adapter.source).load()


def test_missing_weights_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        ClapAdapter(source="nobody-xyz/no-such-clap").load()
    assert "nobody-xyz/no-such-clap" in str(err.value) and "local path" in str(err.value)


def _laion_htsat_module():
    """laion-clap's own ``clap_module/htsat.py``, imported without the package ``__init__``
    (which builds text tokenizers that download at import). Its ``utils`` imports h5py and
    torchvision for training-only helpers: they are stubbed for the import, then removed."""
    import importlib
    import importlib.util
    import sys
    import types
    from pathlib import Path

    spec = importlib.util.find_spec("laion_clap")
    if spec is None or importlib.util.find_spec("torchlibrosa") is None:
        pytest.skip("laion-clap / torchlibrosa not installed (the test extra installs them)")
    root = Path(spec.origin).parent / "clap_module"
    pkg = types.ModuleType("_laion_clap_module")
    pkg.__path__ = [str(root)]
    misc = types.ModuleType("torchvision.ops.misc")
    misc.FrozenBatchNorm2d = torch.nn.BatchNorm2d
    stubs = {"h5py": types.ModuleType("h5py"), "torchvision": types.ModuleType("torchvision"),
             "torchvision.ops": types.ModuleType("torchvision.ops"),
             "torchvision.ops.misc": misc}
    stubs = {k: v for k, v in stubs.items() if importlib.util.find_spec(k.split(".")[0]) is None}
    sys.modules.update({"_laion_clap_module": pkg, **stubs})
    try:
        return importlib.import_module("_laion_clap_module.htsat"), root
    finally:
        for k in stubs:
            sys.modules.pop(k, None)


def test_laion_checkpoint_without_preprocessor_config_uses_laions_front_end(tmp_path):
    """A laion .pt with an architecture-only config dir: the fallback feature extractor must be
    laion's HTSAT log-mel (fmin 50 Hz, fmax 14 kHz); HF's default fmin 0 is up to 19.6 dB off.
    """
    import json
    import types

    htsat, root = _laion_htsat_module()
    audio_cfg = json.loads((root / "model_configs" / "HTSAT-tiny.json").read_text())["audio_cfg"]
    config_dir = tmp_path / "arch"  # config.json only: no preprocessor_config.json
    torch.manual_seed(0)
    config = transformers.ClapConfig(audio_config={**AUDIO, "num_mel_bins": 64},
                                     text_config=TEXT, projection_dim=8)
    model = transformers.ClapModel(config)
    model.save_pretrained(config_dir)
    pt = tmp_path / "laion.pt"
    audio = ClapAdapter(source=str(config_dir))
    torch.save({"state_dict": hf_to_laion(audio.load().state_dict())}, pt)
    adapter = ClapAdapter(source=str(pt), config=str(config_dir))
    adapter.load()
    assert (adapter.fe.frequency_min, adapter.fe.frequency_max) == (50, 14000)

    ref_model = htsat.HTSAT_Swin_Transformer(
        spec_size=64, patch_size=4, patch_stride=(4, 4), num_classes=5, embed_dim=8,
        depths=[2, 2], num_heads=[2, 2], window_size=4,
        config=types.SimpleNamespace(**audio_cfg)).eval()
    wave = (0.1 * np.random.default_rng(0).standard_normal(480000)).astype(np.float32)  # 10 s
    with torch.no_grad():
        spec = ref_model.spectrogram_extractor(torch.from_numpy(wave)[None])
        ref = ref_model.logmel_extractor(spec)
    ours = adapter.prepare([wave]).inputs["input_features"]
    assert ours.shape == ref.shape == (1, 1, 1001, 64)
    gap = (ours - ref).abs().max().item()
    print(f"log-mel max abs difference vs laion-clap's front end: {gap:.2e} dB")
    assert gap < 1e-3
