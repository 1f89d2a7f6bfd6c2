"""AST adapter on tiny random checkpoints (offline): fbank, token grid, valid columns, head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from dissect.models.ast import ASTAdapter, patch_grid
from dissect.models.base import LayerNameError, WeightsUnavailableError, unwrap
from dissect.models.registry import _REGISTRY, get_adapter
from dissect.recording.hooks import hooks, run_sites
from dissect.recording.pooling import pool

HIDDEN, FFN, LAYERS = 32, 48, 2
LABELS = ["dog", "rain", "church_bells"]
F_DIM, T_DIM = 12, 101  # (128 - 16) // 10 + 1, (1024 - 16) // 10 + 1


def _config(**kw):
    return transformers.ASTConfig(
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=FFN,
        max_length=1024,
        num_mel_bins=128,
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
        **kw,
    )


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ast") / "head"
    transformers.ASTForAudioClassification(_config()).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def loaded(ckpt):
    adapter = ASTAdapter(source=ckpt)
    return adapter, adapter.load()


def _signal(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    chirp = 0.4 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    return (chirp + 0.05 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)


def _capture(adapter, model, sites, batch):
    raw = {}
    with (
        torch.no_grad(),
        hooks(
            model, {s.name: s.module for s in sites}, lambda out, site: raw.__setitem__(site, out)
        ),
    ):
        logits = adapter.forward(model, batch)
    return raw, logits


def test_registered():
    assert _REGISTRY["ast"] is ASTAdapter
    assert ASTAdapter.default_source == "Evan-Lin/ast-esc50"


def test_fbank_matches_feature_extractor(loaded):
    adapter, _ = loaded
    clips = [_signal(1.5), _signal(12.0)]  # padded and cropped
    got = adapter.prepare(clips).inputs["input_values"]
    ref = transformers.ASTFeatureExtractor()(clips, sampling_rate=16000, return_tensors="pt")
    assert got.shape == (2, 1024, 128)
    torch.testing.assert_close(got, ref["input_values"], atol=1e-5, rtol=0)


def test_feature_extractor_config_overrides_stats(ckpt, tmp_path):
    path = tmp_path / "custom"
    transformers.ASTForAudioClassification(_config()).save_pretrained(path)
    transformers.ASTFeatureExtractor(mean=1.0, std=0.5).save_pretrained(path)
    adapter = ASTAdapter(source=str(path))
    adapter.load()
    clip = _signal(1.0)
    ref = transformers.ASTFeatureExtractor(mean=1.0, std=0.5)(
        clip, sampling_rate=16000, return_tensors="pt"
    )["input_values"]
    torch.testing.assert_close(
        adapter.prepare([clip]).inputs["input_values"], ref, atol=1e-5, rtol=0
    )


def test_sites_and_units(loaded):
    adapter, model = loaded
    assert patch_grid(model.config) == (F_DIM, T_DIM)
    for kind, units in [("ffn", FFN), ("ffn_pre", FFN), ("attention", HIDDEN), ("block", HIDDEN)]:
        sites = ASTAdapter(site_kind=kind).sites(model)
        assert len(sites) == LAYERS + 1
        head = sites.pop("classifier.dense")
        assert (head.kind, head.units) == ("output", len(LABELS))
        for s in sites.values():
            assert s.name.startswith("audio_spectrogram_transformer.")
            assert (s.kind, s.units) == (kind, units)
            assert s.hop_ms == 100.0 and s.offset_ms == 87.5  # 10 ms x stride 10; 12.5 + 75 ms
            model.get_submodule(s.module)


def test_bad_layer_name_lists_valid(loaded):
    adapter, model = loaded
    with pytest.raises(LayerNameError) as err:
        adapter.resolve_layers(model, ["encoder.layer.0.intermediate.dense.typo"])
    assert "classifier.dense" in str(err.value)
    assert list(adapter.sites(model))[0] in str(err.value)


def test_head_names_and_logits(loaded):
    adapter, model = loaded
    assert adapter.class_names(model) == LABELS
    assert adapter.head_layer(model) == "classifier.dense"
    batch = adapter.prepare([_signal(1.0), _signal(3.0)])
    head = adapter.resolve_layers(model, ["classifier.dense"])[0]
    raw, logits = _capture(adapter, model, [head], batch)
    assert logits.shape == (2, len(LABELS))
    with torch.no_grad():
        torch.testing.assert_close(logits, model(**batch.inputs).logits)
    frames = adapter.frames(head, raw[head.name], batch)
    torch.testing.assert_close(frames, logits[:, None, :])
    assert adapter.valid_frames(head, batch, 1).all()


def test_capture_equals_direct_and_columns(loaded):
    adapter, model = loaded
    if not hasattr(model.audio_spectrogram_transformer.layers[1], "mlp"):
        pytest.skip("older transformers AST layout")
    kinds = {k: ASTAdapter(site_kind=k).sites(model) for k in ("ffn", "attention", "block")}
    name = {k: list(v)[1] for k, v in kinds.items()}  # layer 1
    block0 = list(kinds["block"])[0]
    sites = [
        kinds["attention"][name["attention"]],
        kinds["ffn"][name["ffn"]],
        kinds["block"][name["block"]],
        kinds["block"][block0],
    ]
    batch = adapter.prepare([_signal(2.0)])
    raw, _ = _capture(adapter, model, sites, batch)
    layer = model.audio_spectrogram_transformer.layers[1]
    x = unwrap(raw[block0])
    with torch.no_grad():
        torch.testing.assert_close(unwrap(raw[name["block"]]), layer(x))
        h = x + raw[name["attention"]]
        ffn_pre = layer.mlp.fc1(layer.layernorm_after(h))
        torch.testing.assert_close(raw[name["ffn"]], ffn_pre)
        torch.testing.assert_close(
            unwrap(raw[name["block"]]), h + layer.mlp(layer.layernorm_after(h))
        )
    # frames: drop CLS/DIST, average the 12 frequency patches of each of the 101 time columns
    ffn = adapter.frames(kinds["ffn"][name["ffn"]], raw[name["ffn"]], batch)
    act = layer.mlp.activation_fn(ffn_pre)[0, 2:]
    assert ffn.shape == (1, T_DIM, FFN)
    for t in (0, 7, 100):
        expected = torch.stack([act[f * T_DIM + t] for f in range(F_DIM)]).mean(0)
        torch.testing.assert_close(ffn[0, t], expected)


def test_valid_columns_exclude_padding(loaded):
    adapter, model = loaded
    # 1 s -> 1 + (16000 - 400) // 160 = 98 real fbank frames; a column spans frames
    # [10 j, 10 j + 16), so columns j = 0..8 are real: 9 of 101.
    clips = [_signal(1.0), _signal(10.24), _signal(20.0), np.zeros(100, np.float32)]
    batch = adapter.prepare(clips)
    assert batch.extra["fbank_frames"].tolist() == [98, 1022, 1024, 1]
    site = adapter.resolve_layers(model, [list(adapter.sites(model))[0]])[0]
    raw, _ = _capture(adapter, model, [site], batch)
    frames = adapter.frames(site, raw[site.name], batch)
    assert frames.shape == (4, T_DIM, FFN)
    valid = adapter.valid_frames(site, batch, T_DIM)
    assert valid.sum(1).tolist() == [9, T_DIM, T_DIM, 1]
    assert valid[0, :9].all() and not valid[0, 9:].any()
    mean, _ = pool(frames, valid, "mean")
    torch.testing.assert_close(mean[0], frames[0, :9].mean(0))
    _, peak = pool(frames, valid, "max")
    assert int(peak[0].max()) <= 8
    times = site.frame_times_ms(T_DIM)
    assert times[8].item() == pytest.approx(887.5)  # centre of the last real column


def test_headless_checkpoint_falls_back_to_ast_model(tmp_path):
    path = tmp_path / "base"
    transformers.ASTModel(_config()).save_pretrained(path)
    adapter = ASTAdapter(source=str(path))
    model = adapter.load()
    assert isinstance(model, transformers.ASTModel)
    assert adapter.head_layer(model) is None and adapter.class_names(model) is None
    sites = adapter.sites(model)
    assert list(sites)[0] == "layers.0.mlp.fc1" or list(sites)[0].startswith("encoder.layer.0")
    assert all(s.kind == "ffn" for s in sites.values())
    assert adapter.forward(model, adapter.prepare([_signal(0.5)])) is None


def test_missing_weights_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        ASTAdapter(source="nobody-xyz/no-such-ast").load()
    assert "nobody-xyz/no-such-ast" in str(err.value) and "local path" in str(err.value)


# ----------------------------------------------------------------------------- model.site=and
def _and_paths(model, i):
    """The three Linears of block ``i`` that AND dissects, as (attention, intermediate, output)."""
    root = "audio_spectrogram_transformer"
    if hasattr(model.audio_spectrogram_transformer.layers[i], "mlp"):
        p = f"{root}.layers.{i}"
        return f"{p}.attention.o_proj", f"{p}.mlp.fc1", f"{p}.mlp.fc2"
    p = f"{root}.encoder.layer.{i}"
    return f"{p}.attention.output.dense", f"{p}.intermediate.dense", f"{p}.output.dense"


def test_and_sites_are_every_linear_of_every_block(loaded):
    _, model = loaded
    adapter = ASTAdapter(site_kind="and")
    sites = adapter.sites(model)
    expected = [p for i in range(LAYERS) for p in _and_paths(model, i)] + ["classifier.dense"]
    assert list(sites) == expected  # block order; attention, intermediate, output in a block
    assert [s.units for s in sites.values()] == [HIDDEN, FFN, HIDDEN] * LAYERS + [len(LABELS)]
    assert sum(s.units for s in sites.values()) == LAYERS * (HIDDEN + FFN + HIDDEN) + len(LABELS)
    for name, s in sites.items():
        assert s.module == name
        assert isinstance(model.get_submodule(name), torch.nn.Linear)
        if name != "classifier.dense":
            assert s.kind == "and" and (s.hop_ms, s.offset_ms) == (100.0, 87.5)
    assert sites["classifier.dense"].kind == "output"
    assert adapter.default_layers(model) == expected


def test_and_records_linear_outputs_before_gelu(loaded):
    _, model = loaded
    if not hasattr(model.audio_spectrogram_transformer.layers[1], "mlp"):
        pytest.skip("older transformers AST layout")
    adapter = ASTAdapter(site_kind="and")
    adapter.config = model.config
    attn, inter, out = _and_paths(model, 1)
    sites = adapter.resolve_layers(model, [attn, inter, out])
    layer = model.audio_spectrogram_transformer.layers[1]
    seen = {}
    modules = {"attn": layer.attention.o_proj, "inter": layer.mlp.fc1, "out": layer.mlp.fc2}
    handles = [m.register_forward_hook(lambda _m, i, o, k=k: seen.update({k: (i[0], o)}))
               for k, m in modules.items()]
    try:
        run = run_sites(adapter, model, [_signal(2.0), _signal(0.7)], sites)
    finally:
        for h in handles:
            h.remove()

    def columns(x):  # drop CLS/DIST, mean of the F_DIM frequency patches of each time column
        return x[:, 2:].reshape(x.shape[0], F_DIM, T_DIM, x.shape[-1]).mean(1)

    got = {"attn": run.sites[attn].frames, "inter": run.sites[inter].frames,
           "out": run.sites[out].frames}
    pre = seen["inter"][1]
    assert got["inter"].shape == (2, T_DIM, FFN) and got["attn"].shape == (2, T_DIM, HIDDEN)
    for k in ("attn", "inter", "out"):
        assert torch.allclose(got[k], columns(seen[k][1]), rtol=1e-6, atol=1e-6), k
    # fc2 reads GELU(fc1): the recorded fc1 is the tensor GELU is applied to, not its output
    torch.testing.assert_close(seen["out"][0], layer.mlp.activation_fn(pre))
    assert not torch.allclose(got["inter"], columns(layer.mlp.activation_fn(pre)), atol=1e-3)
    assert (got["inter"] < 0).any()  # pre-GELU values go below GELU's minimum (-0.17)
    valid = run.sites[inter].valid
    assert valid.sum(1).tolist() == [19, 6]  # 198 and 68 real fbank frames


def test_and_full_size_ast_has_55346_neurons():
    torch.manual_seed(0)
    model = transformers.ASTForAudioClassification(transformers.ASTConfig(num_labels=50))
    sites = ASTAdapter(site_kind="and").sites(model)
    assert len(sites) == 12 * 3 + 1
    assert sum(s.units for s in sites.values()) == 12 * (768 + 3072 + 768) + 50 == 55_346


@pytest.mark.parametrize("name", ["crepe", "whisper", "hubert", "clap", "yamnet"])
def test_and_refused_by_adapters_without_it(name):
    with pytest.raises(ValueError, match="site kind 'and'.*ffn, ffn_pre, attention, block"):
        get_adapter(name, site_kind="and")
