"""The recorder against brute force: toy models, windows, merges, and a real CREPE run."""

import numpy as np
import pytest
import torch
from torch import nn

from dissect.models.generic import GenericAdapter
from dissect.recording.recorder import record


@pytest.fixture
def toy_adapter(frame_toy):
    return lambda **kw: GenericAdapter(module=frame_toy(), layers=["proj"], sample_rate=1000,
                                       **kw)


def brute(model, waves, reduction):
    """Each clip alone, its full frames pooled: [N, 5] and peak frame times in ms."""
    vals, peaks = [], []
    with torch.no_grad():
        for w in waves:
            f = model.proj(torch.tensor(w[: len(w) - len(w) % 100]).reshape(1, -1, 100))[0]
            vals.append(f.mean(0) if reduction == "mean" else f.max(0).values)
            peaks.append(f.argmax(0).double() * 100 + 50)
    return torch.stack(vals).numpy(), torch.stack(peaks).numpy()


def brute_topk(v, k, largest):
    order = np.argsort(-v if largest else v, axis=0, kind="stable")[:k]
    return order, np.take_along_axis(v, order, 0)


@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_toy_record_matches_brute_force(toy_adapter, reduction):
    rng = np.random.default_rng(0)
    # lengths are multiples of 100 samples so the proportional valid-frame rule is exact
    waves = [rng.normal(size=100 * rng.integers(1, 9)).astype(np.float32) for _ in range(57)]
    adapter = toy_adapter()
    model = adapter.load()
    sites = adapter.resolve_layers(model, None)
    assert [(s.name, s.units, s.hop_ms) for s in sites] == [("proj", 5, 100.0)]
    res = record(adapter, model, enumerate(waves), sites, reduction=reduction, k=4,
                 batch_size=6, dense_rows=len(waves), progress=False)
    st = res.layers["proj"]
    ref, ref_peak = brute(model, waves, reduction)
    order, top = brute_topk(ref, 4, True)
    np.testing.assert_array_equal(st.top.index.numpy(), order)
    np.testing.assert_allclose(st.top.values.numpy(), top, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st.top.peak_ms.numpy(), np.take_along_axis(ref_peak, order, 0))
    border, bottom = brute_topk(ref, 4, False)
    np.testing.assert_array_equal(st.bottom.index.numpy(), border)
    np.testing.assert_allclose(st.moments.mean.numpy(), ref.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st.moments.std.numpy(), ref.std(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(st.dense.float().numpy(), ref, rtol=2e-3, atol=2e-3)
    assert res.n_clips == 57


def test_record_halves_merge_to_one_pass(toy_adapter):
    rng = np.random.default_rng(1)
    waves = [rng.normal(size=100 * rng.integers(1, 6)).astype(np.float32) for _ in range(40)]
    adapter = toy_adapter()
    model = adapter.load()
    sites = adapter.resolve_layers(model, ["proj"])
    run = lambda items: record(adapter, model, items, sites, k=5, batch_size=4, dense_rows=40,
                               progress=False).layers["proj"]
    whole = run(enumerate(waves))
    a = run(list(enumerate(waves))[:17])
    b = run(list(enumerate(waves))[17:])
    m = a.merge(b)
    for name in ("top", "bottom"):
        assert torch.equal(getattr(m, name).index, getattr(whole, name).index)
        assert torch.equal(getattr(m, name).values, getattr(whole, name).values)
    assert torch.equal(m.hist.counts, whole.hist.counts)
    assert torch.equal(m.dense, whole.dense)
    torch.testing.assert_close(m.moments.mean, whole.moments.mean)
    torch.testing.assert_close(m.moments.m2, whole.moments.m2)


def test_windows_pool_over_all_windows_with_offsets(toy_adapter):
    rng = np.random.default_rng(2)
    long = rng.normal(size=2500).astype(np.float32)  # 2.5 s at 1 kHz
    short = rng.normal(size=700).astype(np.float32)
    adapter = toy_adapter()
    model = adapter.load()
    sites = adapter.resolve_layers(model, None)
    res = record(adapter, model, enumerate([long, short]), sites, reduction="max", k=2,
                 batch_size=8, windows=(1.0, 1.0), progress=False)
    st = res.layers["proj"]
    # windows of 1 s: [0,1000), [1000,2000), [2000,2500): 10 + 10 + 5 frames = the whole clip
    ref, ref_peak = brute(model, [long, short], "max")
    got = {int(i): (v, p) for i, v, p in zip(st.top.index[:, 0], st.top.values[:, 0],
                                               st.top.peak_ms[:, 0], strict=True)}
    for i in got:
        assert got[i][0] == pytest.approx(ref[i, 0], rel=1e-5)
        assert got[i][1] == pytest.approx(ref_peak[i, 0])


def test_equal_length_batching_when_not_padding_safe(toy_adapter):
    adapter = toy_adapter(padding_safe=False)
    model = adapter.load()
    sites = adapter.resolve_layers(model, None)  # its dry run is not part of the recording
    seen = []
    orig = adapter.prepare
    adapter.prepare = lambda w: seen.append([len(x) for x in w]) or orig(w)
    waves = [np.ones(n, np.float32) for n in (200, 200, 300, 300, 300, 200)]
    record(adapter, model, enumerate(waves), sites, batch_size=2, progress=False)
    assert seen == [[200, 200], [300, 300], [300], [200]]


def test_non_finite_activation_is_an_error():
    class Bad(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 2, 3), float("nan"))

    adapter = GenericAdapter(module=Bad(), layers=[""], sample_rate=1000)
    # the root module ("") is a valid dotted name for get_submodule
    model = adapter.load()
    with pytest.raises(FloatingPointError, match="non-finite"):
        record(adapter, model, enumerate([np.ones(300, np.float32)]),
               adapter.resolve_layers(model, None), progress=False)


@pytest.mark.real
def test_real_crepe_streaming_equals_brute_force():
    from dissect.models import get_adapter

    adapter = get_adapter("crepe", source="tiny", hop_ms=40)
    model = adapter.load()
    sites = adapter.resolve_layers(model, ["conv2", "classifier"])
    sr = 16000
    rng = np.random.default_rng(3)
    waves = []
    for i in range(14):
        n = int(sr * rng.uniform(0.3, 1.2))
        t = np.arange(n) / sr
        f0 = 110 * 2 ** (i / 4)
        waves.append((0.4 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.normal(size=n))
                     .astype(np.float32))
    res = record(adapter, model, enumerate(waves), sites, reduction="mean", k=3, batch_size=5,
                 progress=False)
    # brute force: each clip alone, hooks by hand, mean over all its frames
    for site in sites:
        ref = []
        for w in waves:
            out = {}
            h = model.get_submodule(site.module).register_forward_hook(
                lambda m, i, o, out=out: out.__setitem__("o", o))
            with torch.no_grad():
                model(adapter.prepare([w]).inputs["frames"])
            h.remove()
            o = out["o"]
            ref.append((o.mean(dim=(2, 3)) if o.dim() == 4 else o).mean(0))
        ref = torch.stack(ref).numpy()
        st = res.layers[site.name]
        order, top = brute_topk(ref, 3, True)
        np.testing.assert_array_equal(st.top.index.numpy(), order)
        np.testing.assert_allclose(st.top.values.numpy(), top, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(st.bottom.index.numpy(), brute_topk(ref, 3, False)[0])
        np.testing.assert_allclose(st.moments.mean.numpy(), ref.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(st.moments.std.numpy(), ref.std(0), rtol=1e-3, atol=1e-5)


def test_stats_and_activation_files_are_byte_identical_across_processes(tmp_path):
    """safetensors writes a metadata mapping in a per-process hash-map order: two processes
    saving the same layer must still write the same bytes (one canonical metadata key)."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from pathlib import Path\n"
        "from dissect.models.base import Site\n"
        "from dissect.recording.recorder import LayerState\n"
        "from dissect.recording.store import save_layer\n"
        "st = LayerState(Site('conv1', 'conv1', 4, 'conv', 10.0, 0.0), 3, 0.01)\n"
        "st.dense = torch.arange(8, dtype=torch.float16).reshape(2, 4)\n"
        "save_layer(Path(sys.argv[1]), st, 'mean')\n")
    digests = []
    for i in range(3):
        d = tmp_path / f"run{i}"
        subprocess.run([sys.executable, "-c", code, str(d)], check=True)
        digests.append(sorted((p.relative_to(d).as_posix(), p.read_bytes())
                              for p in d.rglob("*.safetensors")))
    assert len(digests[0]) == 2
    assert digests[0] == digests[1] == digests[2]
    from dissect.recording.store import load_layer, stats_path

    state, reduction = load_layer(stats_path(tmp_path / "run0", "conv1"))
    assert reduction == "mean" and state.site.units == 4 and state.k == 3
