"""SAE latents as sites (``sae:<layer>``, :mod:`dissect.models.sae`): recorded latents are the
SAE encoder applied to the hooked output (brute force, numpy), and ablating / steering a latent
moves the hooked output by exactly its decoder contribution ``z_i * W_dec[i]``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dissect
import dissect.features as features
from dissect.models.base import LayerNameError
from dissect.models.sae import Sae

SR = 16000


def _tone(f: float, n: int) -> np.ndarray:
    return (0.4 * np.sin(2 * np.pi * f * np.arange(n) / SR)).astype(np.float32)


@pytest.fixture(scope="module")
def crepe():
    torch.set_num_threads(1)
    return dissect.load("crepe_tiny", device="cpu")


def _random_sae(d: int, n: int, k: int, seed: int = 0) -> Sae:
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(n, d, generator=g)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    return Sae("conv6", torch.randn(n, d, generator=g) / d**0.5, torch.randn(n, generator=g) * .1,
               W_dec, torch.randn(d, generator=g) * 0.1, k)


def _identity_sae(d: int) -> Sae:
    """Latents ``relu(x)`` and ``relu(-x)`` (k = d keeps them all): a perfect reconstruction."""
    eye = torch.eye(d)
    W = torch.cat([eye, -eye])
    return Sae("conv6", W.clone(), torch.zeros(2 * d), W.clone(), torch.zeros(d), d)


def _raw_conv6(crepe, wave):
    """conv6_BN's output for one clip, read by a plain forward hook: ``[T, C, H, 1]``."""
    got = []
    h = crepe.module.conv6_BN.register_forward_hook(lambda m, i, o: got.append(o.detach()))
    try:
        logits, _ = crepe.run_with_cache([wave], [], sample_rate=SR)
    finally:
        h.remove()
    return got[0].double(), logits


def _brute_encode(sae: Sae, x: np.ndarray) -> np.ndarray:
    """Dense TopK latents of frames ``x [T, D]``, one frame at a time in float64."""
    W, b, bd = (t.double().numpy() for t in (sae.W_enc, sae.b_enc, sae.b_dec))
    out = np.zeros((len(x), len(b)))
    for t, row in enumerate(x):
        pre = np.maximum(W @ (row - bd) + b, 0.0)
        top = np.argsort(-pre, kind="stable")[: sae.k]
        out[t, top] = pre[top]
    return out


def test_recorded_latents_are_the_encoder_of_the_hooked_output(crepe, tmp_path):
    sae = _random_sae(64, 256, 8)
    path = sae.save(tmp_path / "conv6.safetensors")
    site = features.attach(crepe, path)
    assert (site.name, site.units, site.kind) == ("sae:conv6", 256, "sae")
    waves = [_tone(220.0, 8000), _tone(523.0, 5600)]
    rec = dissect.record(crepe, waves, layers=["sae:conv6"], sample_rate=SR, progress=False)
    pooled = rec.activations("sae:conv6")  # [clips, 256] float16 store
    for i, w in enumerate(waves):
        raw, _ = _raw_conv6(crepe, w)
        x = raw.mean(dim=(2, 3)).numpy()  # CREPE's framing: mean over in-frame positions
        ref = _brute_encode(sae, x)
        _, cache = crepe.run_with_cache([w], ["sae:conv6"], sample_rate=SR)
        z = cache["sae:conv6"][0].double().numpy()
        assert z.shape == ref.shape
        np.testing.assert_allclose(z, ref, atol=2e-5)
        assert ((z > 0).sum(1) <= 8).all() and (z > 0).sum() > 0
        np.testing.assert_allclose(pooled[i], ref.mean(0), atol=2e-3, rtol=2e-3)


def test_ablating_a_latent_removes_exactly_its_decoder_contribution(crepe):
    sae = _random_sae(64, 256, 8, seed=3)
    features.attach(crepe, sae)
    w = np.concatenate([_tone(330.0, 4000), _tone(1200.0, 4000)])  # frames differ
    clean, logits = _raw_conv6(crepe, w)
    z = sae.encode(clean.float().mean(dim=(2, 3))).double()  # [T, 256]
    on = z > 0
    partial = on.any(0) & ~on.all(0)  # latents on in some frames only
    assert partial.any()
    i = int(torch.where(partial, z.sum(0), -1.0).argmax())
    contribution = z[:, i, None] * sae.W_dec[i].double()  # [T, 64]
    with dissect.ablated(crepe, [("sae:conv6", i)]):
        ablated, ab_logits = _raw_conv6(crepe, w)
    # every position of a frame moves by the frame's change (CREPE pools positions)
    np.testing.assert_allclose((ablated - clean).numpy(),
                               (-contribution)[:, :, None, None].expand_as(clean).numpy(),
                               atol=1e-5)
    assert float((ab_logits - logits).abs().max()) > 1e-4  # the model's output changed
    with dissect.steered(crepe, {("sae:conv6", i): 3.0}):
        steered, _ = _raw_conv6(crepe, w)
    np.testing.assert_allclose((steered - clean).numpy(),
                               (2 * contribution)[:, :, None, None].expand_as(clean).numpy(),
                               atol=1e-5)
    after, after_logits = _raw_conv6(crepe, w)  # hooks are gone
    assert torch.equal(after, clean) and torch.equal(after_logits, logits)


def test_identity_sae_splices_without_changing_the_model(crepe):
    sae = _identity_sae(64)
    out = features.splice(crepe.adapter, crepe.module, sae,
                          enumerate([_tone(220.0, 6400), _tone(880.0, 4800)]),
                          progress=False)
    assert out["clips"] == 2 and out["next_layer"] == "classifier"
    assert out["logit_mse"] < 1e-8 and out["top1_agreement"] == 1.0
    assert out["next_cosine"] == pytest.approx(1.0, abs=1e-6)
    bad = Sae("conv6", *(t * 0 for t in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)), 1)
    zero = features.splice(crepe.adapter, crepe.module, bad, enumerate([_tone(220.0, 6400)]),
                           progress=False)
    assert zero["logit_mse"] > 1e-3  # a useless SAE is seen


def test_bad_sae_files_are_refused_with_the_reason(crepe, tmp_path):
    wide = _random_sae(32, 64, 4)
    path = wide.save(tmp_path / "wide.safetensors")
    with pytest.raises(ValueError, match=r"wide\.safetensors.*d_in=32.*'conv6'.*64 units"):
        features.attach(crepe, path)
    other = Sae("conv9", *(t for t in (wide.W_enc, wide.b_enc, wide.W_dec, wide.b_dec)), 4)
    with pytest.raises(LayerNameError, match=r"conv9.*conv1, conv2"):
        features.attach(crepe, other)
    (tmp_path / "lone.safetensors").write_bytes(path.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"lone\.safetensors\.json"):
        features.attach(crepe, tmp_path / "lone.safetensors")
    with pytest.raises(LayerNameError, match=r"sae:conv5.*sae:conv6"):
        dissect.record(crepe, [_tone(220.0, 4000)], layers=["sae:conv5"], sample_rate=SR,
                       progress=False)


def test_sae_file_round_trip(tmp_path):
    sae = _random_sae(16, 48, 5)
    sae.info = {"provenance": {"run_dir": "x"}}
    back = Sae.load(sae.save(tmp_path / "s.safetensors"))
    for a, b in zip(sae.state_dict().values(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert (back.layer, back.k, back.info["config"]["n_latents"]) == ("conv6", 5, 48)
    assert back.info["provenance"] == {"run_dir": "x"}
