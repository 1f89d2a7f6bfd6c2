"""Training SAEs (:mod:`dissect.features.train`): deterministic under a seed, the reported
FVU is the brute-force one on held-out frames, and ``dissect features train`` writes an SAE
that a run records as the layer ``sae:<layer>`` (``model.features=[FILE]``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import dissect
import dissect.features as features
from dissect import artifacts
from dissect.cli import main
from dissect.features.train import FrameSpool, fit, fvu, split_clips, train_sae
from dissect.models.sae import Sae

SR = 16000


def _spool(tmp_path, n=640, d=16, atoms=48, active=3, seed=0) -> FrameSpool:
    """Frames that are sums of ``active`` of ``atoms`` random directions (an SAE's world)."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(atoms, d))
    x = np.zeros((n, d))
    for row in x:
        pick = rng.choice(atoms, active, replace=False)
        row += rng.uniform(0.5, 2.0, active) @ D[pick]
    path = tmp_path / f"frames{seed}.f32"
    path.write_bytes(x.astype(np.float32).tobytes())
    return FrameSpool(path, d, n)


def _fit(spool, seed, epochs=4):
    torch.set_num_threads(1)
    return fit(spool, layer="conv6", expansion=3, k=3, seed=seed, epochs=epochs,
               batch_frames=64, dead_frames=128, progress=False)


def test_training_is_deterministic_under_a_seed(tmp_path):
    spool = _spool(tmp_path)
    a, log_a = _fit(spool, 0)
    b, _ = _fit(spool, 0)
    c, _ = _fit(spool, 1)
    for name, t in a.state_dict().items():
        assert torch.equal(t, b.state_dict()[name]), name
    assert not torch.equal(a.W_enc, c.W_enc) and not torch.equal(a.W_dec, c.W_dec)
    assert (a.n_latents, a.d_in, a.k) == (48, 16, 3)
    assert log_a.steps == 4 * (640 // 64) and log_a.frames == 640 * 4
    np.testing.assert_allclose(a.W_dec.norm(dim=1).numpy(), 1.0, atol=1e-5)  # unit decoder
    one, _ = _fit(spool, 0, epochs=1)
    assert fvu(a, spool)["fvu"] < 0.8 * fvu(one, spool)["fvu"]  # training reduces FVU


def test_fvu_is_the_brute_force_fraction_of_variance_unexplained(tmp_path):
    spool = _spool(tmp_path, n=300, seed=2)
    sae, _ = _fit(spool, 0, epochs=2)
    x = spool.array().astype(np.float64)
    z = np.zeros((len(x), sae.n_latents))
    pre = np.maximum((x - sae.b_dec.double().numpy()) @ sae.W_enc.double().numpy().T
                     + sae.b_enc.double().numpy(), 0)
    for t in range(len(x)):
        top = np.argsort(-pre[t])[: sae.k]
        z[t, top] = pre[t, top]
    recon = z @ sae.W_dec.double().numpy() + sae.b_dec.double().numpy()
    want = ((x - recon) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    got = fvu(sae, spool, chunk=7)
    assert got["frames"] == 300
    assert got["fvu"] == pytest.approx(want, rel=1e-4)
    assert got["alive"] == pytest.approx((z > 0).any(0).mean())


def test_split_clips_is_seeded_and_disjoint():
    tr, ho = split_clips(10, 0.3, 0)
    assert len(ho) == 3 and sorted(tr + ho) == list(range(10))
    assert split_clips(10, 0.3, 0) == (tr, ho) and split_clips(10, 0.3, 1) != (tr, ho)
    assert split_clips(5, 0.01, 0)[1] != [] and split_clips(1, 0.5, 0) == ([0], [])


def _tones(n):
    return [(0.4 * np.sin(2 * np.pi * (200.0 * 1.3**i) * np.arange(4000 + 400 * i) / SR)
             ).astype(np.float32) for i in range(n)]


def test_train_sae_on_a_model_reports_held_out_figures(tmp_path):
    torch.set_num_threads(1)
    model = dissect.load("crepe_tiny", device="cpu")
    waves = _tones(6)
    ids = [f"t{i}" for i in range(6)]
    kw = dict(expansion=2, k=8, seed=0, epochs=3, batch_frames=16, heldout=0.34,
              progress=False)
    t = train_sae(model.adapter, model.module, ids, waves.__getitem__, "conv6",
                  out=tmp_path / "conv6.safetensors", **kw)
    again = train_sae(model.adapter, model.module, ids, waves.__getitem__, "conv6", **kw)
    assert torch.equal(t.sae.W_dec, again.sae.W_dec)  # the model's frames are read the same
    info = json.loads((tmp_path / "conv6.safetensors.json").read_text())
    cfg, prov, m = info["config"], info["provenance"], info["metrics"]
    assert (cfg["layer"], cfg["d_in"], cfg["n_latents"], cfg["k"]) == ("conv6", 64, 128, 8)
    assert cfg["library"].startswith("eai-sparsify==") and cfg["steps"] > 0
    held = prov["clips_heldout"]
    assert len(held) == 2 and not set(held) & set(prov["clips_train"])
    # held-out FVU by brute force over the held-out clips' frames
    _, cache = model.run_with_cache([waves[ids.index(c)] for c in held], ["conv6"],
                                    sample_rate=SR)
    sae = Sae.load(tmp_path / "conv6.safetensors")
    x = torch.cat([cache["conv6"][b][cache["conv6"][b].abs().sum(-1) > 0]
                   for b in range(len(held))]).double()
    r = sae.decode(sae.encode(x.float())).double()
    want = float((x - r).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    assert m["heldout"]["frames"] == len(x)
    assert m["heldout"]["fvu"] == pytest.approx(want, rel=1e-4)
    s = m["splice"]
    assert s["clips"] == 2 and 0 <= s["top1_agreement"] <= 1 and s["logit_mse"] >= 0
    assert s["next_layer"] == "classifier" and -1 <= s["next_cosine"] <= 1
    with pytest.raises(ValueError, match="sae:conv6.*not on SAE latents"):
        train_sae(model.adapter, model.module, ids, waves.__getitem__, "sae:conv6", **kw)


def test_cli_trains_and_a_run_records_the_latents(tmp_path, capsys):
    root = tmp_path / "clips"
    root.mkdir()
    for i, w in enumerate(_tones(5)):
        sf.write(root / f"t{i}.wav", w, SR)
    base = ["probe.layout=folder", f"probe.root={root}", "stages=[probe,record]",
            "record.progress=false", "record.k=2"]
    run = tmp_path / "run"
    assert main(["run", f"run_dir={run}", "model.layers=[conv6]", *base]) == 0
    sae_file = tmp_path / "sae" / "conv6.safetensors"
    rc = main(["features", "train", f"run_dir={run}", "layer=conv6", "expansion=1", "k=4",
               "epochs=2", "batch_frames=8", "heldout=0.2", "progress=false",
               f"out={sae_file}"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == str(sae_file) and "held-out FVU" in err
    assert json.loads(sae_file.with_name("conv6.safetensors.json").read_text())[
        "provenance"]["run_dir"] == str(run.resolve())
    # the SAE's latents as a layer of a run: recorded as any layer
    run2 = tmp_path / "run2"
    assert main(["run", f"run_dir={run2}", f"model.features=[{sae_file}]",
                 "model.layers=[sae:conv6]", *base]) == 0
    rows = artifacts.read_jsonl(run2 / "exemplars.jsonl")
    assert {r["layer"] for r in rows} == {"sae:conv6"} and len(rows) == 64
    assert (run2 / "stats" / "sae:conv6.safetensors").is_file()
    capsys.readouterr()
    # errors name the problem
    assert main(["features", "train", f"run_dir={run}", "layer=conv9"]) == 2
    assert "conv9" in capsys.readouterr().err
    assert main(["features", "train", f"run_dir={run}", "layer=conv6", "k=0"]) == 2
    assert "k=0" in capsys.readouterr().err
    assert main(["features", "fit"]) == 2
    assert features.Sae is Sae  # the package re-exports the SAE
