"""Reading and editing a model from Python (issue 27): ``Model.hooks``, ``Model.run_with_cache``,
``dissect.ablated`` and ``dissect.steered``, all on the one hook path. References are brute
force: pruned weights (:func:`~dissect.pruning.ablate.apply_masks`), the raw-channel zeroing the
pipeline uses (:func:`~dissect.pruning.ablate.zeroed`), and a linear head's ``W @ d``."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import torch
from torch import nn

import dissect
from dissect.models.base import LayerNameError
from dissect.pruning.ablate import apply_masks, export_masks, zeroed

SR = 16000


def _tones(pairs):
    """``(Hz, samples)`` -> sine tones at 16 kHz (different lengths: the batch is padded)."""
    return [(0.4 * np.sin(2 * np.pi * f * np.arange(n) / SR)).astype(np.float32)
            for f, n in pairs]


def _hook_count(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in module.modules())


@pytest.fixture(scope="module")
def crepe():
    return dissect.load("crepe_tiny", device="cpu")


@pytest.fixture(scope="module")
def waves():
    return _tones([(220.0, 8000), (440.0, 5600), (880.0, 7200)])


class Head(nn.Module):
    """``[B, 100]`` -> Linear(100, 6) -> tanh -> Linear(6, 4) (layer ``pen``) -> Linear(4, 3)
    (the head ``out``, logits); seeded."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.inp = nn.Linear(100, 6)
        self.pen = nn.Linear(6, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(self.pen(torch.tanh(self.inp(x))))


@pytest.fixture(scope="module")
def head():
    return dissect.load(Head(), layers=["pen", "out"], sample_rate=100, device="cpu")


def _head_clips(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(100).astype(np.float32) * 0.5 for _ in range(n)]


def test_run_with_cache_equals_forward(crepe, waves, frame_toy):
    out = dissect.forward(crepe, waves, ["conv6", "classifier"], sample_rate=SR)
    logits, cache = crepe.run_with_cache(waves, ["conv6", "classifier"], sample_rate=SR)
    assert set(cache) == {"conv6", "classifier"}
    assert torch.equal(logits, out["logits"])
    for layer in cache:
        assert torch.equal(cache[layer], out[layer])
    # [B, T, U]: CREPE tiny's conv6 has 64 channels, frames every 40 ms (clips of 0.35-0.5 s)
    assert cache["conv6"].shape[0] == 3 and cache["conv6"].shape[2] == 64
    toy = dissect.load(frame_toy(), layers=["proj"], sample_rate=1000, device="cpu")
    x = np.linspace(-1, 1, 300, dtype=np.float32)
    _, c = toy.run_with_cache([x], ["proj"], sample_rate=1000)
    with torch.no_grad():  # brute force: the Linear on the three 100-sample frames
        ref = toy.module.proj(torch.from_numpy(x).reshape(1, 3, 100))
    torch.testing.assert_close(c["proj"], ref)


def test_hook_sees_the_recorders_frames(crepe, waves):
    seen = {}

    def look(frames, layer):
        seen[layer] = frames.clone()

    with crepe.hooks(look, layers=["conv6"]) as m:
        assert m is crepe
        _, cache = crepe.run_with_cache(waves, ["conv6"], sample_rate=SR)
    # the cache zeroes padding frames; the hook saw them as the recorder does, before masking
    valid = cache["conv6"].abs().sum(-1) > 0
    assert seen["conv6"].shape == cache["conv6"].shape
    torch.testing.assert_close(seen["conv6"][valid], cache["conv6"][valid])
    assert _hook_count(crepe.module) == 0


def test_zeroing_hook_equals_ablated_steered_zero_and_pruned_weights(crepe, waves):
    """A hook that zeroes units' frames, ``ablated``, ``steered`` with scale 0, the pipeline's
    raw-channel zeroing and pruned weights give the same logits (conv sites pool several
    positions per frame: zeroing the frame zeroes all of them)."""
    neurons = [("conv3", 5), ("conv6", 3), ("conv6", 7), ("classifier", 200)]
    units = {"conv3": [5], "conv6": [3, 7], "classifier": [200]}
    base, _ = crepe.run_with_cache(waves, sample_rate=SR)

    def zero(frames, layer):
        out = frames.clone()
        out[..., units[layer]] = 0
        return out

    with crepe.hooks({layer: zero for layer in units}):
        hooked, cache = crepe.run_with_cache(waves, ["conv6"], sample_rate=SR)
    with dissect.ablated(crepe, neurons) as groups:
        abl, _ = crepe.run_with_cache(waves, sample_rate=SR)
    with dissect.steered(crepe, {n: 0.0 for n in neurons}):
        st0, _ = crepe.run_with_cache(waves, sample_rate=SR)
    with zeroed(crepe.module, crepe.adapter, neurons):
        raw, _ = crepe.run_with_cache(waves, sample_rate=SR)
    pruned = dissect.Model(crepe.adapter, apply_masks(copy.deepcopy(crepe.module), crepe.adapter,
                                                      export_masks(neurons, crepe.sites())),
                           crepe.device)
    ref, _ = pruned.run_with_cache(waves, sample_rate=SR)
    assert groups == units
    assert float(cache["conv6"][..., [3, 7]].abs().max()) == 0.0
    assert not torch.equal(hooked, base)
    for got in (hooked, abl, st0, raw):
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
    after, _ = crepe.run_with_cache(waves, sample_rate=SR)
    assert torch.equal(after, base) and _hook_count(crepe.module) == 0


def test_scale_on_a_pooled_conv_site_scales_its_frames(crepe, waves):
    """conv6's frame is the mean of 4 positions: scale 2 doubles it exactly, other units and
    the padding frames are left as they are."""
    _, base = crepe.run_with_cache(waves, ["conv6"], sample_rate=SR)
    with dissect.steered(crepe, {("conv6", 3): 2.0, ("conv6", 9): -0.5}) as layers:
        _, got = crepe.run_with_cache(waves, ["conv6"], sample_rate=SR)
    assert layers == ["conv6"]
    want = base["conv6"].clone()
    want[..., 3] *= 2.0
    want[..., 9] *= -0.5
    torch.testing.assert_close(got["conv6"], want, rtol=1e-5, atol=1e-6)


def test_direction_changes_logits_by_W_d(head):
    """Adding ``alpha * d`` to the penultimate layer of a linear head changes the logits by
    exactly ``alpha * W @ d``; scaling a unit by ``s`` by ``(s - 1) * h_u * W[:, u]``."""
    clips = _head_clips()
    base, cache = head.run_with_cache(clips, ["pen"], sample_rate=100)
    W = head.module.out.weight.detach()
    d = torch.tensor([0.3, -1.2, 0.7, 2.0])
    with dissect.steered(head, direction={"pen": d.numpy()}, alpha=1.5):
        got, _ = head.run_with_cache(clips, sample_rate=100)
    torch.testing.assert_close(got - base, (1.5 * W @ d).expand(3, 3), rtol=1e-5, atol=1e-5)
    with head.hooks(lambda frames, layer: frames + d, layers="pen"):
        got2, _ = head.run_with_cache(clips, sample_rate=100)
    torch.testing.assert_close(got2 - base, (W @ d).expand(3, 3), rtol=1e-5, atol=1e-5)
    h = cache["pen"][:, 0, :]  # [B, 4]: one frame per clip
    with dissect.steered(head, {("pen", 2): 3.0}):
        got3, _ = head.run_with_cache(clips, sample_rate=100)
    torch.testing.assert_close(got3 - base, 2.0 * h[:, 2:3] * W[:, 2][None, :],
                               rtol=1e-5, atol=1e-5)
    with dissect.ablated(head, [("out", 1)]):
        abl, _ = head.run_with_cache(clips, sample_rate=100)
    want = base.clone()
    want[:, 1] = 0
    torch.testing.assert_close(abl, want, rtol=0, atol=0)


def test_hooks_are_removed_after_the_block_and_after_an_exception(head):
    clips = _head_clips()
    base, _ = head.run_with_cache(clips, sample_rate=100)
    with pytest.raises(RuntimeError, match="boom"), head.hooks(
            lambda f, layer: f * 0 + 1, layers=["pen"]):
        inside, _ = head.run_with_cache(clips, sample_rate=100)
        assert not torch.equal(inside, base)
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"), dissect.steered(
            head, direction={"pen": np.ones(4)}):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"), dissect.ablated(head, [("pen", 0)]):
        raise RuntimeError("boom")
    assert _hook_count(head.module) == 0
    after, _ = head.run_with_cache(clips, sample_rate=100)
    assert torch.equal(after, base)


def test_hook_errors_name_the_problem(head):
    clips = _head_clips()
    with pytest.raises(TypeError, match="needs layers="):
        head.hooks(lambda f, layer: None).__enter__()
    with pytest.raises(LayerNameError, match="unknown layer.*nope"), head.hooks(
            {"nope": lambda f, layer: None}):
        pass
    with pytest.raises(ValueError, match=r"shape \[3, 1, 2\], want \[3, 1, 4\]"), head.hooks(
            lambda f, layer: f[..., :2], layers=["pen"]):
        head.run_with_cache(clips, sample_rate=100)
    with pytest.raises(ValueError, match=r"direction for 'pen' must be a finite vector \[4\]"):
        dissect.steered(head, direction={"pen": np.ones(3)}).__enter__()
    with pytest.raises(IndexError, match="out of range"):
        dissect.steered(head, {("pen", 4): 2.0}).__enter__()
    with pytest.raises(KeyError, match="unknown layer 'nope'"):
        dissect.ablated(head, [("nope", 0)]).__enter__()
    assert _hook_count(head.module) == 0


def test_whisper_ffn_and_block_sites_match_the_raw_path(tmp_path):
    """Whisper (tiny, random) crops the padded tail of its 30 s encoder off the frames and its
    ``ffn`` neurons are GELU(fc1): zeroing frames still zeroes the whole unit (tail included)
    as the pipeline's raw-channel zeroing does; a non-zero edit of an ``ffn`` neuron is
    refused; a direction on a block moves its frames by exactly ``alpha * d``."""
    from dissect.models.tiny import save_tiny

    src = save_tiny("whisper", tmp_path / "w")
    waves = _tones([(220.0, 16000), (440.0, 7000)])
    for site in ("ffn", "block"):
        m = dissect.load("whisper", source=src, site=site, device="cpu")
        first, last = m.default_layers()[0], m.default_layers()[-1]
        neurons = [(first, 1), (first, 5), (last, 0)]
        with dissect.ablated(m, neurons):
            got = dissect.forward(m, waves, [last], sample_rate=SR)[last]
        with zeroed(m.module, m.adapter, neurons):
            ref = dissect.forward(m, waves, [last], sample_rate=SR)[last]
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
        if site == "ffn":
            with pytest.raises(NotImplementedError, match="only scale 0"):
                dissect.steered(m, {(first, 1): 2.0}).__enter__()
            with pytest.raises(NotImplementedError, match="activation"), m.hooks(
                    lambda f, layer: f + 1, layers=[first]):
                dissect.forward(m, waves, [], sample_rate=SR)
        else:
            d = np.linspace(-1, 1, m.sites()[first].units).astype(np.float32)
            base = dissect.forward(m, waves, [first], sample_rate=SR)[first]
            with dissect.steered(m, direction={first: d}, alpha=0.5):
                moved = dissect.forward(m, waves, [first], sample_rate=SR)[first]
            valid = base.abs().sum(-1) > 0
            torch.testing.assert_close((moved - base)[valid],
                                       torch.from_numpy(0.5 * d).expand(int(valid.sum()), -1),
                                       rtol=1e-5, atol=1e-5)
        assert _hook_count(m.module) == 0


def test_one_signature_per_name():
    import dissect.pruning

    for name in ("ablated", "steered"):
        api_fn, lib_fn = getattr(dissect, name), getattr(dissect.pruning, name)
        assert inspect.signature(api_fn).parameters.keys() == \
            inspect.signature(lib_fn).parameters.keys()
    assert list(inspect.signature(dissect.ablated).parameters) == ["model", "neurons"]
    assert list(inspect.signature(dissect.steered).parameters) == [
        "model", "scales", "direction", "alpha"]
