"""Concept pruning of SAE latents (``sae:<layer>``): the pruning evaluation removes the chosen
latents' decoder contributions through the one ablation path, and the Table 4 protocol runs on
them exactly as on neurons. References are brute force in numpy float64 on a tiny model and
SAE built here (no weights, no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from prune_toys import FrameAdapter, FrameNet, TwoUnitAdapter, TwoUnitNet

import dissect
from dissect import artifacts
from dissect.models.sae import Sae, attach
from dissect.pruning import apply_masks, prune_run, prune_table, random_like, zeroed
from dissect.pruning.table4 import ConceptSpec
from dissect.pruning.unlearn import NoDescriptions, model_logits

W = 6  # units of the toy's layer h, and latents of its SAE (equal count)
T = 8  # frames per clip (4 samples each)


def random_sae(layer: str = "h", d: int = W, n: int = W, k: int = 3, seed: int = 1) -> Sae:
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(n, d, generator=g)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    return Sae(layer, torch.randn(n, d, generator=g), torch.randn(n, generator=g) * 0.1, W_dec,
               torch.randn(d, generator=g) * 0.1, k)


def identity_sae(d: int = W) -> Sae:
    """Latents = the units (k = d keeps them all; ``h`` is a ReLU output, so ``relu(h) = h``):
    removing latent i is zeroing unit i."""
    eye = torch.eye(d)
    return Sae("h", eye.clone(), torch.zeros(d), eye.clone(), torch.zeros(d), d)


def f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def brute_hidden(net: FrameNet, wave: np.ndarray) -> np.ndarray:
    """``h [T, W]`` of one clip, float64."""
    x = np.asarray(wave, dtype=np.float64).reshape(-1, 4)
    return np.maximum(x @ f64(net.lin.weight).T + f64(net.lin.bias), 0.0)


def brute_latents(sae: Sae, h: np.ndarray) -> np.ndarray:
    """TopK latents ``[T, n]`` of frames ``h [T, d]``, frame by frame."""
    pre = np.maximum((h - f64(sae.b_dec)) @ f64(sae.W_enc).T + f64(sae.b_enc), 0.0)
    out = np.zeros_like(pre)
    for t, row in enumerate(pre):
        top = np.argsort(-row, kind="stable")[: sae.k]
        out[t, top] = row[top]
    return out


def brute_pruned(net: FrameNet, sae: Sae, wave: np.ndarray, latents) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """``(h with the latents' decoder contributions removed [T, W], logits [3])``."""
    h = brute_hidden(net, wave)
    z = brute_latents(sae, h)
    for i in latents:
        h = h - z[:, [i]] * f64(sae.W_dec)[i][None, :]
    return h, h.mean(0) @ f64(net.head.weight).T + f64(net.head.bias)


def waves(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(4 * T).astype(np.float32) for _ in range(n)]


def hooked(net, adapter, clips) -> tuple[np.ndarray, np.ndarray]:
    """The hooked module's output ``[B, T, W]`` and the logits, as the evaluator runs them."""
    got = []
    handle = net.act.register_forward_hook(lambda m, i, o: got.append(o.detach()))
    try:
        logits = model_logits(net, adapter, clips, batch_size=len(clips))
    finally:
        handle.remove()
    return f64(got[0]), logits


# --------------------------------------------------------------------------- the mechanism


def test_pruning_latents_removes_exactly_their_decoder_contributions():
    net, adapter, sae = FrameNet(), FrameAdapter(), random_sae()
    attach(adapter, net, sae)
    clips = waves(4)
    z = np.stack([brute_latents(sae, brute_hidden(net, w)) for w in clips])  # [B, T, n]
    on = z > 0
    assert (on.any((0, 1)) & ~on.all((0, 1))).sum() >= 3  # latents on in some frames only
    clean, logits = hooked(net, adapter, clips)
    for pruned in ([2], [0, 3, 5], list(range(W))):
        with zeroed(net, adapter, [("sae:h", i) for i in pruned]) as groups:
            out, out_logits = hooked(net, adapter, clips)
        assert groups == {"sae:h": sorted(pruned)}
        contribution = sum(z[:, :, [i]] * f64(sae.W_dec)[i] for i in pruned)  # [B, T, W]
        np.testing.assert_allclose(out - clean, -contribution, atol=1e-5)
        ref = np.stack([brute_pruned(net, sae, w, pruned)[1] for w in clips])
        np.testing.assert_allclose(out_logits, ref, atol=1e-5)
        assert np.abs(out_logits - logits).max() > 1e-3  # the edit reaches the head
        # the same edit as dissect.ablated, the public form of the one hook path
        model = dissect.Model(adapter, net, torch.device("cpu"))
        with dissect.ablated(model, [("sae:h", i) for i in pruned]):
            again, again_logits = hooked(net, adapter, clips)
        np.testing.assert_array_equal(again, out)
        np.testing.assert_array_equal(again_logits, out_logits)
    after, after_logits = hooked(net, adapter, clips)  # nothing left hooked
    np.testing.assert_array_equal(after, clean)
    np.testing.assert_array_equal(after_logits, logits)


def test_latents_are_refused_where_they_cannot_be_removed():
    net, adapter = FrameNet(), FrameAdapter()
    attach(adapter, net, random_sae())
    with pytest.raises(NotImplementedError, match="not weights of the model"):
        apply_masks(net, adapter, {"sae:h": [0]})
    assert all(bool((p != 0).all()) for p in net.parameters())  # nothing edited
    with pytest.raises(IndexError), zeroed(net, adapter, [("sae:h", W)]):
        pass
    # an SAE over a site whose units are an activation of the hooked output (ffn)
    two, two_adapter = TwoUnitNet(), TwoUnitAdapter()
    attach(two_adapter, two, random_sae("fc1", d=2, n=2, k=1))
    with pytest.raises(NotImplementedError, match="base layer 'fc1'"):
        with zeroed(two, two_adapter, [("sae:fc1", 0)]):
            pass


# --------------------------------------------------------------------------- the table


def make_run(tmp_path, sae: Sae | None, *, sae_rows: bool = True, n: int = 36):
    """A run of the frame toy: descriptions of h's units and (``sae_rows``) of sae:h's latents
    (units 4, 1 and 2 mention dogs: ranked 4 (two mentions), 1, 2), the SAE file in
    config.yaml's model.features, and ``n`` held-out clips of classes a/b/c, ``kind=dog`` on
    every fourth clip, two clips per near-duplicate group."""
    run = tmp_path / "run"
    text = {4: "Dogs, and more dogs.", 1: "Dogs.", 2: "A dog."}
    rows = [{"layer": layer, "unit": u, "calibrated": text.get(u, "A quiet train."), "llm": "x"}
            for layer in (["h", "sae:h"] if sae_rows else ["h"]) for u in range(W)]
    artifacts.write_jsonl(run / artifacts.SUMMARIES, rows)
    path = tmp_path / "h.safetensors"
    if sae is not None:
        sae.save(path)
    artifacts.write_text(run / artifacts.CONFIG, f"model:\n  features: [{path}]\n")
    clips = []
    for i, w in enumerate(waves(n, seed=5)):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, w, 16000, subtype="FLOAT")
        clips.append({"id": f"c{i}", "path": str(p),
                      "labels": {"category": "abc"[i % 3], "kind": "dog" if i % 4 == 0 else
                                 "train"}, "metadata": {"group": f"g{i // 2}"}})
    artifacts.write_jsonl(run / artifacts.CLIPS, clips)
    artifacts.write_jsonl(run / artifacts.HELDOUT, clips)
    return run, path, clips


def class_mean(d: np.ndarray, classes: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean([d[mask & (classes == c)].mean() for c in sorted(set(classes[mask]))]))


def reference_row(net, sae, clips, ranked, sizes, select, tgt, budget):
    """Table 4's row by hand: per-clip true-class logit / softmax prob / accuracy from the
    numpy forward with a prefix of ``ranked`` removed, the size with the largest class-mean
    logit gap ΔR - ΔA on the select half among those whose retained class-mean accuracy falls
    by at most ``budget``, and ΔA, ΔR on the report half at that size."""
    classes = np.array([c["labels"]["category"] for c in clips])
    y = np.array(["abc".index(c) for c in classes])
    wv = [sf.read(c["path"], dtype="float32")[0] for c in clips]

    def measures(latents):
        lg = np.stack([brute_pruned(net, sae, w, latents)[1] for w in wv])
        p = np.exp(lg - lg.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        ix = np.arange(len(y))
        return {"logit": lg[ix, y], "prob": p[ix, y], "acc": (lg.argmax(1) == y) * 1.0}

    before = measures([])

    def deltas(latents, half):
        after = measures(latents)
        out = {}
        for m in before:
            d = after[m] - before[m]
            out[m] = (class_mean(d, classes, half & tgt), class_mean(d, classes, half & ~tgt))
        return out

    best = None
    for n in sizes:
        d = deltas(ranked[:n], select)
        gap = d["logit"][1] - d["logit"][0]
        if budget is not None and d["acc"][1] < -budget - 1e-12:
            continue
        if best is None or gap > best[0]:
            best = (gap, n)
    n = best[1] if best else 0
    d = deltas(ranked[:n], ~select)
    return n, d


@pytest.mark.parametrize("budget", [None, 0.02])
def test_table_on_latents_equals_a_hand_computed_reference(tmp_path, budget):
    net, sae = FrameNet(), random_sae()
    run, _, clips = make_run(tmp_path, sae)
    adapter = FrameAdapter()  # no latents attached: prune_table takes them from model.features
    spec = ConceptSpec("dog", target="kind=dog")
    out = prune_table(run, [spec], ["keyword"], layers=["sae:h"], seeds=(0, 1), points=3,
                      bootstrap=50, max_rest_acc_drop=budget, model=net, adapter=adapter,
                      name="latents", log=lambda s: None)
    (row,) = out["rows"]
    ranked = [4, 1, 2]
    assert row["n_selected"] == 3 and row["per_layer"] == {"sae:h": 3}
    assert row["sizes"] == [1, 2, 3]
    assert out["settings"]["layers"] == ["sae:h"]
    assert out["settings"]["features"] == [str(tmp_path / "h.safetensors")]
    assert "sae:h (SAE latents" in out["markdown"]
    ids = [c["id"] for c in clips]
    select = np.array([i in set(out["evaluation"]["select_ids"]) for i in ids])
    tgt = np.array([c["labels"]["kind"] == "dog" for c in clips])
    assert out["evaluation"]["clip_ids"] == ids and 0 < select.sum() < len(ids)

    n, d = reference_row(net, sae, clips, ranked, [1, 2, 3], select, tgt, budget)
    assert row["choice"]["n"] == n
    # the chosen latents' masks, under the table's name (a neurons' table keeps its own)
    assert row["masks"][0] == "prune/latents.dog.keyword.masks.json"
    masks = json.loads((run / row["masks"][0]).read_text())["layers"]
    assert masks == ({"sae:h": {"units": W, "pruned": sorted(ranked[:n])}} if n else {})
    if budget is None:
        assert n > 0  # the case prunes something
    rep = row["report"]
    for m in ("logit", "prob", "acc"):
        assert rep[f"{m}_delta_A"]["value"] == pytest.approx(d[m][0], abs=1e-5)
        assert rep[f"{m}_delta_R"]["value"] == pytest.approx(d[m][1], abs=1e-5)
    if n:
        assert rep["logit_gap"]["value"] == pytest.approx(d["logit"][1] - d["logit"][0],
                                                          abs=1e-5)
    # the random baseline: random latents of the same layer, the same rule on their own curve
    rnd_n, rnd_d = {}, []
    for s in (0, 1):
        rk = [u for _, u in random_like([("sae:h", u) for u in ranked], {"sae:h": W}, s)]
        rnd_n[str(s)], dd = reference_row(net, sae, clips, rk, [1, 2, 3], select, tgt, budget)
        rnd_d.append(dd)
    assert row["random"]["chosen_n"] == rnd_n
    for k, side in (("logit_delta_A", 0), ("logit_delta_R", 1)):
        want = np.mean([dd["logit"][side] for dd in rnd_d])
        assert row["random"]["report"][k]["value"] == pytest.approx(want, abs=1e-5)


def test_latents_and_neurons_are_measured_alike(tmp_path):
    """With an SAE whose latents are the units themselves, pruning latents must give the
    neurons' table number for number: the same clips, split, bootstrap and measures."""
    net = FrameNet()
    run, _, _ = make_run(tmp_path, identity_sae())
    spec = [ConceptSpec("dog", target="kind=dog")]
    kw = dict(seeds=(0, 1, 2), points=3, bootstrap=200, max_rest_acc_drop=None, write=False,
              model=net, adapter=FrameAdapter(), log=lambda s: None)
    neurons = prune_table(run, spec, ["keyword"], layers=["h"], **kw)
    latents = prune_table(run, spec, ["keyword"], layers=["sae:h"], **kw)
    assert neurons["rows"][0]["choice"]["n"] > 0
    assert latents["evaluation"] == neurons["evaluation"]
    assert json.dumps(latents["rows"]).replace("sae:h", "h") == json.dumps(neurons["rows"])
    assert json.dumps(latents["mean"]) == json.dumps(neurons["mean"])
    # prune_run (one concept, its whole curve) too
    one = {layer: prune_run(run, "dog", "keyword", target="kind=dog", layers=[layer],
                            seeds=(0, 1), points=3, bootstrap=50, write=False, model=net,
                            adapter=FrameAdapter(), log=lambda s: None)
           for layer in ("h", "sae:h")}
    assert one["sae:h"]["selection"]["per_layer"] == {"sae:h": 3}
    for key in ("table4", "curve", "random", "report"):
        assert json.dumps(one["sae:h"][key]) == json.dumps(one["h"][key])
    # and a default table (no layers named) prunes the neurons only, never the latents
    default = prune_table(run, spec, ["keyword"], **kw)
    assert default["settings"]["layers"] == ["h"]
    assert json.dumps(default["rows"]) == json.dumps(neurons["rows"])


# --------------------------------------------------------------------------- errors


def test_a_run_without_descriptions_of_the_latents_is_refused(tmp_path, capsys):
    run, _, _ = make_run(tmp_path, random_sae(), sae_rows=False)
    spec = [ConceptSpec("dog", target="kind=dog")]
    with pytest.raises(NoDescriptions, match=r"no descriptions for layer\(s\) \['sae:h'\] "
                                             r"in summaries\.jsonl.*describes h"):
        prune_table(run, spec, ["keyword"], layers=["sae:h"], model=FrameNet(),
                    adapter=FrameAdapter(), log=lambda s: None)
    with pytest.raises(NoDescriptions, match="sae:h"):
        prune_run(run, "dog", "keyword", target="kind=dog", layers=["sae:h"],
                  model=FrameNet(), adapter=FrameAdapter(), log=lambda s: None)
    from dissect.cli import main

    assert main(["prune", f"run_dir={run}", "concept=dog", "target=kind=dog",
                 "layers=[sae:h]"]) == 2  # refused before any model is loaded
    err = capsys.readouterr().err
    assert "dissect: error:" in err and "no descriptions" in err and "sae:h" in err


def test_a_missing_sae_file_is_named(tmp_path):
    run, path, _ = make_run(tmp_path, None)  # the config names h.safetensors; it is not there
    with pytest.raises(FileNotFoundError, match=rf"{path}: SAE file missing.*model\.features"):
        prune_table(run, [ConceptSpec("dog", target="kind=dog")], ["keyword"],
                    layers=["sae:h"], model=FrameNet(), adapter=FrameAdapter(),
                    log=lambda s: None)
    # neurons of the same run are pruned without it
    out = prune_table(run, [ConceptSpec("dog", target="kind=dog")], ["keyword"], layers=["h"],
                      seeds=(0,), points=1, bootstrap=20, write=False, model=FrameNet(),
                      adapter=FrameAdapter(), log=lambda s: None)
    assert out["rows"][0]["n_selected"] == 3


def test_the_side_by_side_script_pairs_tables_of_one_split_only(tmp_path, capsys):
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "prune_neurons_vs_latents.py"
    main = runpy.run_path(str(script))["main"]
    run, _, _ = make_run(tmp_path, random_sae())
    spec = [ConceptSpec("dog", target="kind=dog")]
    kw = dict(seeds=(0, 1), points=3, bootstrap=50, max_rest_acc_drop=None, model=FrameNet(),
              adapter=FrameAdapter(), log=lambda s: None)
    tables = {name: prune_table(run, spec, ["keyword"], layers=[layer], name=name,
                                split_seed=seed, **kw)
              for name, layer, seed in (("n0", "h", 0), ("l0", "sae:h", 0), ("l1", "sae:h", 1))}
    assert main([str(run), "n0", "l0"]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("| dog | keyword |")]
    for name in ("n0", "l0"):
        rep = tables[name]["rows"][0]["report"]
        v = rep["logit_delta_A"]
        assert f"{v['value']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}]" in line
    assert "| 0 | keyword |" in out
    assert main([str(run), "n0", "l1"]) == 2  # another split: not measured alike
    assert "different evaluation select_ids" in capsys.readouterr().err
