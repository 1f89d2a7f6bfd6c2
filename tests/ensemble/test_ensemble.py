"""Ensemble operators (GURA's and ours), time alignment against hand-computed frames, the
gura_compat quirks, and description-guided unit selection on a constructed run directory."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dissect.ensemble import ops
from dissect.ensemble.align import align_members, align_to_grid, common_grid
from dissect.ensemble.guided import (
    high_side,
    pick_balanced,
    random_units,
    rank_scores,
    read_unit_texts,
    select_units,
    term_pattern,
    unit_columns,
)
from dissect.ensemble.model import EnsembleModel
from dissect.hear import api
from dissect.hear.guided import guided_ensemble, guided_member
from dissect.hear.modules import _build, crepe_tiny, gura_cat, gura_fusion, logmel

SR = 16000


# ------------------------------------------------------------------------------- alignment
# A 10 ms-hop model (frames centred at 0, 10, ..., 90 ms) and a 20 ms-hop model (centred at
# 12.5, 32.5, ..., 92.5 ms, wav2vec2-style). Values are chosen so every expected number can be
# worked out by hand from w = (t - t_left) / 20 or / 10.
TS10 = torch.arange(10, dtype=torch.float32) * 10.0
TS20 = 12.5 + torch.arange(5, dtype=torch.float32) * 20.0
E10 = torch.stack([torch.arange(10.0), torch.arange(10.0) ** 2], dim=-1)[None]  # [1, 10, 2]
E20 = torch.tensor([[[0.0, 5], [10, -5], [20, 5], [30, -5], [40, 5]]])  # [1, 5, 2]


def test_20ms_model_on_the_10ms_grid_by_hand():
    got = align_to_grid(E20, TS20[None], TS10[None])
    want = torch.tensor([
        [0.0, 5.0],      # t=0: before 12.5 -> first frame
        [0.0, 5.0],      # t=10: before 12.5 -> first frame
        [3.75, 1.25],    # t=20: w = 7.5/20 = 0.375 between frames 0 and 1
        [8.75, -3.75],   # t=30: w = 0.875
        [13.75, -1.25],  # t=40: frames 1, 2, w = 0.375
        [18.75, 3.75],   # t=50: w = 0.875
        [23.75, 1.25],   # t=60: frames 2, 3, w = 0.375
        [28.75, -3.75],  # t=70
        [33.75, -1.25],  # t=80: frames 3, 4, w = 0.375
        [38.75, 3.75],   # t=90: w = 0.875
    ])
    assert torch.allclose(got[0], want, atol=1e-5)


def test_10ms_model_on_the_20ms_grid_by_hand():
    got = align_to_grid(E10, TS10, TS20)
    want = torch.tensor([
        [1.25, 1.75],    # 12.5: frames 1 (10 ms) and 2 (20 ms), w = 0.25: .75*1 + .25*4
        [3.25, 10.75],   # 32.5: .75*9 + .25*16
        [5.25, 27.75],   # 52.5: .75*25 + .25*36
        [7.25, 52.75],   # 72.5: .75*49 + .25*64
        [9.0, 81.0],     # 92.5: after the last frame (90 ms) -> last frame
    ])
    assert torch.allclose(got[0], want, atol=1e-5)


def test_alignment_never_mixes_channels():
    emb = torch.randn(2, 7, 5, requires_grad=True)
    ts = torch.arange(7.0) * 20 + 12.5
    out = align_to_grid(emb, ts, torch.arange(15.0) * 10)
    (grad,) = torch.autograd.grad(out[..., 3].sum(), emb)
    assert grad[..., 3].abs().sum() > 0
    assert torch.all(grad[..., [0, 1, 2, 4]] == 0)  # channel 3 depends on channel 3 only


def test_common_grid_is_the_finest_member():
    ref, grid = common_grid([TS20[None], TS10[None]])
    assert ref == 1 and torch.equal(grid, TS10[None])
    aligned, grid = align_members([E20, E10], [TS20[None], TS10[None]])
    assert aligned[1] is E10 and aligned[0].shape == (1, 10, 2)


def test_real_10ms_and_20ms_models_align_by_hand():
    fine = logmel.load_model(hop_ms=10.0, n_mels=16)
    coarse = logmel.load_model(hop_ms=20.0, n_mels=16)
    ens = EnsembleModel([coarse, fine], "cat")
    assert ens.reference == 1 and ens.hop_ms == 10.0 and ens.timestamp_embedding_size == 32
    audio = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0)) * 0.3
    e10, t10 = api.get_timestamp_embeddings(audio, fine)
    e20, t20 = api.get_timestamp_embeddings(audio, coarse)
    emb, ts = api.get_timestamp_embeddings(audio, ens)
    assert torch.equal(ts, t10) and emb.shape == (2, e10.shape[1], 32)
    assert torch.allclose(emb[..., 16:], e10)
    aligned = emb[..., :16]
    assert torch.allclose(aligned[:, 0::2], e20, atol=1e-5)  # 0, 20, 40 ms: coarse frames
    assert e10.shape[1] == 26 and e20.shape[1] == 13  # 0..250 ms and 0..240 ms
    mid = (e20[:, :-1] + e20[:, 1:]) / 2  # 10, 30, ..., 230 ms: halfway between coarse frames
    assert torch.allclose(aligned[:, 1:-1:2], mid, atol=1e-5)
    assert torch.allclose(aligned[:, -1], e20[:, -1])  # 250 ms: past the last coarse frame
    scene = api.get_scene_embeddings(audio, ens)
    assert torch.allclose(scene, torch.cat([e20.mean(1), e10.mean(1)], -1), atol=1e-5)


# ------------------------------------------------------------------------------- operators
def test_last_fusion_cat_avg_values():
    a = torch.tensor([[[1.0, 2.0]]])
    b = torch.tensor([[[10.0, 20.0]]])
    c = torch.tensor([[[4.0, 6.0]]])
    assert torch.equal(ops.last([a, b, c]), c)
    assert torch.allclose(ops.fusion([a, b, c]), torch.tensor([[[5.0, 28 / 3]]]))
    assert torch.equal(ops.cat([a, b]), torch.tensor([[[1.0, 2, 10, 20]]]))
    assert torch.equal(ops.cat([a, b], interleave=True), torch.tensor([[[1.0, 10, 2, 20]]]))
    assert torch.equal(ops.avg([a, b]), torch.tensor([[[5.5, 11.0]]]))
    wide = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    assert torch.equal(ops.avg([wide, b], projection="pad"),
                       torch.tensor([[[5.5, 11.0, 1.5, 2.0]]]))
    with pytest.raises(ValueError, match="differ in shape"):
        ops.fusion([a, wide])
    with pytest.raises(ValueError, match="equal widths"):
        ops.cat([a, wide], interleave=True)


def test_orthogonal_projection_is_fixed_and_norm_preserving():
    x = torch.randn(3, 7, 5)
    up = ops.match_dim(x, 12, "orthogonal", seed=4)
    assert up.shape == (3, 7, 12)
    assert torch.allclose(up.norm(dim=-1), x.norm(dim=-1), atol=1e-5)  # isometric embedding
    assert torch.equal(up, ops.match_dim(x, 12, "orthogonal", seed=4))
    assert not torch.allclose(up, ops.match_dim(x, 12, "orthogonal", seed=5))
    q = ops.orthogonal_matrix(12, 5, seed=1)
    assert torch.allclose(q.T @ q, torch.eye(5), atol=1e-5)
    y = torch.randn(2, 12)
    avg = ops.avg([y, x[:2, 0]])  # the widest member (12) is kept, the other embedded
    want = (y + ops.match_dim(x[:2, 0], 12, "orthogonal", seed=1)) / 2
    assert avg.shape == (2, 12) and torch.allclose(avg, want, atol=1e-6)


def test_gura_compat_interpolates_across_channels_by_hand():
    x = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])  # [B=1, T=1, D=4]
    # F.interpolate reads [B, T, D] as (N, C, L): it resamples the channel axis (align_corners
    # False): output i samples input position (i + 0.5) * 4 / 2 - 0.5 = 0.5, 2.5
    assert torch.allclose(ops.gura_interp_dim(x, 2), torch.tensor([[[0.5, 2.5]]]))
    up = ops.gura_interp_dim(x, 8)  # positions -0.25 (clamped), 0.25, 0.75, ..., 3.25 (clamped)
    assert torch.allclose(up, torch.tensor([[[0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]]]))
    # GURA's avg: CREPE-like 2048 and HuBERT-XL-like 1280 squeezed to 1024 by interpolation
    crepe, hubert = torch.randn(2, 3, 2048), torch.randn(2, 3, 1280)
    want = (F.interpolate(crepe, size=1024, mode="linear")
            + F.interpolate(hubert, size=1024, mode="linear")) / 2
    assert torch.allclose(ops.avg([crepe, hubert], gura_compat=True), want)
    # GURA's time alignment: stretch frame indices, ignore timestamps
    t = torch.tensor([[[0.0], [10.0], [20.0]]])  # 3 frames -> 5
    stretched = ops.gura_stretch_time(t, 5)
    assert torch.allclose(stretched[0, :, 0], torch.tensor([0.0, 4.0, 10.0, 16.0, 20.0]))


class _Fixed(nn.Module):
    """A stub HEAR model returning fixed frames at a given timing."""

    def __init__(self, emb: torch.Tensor, ts: torch.Tensor, hop: float, name: str):
        super().__init__()
        self.emb, self.ts, self.hop_ms, self.name = emb, ts, hop, name
        self.sample_rate = SR
        self.timestamp_embedding_size = self.scene_embedding_size = int(emb.shape[-1])

    def timestamp_embeddings(self, audio):
        return self.emb, self.ts.expand(self.emb.shape[0], -1)

    def scene_embeddings(self, audio):
        return self.emb.mean(1)


def test_ensemble_gura_compat_vs_ours():
    crepe = _Fixed(torch.randn(1, 3, 2048), torch.tensor([[0.0, 50.0, 100.0]]), 50.0, "crepe")
    speech = _Fixed(torch.randn(1, 5, 1024), 12.5 + 20 * torch.arange(5.0)[None], 20.0, "w2v")
    compat = EnsembleModel([speech, crepe], "cat", gura_compat=True)
    emb, ts = compat.timestamp_embeddings(None)
    assert compat.timestamp_embedding_size == 2048 == emb.shape[-1]
    c = F.interpolate(F.interpolate(crepe.emb, size=1024, mode="linear").transpose(1, 2),
                      size=5, mode="linear").transpose(1, 2)
    assert torch.allclose(emb[..., 0::2], speech.emb) and torch.allclose(emb[..., 1::2], c)
    assert torch.equal(ts, speech.ts)
    ours = EnsembleModel([speech, crepe], "cat")
    emb, ts = ours.timestamp_embeddings(None)
    assert emb.shape == (1, 5, 3072) and torch.equal(emb[..., :1024], speech.emb)
    assert torch.allclose(emb[..., 1024:], align_to_grid(crepe.emb, crepe.ts, speech.ts))
    avg = EnsembleModel([speech, crepe], "avg", projection="orthogonal")
    assert avg.timestamp_embedding_size == 2048
    assert avg.timestamp_embeddings(None)[0].shape == (1, 5, 2048)
    with pytest.raises(ValueError, match="op"):
        EnsembleModel([speech], "sum")


def test_gura_modules_with_explicit_members():
    audio = torch.rand(2, int(1.07 * SR), generator=torch.Generator().manual_seed(1)) * 2 - 1
    cat = gura_cat.load_model(members="crepe_tiny,logmel")
    fus = gura_fusion.load_model(members="crepe_tiny:fusion,logmel:fusion")
    for model, dim in ((cat, 64 + 128), (fus, 64 + 128)):
        emb, ts = api.get_timestamp_embeddings(audio, model)
        assert api.check_outputs(emb, ts, 2, audio.shape[1], SR, dim) == []
        assert float(ts[0, 1] - ts[0, 0]) == 20.0  # the finest member's grid (logmel)
        assert api.get_scene_embeddings(audio, model).shape == (2, dim)
    assert _build.parse_members("crepe_full:fusion@/w/c.pth, logmel") == [
        ("crepe_full", "fusion", "/w/c.pth"), ("logmel", "last", "")]


def test_speech_model_dir_picks_the_family(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "wavlm"}))
    spec = _build.ensemble_members(str(tmp_path), None, "x", "{module}:fusion@{path},crepe_full")
    assert spec == f"wavlm_base:fusion@{tmp_path},crepe_full"
    assert _build.ensemble_members("", None, "crepe_full,logmel", "-") == "crepe_full,logmel"


# ------------------------------------------------------------------------------- guided
ROWS = [  # layer, unit, description, top_concepts, keywords
    ("conv5", 0, "Fires on high Pitches of the piano.", "db:pitched tone=0.61", "bright"),
    ("conv5", 1, "Responds to low-pitched hum.", "db:noise=0.40", "low"),
    ("conv5", 2, "Broadband noise bursts.", "db:noise=0.52; db:pitch=0.31", "noisy"),
    ("conv5", 3, "Silence and stone-like clicks.", "db:click=0.70", "stone"),
    ("conv6", 0, "Sustained notes.", "db:pitch=0.55", "harmonic, pitch"),
    ("conv6", 1, "Speech vowels.", "db:speech=0.66", "vowel"),
    ("conv6", 5, "A steady tone.", "db:tone=0.20", "steady"),
]


@pytest.fixture()
def run_dir(tmp_path):
    with open(tmp_path / "descriptions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["layer", "unit", "description", "top_concepts", "keywords", "llm",
                    "captioners", "low_summary"])
        for layer, unit, desc, top, kw in ROWS:
            w.writerow([layer, unit, desc, top, kw, "rules", "acoustic", ""])
    concepts = [{"layer": "conv6", "unit": 1, "closed": {"db": [["speech", 0.66],
                                                               ["pitch", 0.2]]},
                 "keywords": {"nouns": ["vowel", "formant"]}}]
    with open(tmp_path / "concepts.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in concepts)
    (tmp_path / "config.yaml").write_text(
        "model:\n  name: crepe\n  source: tiny\n  site: ffn\n  options:\n    hop_ms: 40\n")
    return tmp_path


def test_term_pattern_whole_words():
    p = term_pattern("pitch")
    assert p.search("High PITCH") and p.search("pitches") and p.search("high-pitch")
    assert not p.search("low-pitched") and not p.search("pitchfork")
    assert not term_pattern("tone").search("stone") and term_pattern("tone").search("tones")


def test_guided_selection_picks_exactly_the_matching_units(run_dir):
    sel = select_units(run_dir, ["pitch"])
    # conv5:0 "Pitches"; conv6:0 concept + keyword; conv5:2 has pitch only as 2nd concept
    assert sel.units == {"conv5": [0], "conv6": [0]}
    assert sel.model["name"] == "crepe" and sel.size == 2
    assert select_units(run_dir, ["pitch"], top_k=2).units == {"conv5": [0, 2], "conv6": [0, 1]}
    assert select_units(run_dir, "pitch", top_k=2, min_score=0.35).units == {
        "conv5": [0], "conv6": [0]}
    assert select_units(run_dir, "tone").units == {"conv5": [0], "conv6": [5]}  # not "stone"
    assert select_units(run_dir, "pitched tone", fields=["concepts"]).units == {"conv5": [0]}
    assert select_units(run_dir, "formant, noise").units == {"conv5": [1, 2], "conv6": [1]}
    assert select_units(run_dir, "vowel", layers=["conv5"]).units == {}
    assert sel.matched == {"conv5:0": ["pitch"], "conv6:0": ["pitch"]}
    ctrl = random_units(select_units(run_dir, "noise, pitch"), seed=3)
    assert {k: len(v) for k, v in ctrl.units.items()} == {"conv5": 3, "conv6": 1}
    assert set(ctrl.units["conv5"]) <= {0, 1, 2, 3} and set(ctrl.units["conv6"]) <= {0, 1, 5}
    with pytest.raises(FileNotFoundError):
        select_units(run_dir / "missing", "pitch")


def test_guided_member_keeps_the_selected_channels(run_dir):
    sel = select_units(run_dir, "noise")
    assert sel.units == {"conv5": [1, 2]}
    member = guided_member(sel)  # CREPE tiny rebuilt from the run's config (hop 40 ms)
    assert member.timestamp_embedding_size == sel.size == 2 and member.hop_ms == 40.0
    full = crepe_tiny.load_model(layer="conv5", hop_ms=40.0)
    audio = torch.rand(1, 4000, generator=torch.Generator().manual_seed(2)) * 2 - 1
    got, _ = api.get_timestamp_embeddings(audio, member)
    ref, _ = api.get_timestamp_embeddings(audio, full)
    assert torch.allclose(got, ref[..., [1, 2]], atol=1e-6)
    ens = guided_ensemble([sel, select_units(run_dir, "speech")])  # + conv6 unit 1
    assert ens.timestamp_embedding_size == 2 + 1
    emb, ts = api.get_timestamp_embeddings(audio, ens)
    assert torch.allclose(emb[..., :2], got, atol=1e-6)
    assert api.check_outputs(emb, ts, 1, 4000, SR, 3) == []


def test_high_side_ignores_what_a_unit_is_silent_for(tmp_path):
    desc = "Responds most to sounds described as: tonal, a#5; least to: noise, clicks."
    assert high_side(desc) == "Responds most to sounds described as: tonal, a#5"
    assert high_side("Noisy, at least to my ear.") == "Noisy, at least to my ear."  # needs ':'
    assert high_side("Sustained low notes.") == "Sustained low notes."
    with open(tmp_path / "descriptions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["layer", "unit", "description", "top_concepts", "keywords"])
        w.writerow(["l", 0, desc, "", ""])
        w.writerow(["l", 1, "Responds most to sounds described as: noise; least to: tonal.", "",
                    ""])
    assert select_units(tmp_path, "noise").units == {"l": [1]}
    assert select_units(tmp_path, "tonal").units == {"l": [0]}


class _BagOfWords:
    """A deterministic stand-in for MiniLM: normalised counts of a fixed vocabulary."""

    VOCAB = ("pitch", "high", "piano", "noise", "notes", "sustained", "tone", "speech")

    def encode(self, texts):
        rows = np.array([[t.lower().count(w) for w in self.VOCAB] for t in texts], float)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def test_size_keeps_the_best_ranked_matches(run_dir):
    emb = _BagOfWords()
    texts = read_unit_texts(run_dir)
    scores = rank_scores(texts, ["pitch"], embedder=emb)
    # by hand: conv6:0 text "Sustained notes.; harmonic, pitch; pitch" -> pitch 2, sustained 1,
    # notes 1 -> 2/sqrt(6); conv5:0 "Fires on high Pitches of the piano.; bright; pitched tone"
    # -> pitch 2, high 1, piano 1, tone 1 -> 2/sqrt(7)
    assert scores[("conv6", 0)] == pytest.approx(2 / np.sqrt(6))
    assert scores[("conv5", 0)] == pytest.approx(2 / np.sqrt(7))
    one = select_units(run_dir, "pitch", size=1, embedder=emb)
    assert one.units == {"conv6": [0]} and one.size == 1
    assert one.scores == {"conv6:0": pytest.approx(2 / np.sqrt(6))}
    assert select_units(run_dir, "pitch", size=5, embedder=emb).units == {
        "conv5": [0], "conv6": [0]}  # fewer matches than size: all of them
    with pytest.raises(ValueError, match="size"):
        select_units(run_dir, "pitch", size=0, embedder=emb)


def test_unit_columns_and_random_controls_from_every_layer(run_dir):
    sel = select_units(run_dir, "noise")  # conv5: 1, 2
    layout = sel.population  # conv5: 0 1 2 3 | conv6: 0 1 5
    assert unit_columns(sel, layout) == [1, 2]
    assert unit_columns(select_units(run_dir, "speech"), layout) == [4 + 1]
    assert unit_columns(replace(sel, units=layout), layout) == list(range(7))
    with pytest.raises(KeyError, match="conv9"):
        unit_columns(replace(sel, units={"conv9": [0]}), layout)
    draws = [random_units(sel, seed=s, pool="all") for s in range(20)]
    assert all(d.size == 2 for d in draws)
    assert any("conv6" in d.units for d in draws)  # pool="all" reaches layers sel never kept
    assert all("conv6" not in random_units(sel, seed=s).units for s in range(20))
    assert random_units(sel, seed=3, pool="all").units == random_units(sel, seed=3,
                                                                       pool="all").units
    with pytest.raises(ValueError, match="pool"):
        random_units(sel, pool="some")


def test_balanced_picks_take_turns_between_terms(run_dir):
    sim = np.array([[0.9, 0.1], [0.8, 0.0], [0.7, 0.2], [0.1, 0.3]])
    # term 0 offers 0,1,2; term 1 offers 2,3 (best first: 3, then 2)
    assert pick_balanced([[0, 1, 2], [2, 3]], sim, 3) == [(0, 0), (3, 1), (1, 0)]
    assert pick_balanced([[0, 1, 2], [2, 3]], sim, 9) == [(0, 0), (3, 1), (1, 0), (2, 1)]
    assert pick_balanced([[], [1]], sim, 2) == [(1, 1)]
    # each round serves the term whose next unit fits best first: term 1's unit 2 (0.2) beats
    # term 0's unit 3 (0.1)
    assert pick_balanced([[3], [2]], sim, 1) == [(2, 1)]
    assert pick_balanced([[3], [2]], sim, 5) == [(2, 1), (3, 0)]
    # a unit both terms want goes to the first served; the other term moves on
    assert pick_balanced([[3, 0], [3]], sim, 5) == [(0, 0), (3, 1)]
    emb = _BagOfWords()
    # by hand: "pitch" matches conv5:0 (2/sqrt(7) = 0.76) and conv6:0 (2/sqrt(6) = 0.82);
    # "noise" matches conv5:1 (1/sqrt(2) = 0.71) and conv5:2 ("noise" twice: 1.0)
    first = select_units(run_dir, "pitch, noise", size=1, embedder=emb)
    assert first.units == {"conv5": [2]}  # round 1: noise's best (1.0) before pitch's (0.82)
    top = select_units(run_dir, "pitch, noise", size=1, balance=False, embedder=emb)
    assert top.units == {"conv5": [2]} and top.scores == {"conv5:2": pytest.approx(1.0)}
    three = select_units(run_dir, "pitch, noise", size=3, embedder=emb)
    assert three.units == {"conv5": [0, 2], "conv6": [0]}  # noise, pitch | pitch (0.76 > 0.71)
    assert three.scores["conv5:0"] == pytest.approx(2 / np.sqrt(7))


def test_guided_hear_module_sizes_per_run(run_dir):
    from dissect.hear.modules import guided

    two = f"{run_dir}:{run_dir}"
    model = guided.load_model(two, terms="noise|pitch, speech", size="1|2")
    assert model.timestamp_embedding_size == 1 + 2 and len(model.members) == 2
    noise = model.members[0]
    assert [s.name for s in noise._sites] == ["conv5"]
    assert len(noise._units[0]) == 1 and noise._units[0][0] in (1, 2)  # a noise unit
    with pytest.raises(ValueError, match="sizes"):
        guided.load_model(two, terms="noise", size="1|2|3")
    with pytest.raises(ValueError, match="at least one"):
        guided.load_model("")
