"""The Python API (dissect/api.py): the README example as it stands, recording against a
brute-force forward pass, save/load, the clip inputs, ablation and pruning."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dissect
from dissect import artifacts

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- api-example -->\s*```python\n(.*?)```\s*<!-- /api-example -->", text,
                  re.S)
    assert m, "README has no <!-- api-example --> block"
    return m.group(1)


def test_readme_example_runs_in_few_lines_without_hydra_or_files(tmp_path):
    """The README's block, as it stands: a bundle by name, arrays the user made, described
    with captions and evidence (the 440 Hz bin's first term is the f0 band of A4), a
    DataFrame, evaluate on the kept captions, one neuron ablated through ``model.hooks``."""
    code = readme_example()
    lines = [x for x in code.splitlines() if x.strip()]
    assert len(lines) <= 20
    check = (
        "\nimport json, sys\n"
        "print('RESULT', json.dumps({'hydra': any(m.split('.')[0] == 'hydra' for m in "
        "sys.modules), 'ablated_max': float(logits[:, 228].abs().max()), "
        "'other_max': float(logits[:, 227].abs().max()), 'hooks': sum(len(m._forward_hooks) "
        "for m in model.module.modules()), 'evidence': desc['classifier', 228].evidence[:3], "
        "'rows': len(df), 'captioned': sum(bool(t) for t in desc.captions.terms.values()), "
        "'n_clips': len(rec.clip_ids), 'scored': scores['settings']['n_clips']}))\n")
    proc = subprocess.run([sys.executable, "-c", code + check], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line[len("RESULT "):])
    assert got["hydra"] is False
    assert got["ablated_max"] == 0.0 and got["other_max"] > 0 and got["hooks"] == 0
    assert got["n_clips"] == got["captioned"] == got["scored"] == 60 and got["rows"] == 360
    # the A4 tones alone carry the bands G#4, A4, A#4: three tied terms, each AUROC 1 (the
    # evidence text names their centre, A4: test_arrays_are_heard_described_and_evaluated)
    assert {e["term"] for e in got["evidence"]} == {"f0=G#4", "f0=A4", "f0=A#4"}
    assert [e["auroc"] for e in got["evidence"]] == [1.0, 1.0, 1.0]
    assert list(tmp_path.iterdir()) == []  # no run directory, nothing written where it ran


def _tones(freqs, seconds=(0.5, 0.8, 1.1, 0.7)):
    out = []
    for i, f in enumerate(freqs):
        t = np.arange(int(seconds[i % len(seconds)] * SR)) / SR
        out.append((0.4 * np.sin(2 * np.pi * f * t)).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def crepe():
    return dissect.load("crepe", source="tiny", device="cpu")


@pytest.fixture(scope="module")
def tones():
    return _tones([110.0, 220.0, 330.0, 440.0, 660.0, 880.0])


def test_record_equals_brute_force_pooling(crepe, tones):
    rec = dissect.record(crepe, tones, layers=["conv6", "classifier"], k=3, sample_rate=SR,
                         batch_size=4, progress=False)
    for layer in ("conv6", "classifier"):
        # brute force: each clip alone through the model, mean over its valid frames
        ref = []
        for w in tones:
            out = dissect.forward(crepe, [w], [layer], sample_rate=SR)[layer][0]
            ref.append(out.mean(0).numpy())
        ref = np.stack(ref)
        dense = rec.activations(layer)
        np.testing.assert_allclose(dense, ref, rtol=2e-3, atol=2e-3)  # dense is float16
        for unit in (0, 5, ref.shape[1] - 1):
            ex = rec.exemplars(layer, unit)
            order = np.argsort(-ref[:, unit], kind="stable")[:3]
            assert [e["clip"] for e in ex["top"]] == [rec.clip_ids[i] for i in order]
            np.testing.assert_allclose([e["value"] for e in ex["top"]], ref[order, unit],
                                       rtol=1e-4, atol=1e-5)
            assert ex["mean"] == pytest.approx(float(ref[:, unit].mean()), rel=1e-4, abs=1e-5)
    stats = rec.stats["conv6"]
    assert stats["mean"].shape == (rec.layers["conv6"].site.units,)
    with pytest.raises(KeyError, match="recorded: \\['conv6', 'classifier'\\]"):
        rec.exemplars("conv1", 0)
    with pytest.raises(IndexError, match="out of range"):
        rec.exemplars("classifier", 360)


def test_recording_save_load_roundtrip(crepe, tones, tmp_path):
    rec = dissect.record(crepe, tones, layers=["conv5"], k=2, sample_rate=SR, progress=False)
    run = rec.save(tmp_path / "run")
    assert sorted(p.name for p in run.iterdir()) == [
        "activations", "clips.jsonl", "exemplars.jsonl", "manifest.json", "recording.json",
        "stats"]
    assert artifacts.read_jsonl(run / artifacts.EXEMPLARS) == rec.neurons()
    back = dissect.Recording.load(run)
    assert back.clip_ids == rec.clip_ids and back.model["name"] == "crepe"
    assert back.head_layer == "classifier" and back.class_names[0] == rec.class_names[0]
    assert back.neurons() == rec.neurons()
    np.testing.assert_array_equal(back.activations("conv5"), rec.activations("conv5"))


def test_clip_inputs_paths_arrays_pairs_agree(crepe, tones, tmp_path):
    import soundfile as sf

    paths = []
    for i, w in enumerate(tones[:3]):
        p = tmp_path / f"tone{i}.wav"
        sf.write(str(p), w, SR, subtype="FLOAT")
        paths.append(p)
    kw = {"layers": ["conv6"], "k": 2, "progress": False}
    a = dissect.record(crepe, tones[:3], sample_rate=SR, **kw)
    b = dissect.record(crepe, [(w, SR) for w in tones[:3]], **kw)
    c = dissect.record(crepe, paths, **kw)
    assert c.clip_ids == ["tone0", "tone1", "tone2"] and a.clip_ids[0] == "clip00000"
    np.testing.assert_array_equal(a.activations("conv6"), b.activations("conv6"))
    np.testing.assert_allclose(a.activations("conv6"), c.activations("conv6"), atol=1e-3)
    with pytest.raises(ValueError, match="sample_rate"):
        dissect.record(crepe, tones[:2], **kw)
    with pytest.raises(ValueError, match="share one rate"):
        dissect.record(crepe, [(tones[0], SR), (tones[1], 8000)], **kw)
    bad = tones[0].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="clip 1: non-finite"):
        dissect.record(crepe, [tones[1], bad], sample_rate=SR, **kw)
    with pytest.raises(ValueError, match="mono array"):
        dissect.record(crepe, [np.zeros((2, 100), np.float32)], sample_rate=SR, **kw)


def test_ablated_is_reversible_and_prune_is_permanent(tones):
    model = dissect.load("crepe", source="tiny", device="cpu")
    before = dissect.forward(model, tones[:2], ["conv6"], sample_rate=SR)
    with dissect.ablated(model, {"conv6": [3, 7]}) as groups:
        during = dissect.forward(model, tones[:2], ["conv6"], sample_rate=SR)
    after = dissect.forward(model, tones[:2], ["conv6"], sample_rate=SR)
    assert groups == {"conv6": [3, 7]}
    assert during["conv6"][..., [3, 7]].abs().max() == 0
    assert before["conv6"][..., [3, 7]].abs().max() > 0
    assert not torch.equal(during["logits"], before["logits"])
    torch.testing.assert_close(after["logits"], before["logits"])
    masks = dissect.prune(model, [("conv6", 3), ("conv6", 7)])
    assert list(np.flatnonzero(masks["conv6"])) == [3, 7]
    pruned = dissect.forward(model, tones[:2], ["conv6"], sample_rate=SR)
    torch.testing.assert_close(pruned["logits"], during["logits"])


def test_api_names_are_plain_functions_and_subpackages_have_their_own_names():
    import inspect

    import dissect.recording.store as store

    for name in ("record", "describe", "evaluate", "prune"):
        fn = getattr(dissect, name)
        assert inspect.isfunction(fn) and fn is getattr(dissect.api, name)
    assert store.exemplar_rows is not None and not callable(dissect.recording)
    with pytest.raises(KeyError, match="crepe"):
        dissect.load("no-such-model")


def test_describe_explains_then_scores_like_the_stage(crepe, tmp_path):
    """``describe`` runs the explain step in memory: the same rows as the pipeline's stage on
    the saved directory, the shown text names the tones' note, and its test score is the
    detection AUROC recomputed from the activations and the split."""
    from sklearn.metrics import roc_auc_score

    from dissect.config import CaptionConfig, ExplainConfig, LLMConfig
    from dissect.description.captioners import combine
    from dissect.description.captioners.base import pitch_terms
    from dissect.evaluation.agreement import binarize_top_quantile
    from dissect.explain.splits import assign_splits, split_keys
    from dissect.stages.explain import write_explanations

    freqs = [110.0, 220.0, 440.0, 880.0] * 15
    waves = _tones(freqs)
    rec = dissect.record(crepe, waves, layers=["classifier"], k=3, sample_rate=SR,
                         progress=False)
    ids = rec.clip_ids
    notes = {110.0: "A2", 220.0: "A3", 440.0: "A4", 880.0: "A5"}
    pairs = list(zip(ids, freqs, strict=True))
    caps = dissect.Captions({cid: combine({"given": f"a sine tone at {notes[f]}"})
                             for cid, f in pairs},
                            {cid: pitch_terms(f) for cid, f in pairs})
    desc = dissect.describe(rec, caps, keywords=False)
    # the bin nearest 440 Hz (CREPE: 20-cent bins from 1997.38 cents above 10 Hz)
    cents = 1200 * np.log2(440.0 / 10.0)
    unit = int(round((cents - 1997.3794084376191) / 20))
    d = desc["classifier", unit]
    assert d.kind in ("evidence", "closed", "and") and d.evidence
    # the A4 clips carry the bands G#4, A4, A#4 alike: three tied terms, centred on A4
    assert {e["term"] for e in d.evidence[:3]} == {"pitch=G#4", "pitch=A4", "pitch=A#4"}
    assert "A4" in d.text and "G#4" not in d.text
    # its test score, by hand: the shown candidate's prediction on the test clips
    split = assign_splits(ids, (0.6, 0.2, 0.2), 0, *split_keys(rec.clips))
    own = {rec.exemplars("classifier", unit)[s][i]["clip"] for s in ("top", "bottom")
           for i in range(3)}
    m = np.array([s == "test" and cid not in own for s, cid in zip(split, ids, strict=True)])
    a = rec.activations("classifier")[m, unit].astype(np.float64)
    if d.kind == "evidence":
        pred = np.array([float("pitch=A4" in caps.terms[cid]) for cid in np.array(ids)[m]])
        y = binarize_top_quantile(a, 0.9)
        assert d.test["detection_top"] == pytest.approx(roc_auc_score(y, pred), abs=1e-4)
        assert d.test["correlation"] == pytest.approx(np.corrcoef(pred, a)[0, 1], abs=1e-4)
    # the stage on the saved directory writes the same rows
    run = rec.save(tmp_path / "run")
    desc.save(run)
    artifacts.write_jsonl(run / artifacts.CAPTIONS, [
        {"clip": c, "captioner": "given", "key": c, "text": t.removeprefix("given: "),
         "terms": caps.terms[c], "error": None} for c, t in caps.items()])
    mem = artifacts.read_jsonl(run / artifacts.EXPLANATIONS)
    write_explanations(run, ExplainConfig(), LLMConfig(client="rules"),
                       CaptionConfig(captioners=["given"]), progress=False)
    assert artifacts.read_jsonl(run / artifacts.EXPLANATIONS) == mem
    # without terms nothing can be confirmed: AND's summaries name no caption term, so no
    # validation clip tests them, and the neurons are "no clear concept"
    plain = dissect.describe(rec, dict(caps), keywords=False)
    assert {plain["classifier", u].kind for u in (0, unit)} == {"none"}
    assert {plain["classifier", u].text for u in (0, unit)} == {"no clear concept"}


def test_load_takes_bundle_names_like_dissect_run():
    """``dissect.load("crepe_tiny")`` is ``model=crepe_tiny``: the bundle's adapter, weights and
    options; explicit arguments win; an unknown name still lists the registered ones."""
    from dissect.models.bundles import BUNDLES

    m = dissect.load("crepe_tiny", device="cpu")
    b = BUNDLES.get("crepe_tiny")
    assert (m.name, m.adapter.source, m.adapter.hop_ms) == ("crepe", "tiny", 40) == (
        b.adapter, b.source, dict(b.options)["hop_ms"])
    m2 = dissect.load("crepe_tiny", device="cpu", hop_ms=20)
    assert m2.adapter.hop_ms == 20
    with pytest.raises(KeyError, match="crepe"):
        dissect.load("no_such_model")


def test_descriptions_iterate_like_a_mapping_and_reprs_are_short(crepe):
    freqs = [110.0, 220.0, 440.0, 880.0] * 5
    waves = _tones(freqs)
    rec = dissect.record(crepe, waves, layers=["conv6"], k=2, sample_rate=SR, progress=False)
    caps = {cid: f"a sine tone at {f:g} Hz" for cid, f in zip(rec.clip_ids, freqs, strict=True)}
    desc = dissect.describe(rec, caps, keywords=False)
    items = list(desc)  # used to raise TypeError (integer keys)
    assert len(items) == len(desc) == 64
    assert [(d.layer, d.unit) for d in items] == desc.keys() == [("conv6", u) for u in range(64)]
    assert ("conv6", 3) in desc and ("conv6", 64) not in desc
    assert dict(desc.items())["conv6", 7].text == desc["conv6", 7].text
    with pytest.raises(KeyError, match="by \\(layer, unit\\)"):
        desc[0]
    df = desc.to_pandas()
    assert list(df["unit"]) == list(range(64)) and set(df["layer"]) == {"conv6"}
    assert list(df["description"]) == [d.text for d in items]
    assert list(df["status"]) == [x["status"] for x in desc.explanations]
    r = repr(rec)
    assert r == "Recording('crepe': 20 clips, 64 neurons in 1 layer(s) [conv6], reduction='mean')"
    shown = sum(not x["no_clear_concept"] for x in desc.explanations)
    assert repr(desc) == (f"Descriptions(64 neurons in 1 layer(s), {shown} with a confirmed "
                          f"description, methods={desc.methods})")
    assert "tensor" not in r and len(repr(desc)) < 200


def test_probe_set_takes_every_layouts_options(monkeypatch):
    """``probe_set("espeak_digits", n_clips=20)`` used to be a TypeError: options go to the
    layout's own section or to ``probe``; an unknown one names both lists."""
    import dissect.datasets

    seen = []
    monkeypatch.setattr(dissect.datasets, "build_probe_set",
                        lambda cfg, progress=True: seen.append(cfg) or cfg)
    cfg = dissect.probe_set("espeak_digits", n_clips=20, voices=["en-us"], holdout=0.25)
    assert (cfg.espeak_digits.n_clips, cfg.espeak_digits.voices, cfg.holdout) == (
        20, ["en-us"], 0.25)
    cfg = dissect.probe_set("synth", n_clips=7, seed=3, limit=5)
    assert (cfg.synth.n_clips, cfg.synth.seed, cfg.limit, cfg.layout) == (7, 3, 5, "synth")
    cfg = dissect.probe_set("folder", "/data", metadata="meta.csv", label_columns=["tag"])
    assert (cfg.root, cfg.metadata, cfg.label_columns) == ("/data", "meta.csv", ["tag"])
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['n_clip'\].*espeak_digits "
                                        r"fields: \[.*'n_clips'"):
        dissect.probe_set("espeak_digits", n_clip=20)
    with pytest.raises(TypeError, match=r"\['n_clips'\]"):
        dissect.probe_set("folder", "/data", n_clips=3)  # a synth field, not a folder one
    assert len(seen) == 3


def _pitch_set(rate: int, n_per_note: int = 10):
    """Sine tones at six notes (A2 ... A5), ``n_per_note`` each, at five levels and three
    lengths, as arrays at ``rate`` Hz; returns ``(waves, notes)``."""
    notes = {110.0: "A2", 220.0: "A3", 330.0: "E4", 440.0: "A4", 660.0: "E5", 880.0: "A5"}
    levels = (0.05, 0.1, 0.2, 0.4, 0.8)
    waves, names = [], []
    for i in range(n_per_note * len(notes)):
        f = list(notes)[i % len(notes)]
        t = np.arange(int((0.4 + 0.1 * (i % 3)) * rate)) / rate
        waves.append((levels[(i // len(notes)) % len(levels)]
                      * np.sin(2 * np.pi * f * t)).astype(np.float32))
        names.append(notes[f])
    return waves, names


def test_arrays_are_heard_described_and_evaluated(crepe, tmp_path):
    """Clips given as arrays keep their audio in the Recording: ``describe`` captions them
    (``f0=`` bands of the measured pitch, not the fallback), finds evidence, keeps the
    captions (``desc.captions``, saved as ``captions.jsonl``) and ``evaluate(rec, desc)``
    needs nothing else. A recording read back has no audio and says so."""
    from dissect.audio import AudioMissingError, load_audio
    from dissect.audio.load import resample
    from dissect.description.captions import terms_by_clip
    from dissect.evaluation.agreement import holdout_mask

    rate = 24000  # neither CREPE's nor the acoustic captioner's 16 kHz: both resample
    waves, names = _pitch_set(rate)
    rec = dissect.record(crepe, waves, layers=["classifier"], k=3, sample_rate=rate,
                         progress=False)
    # the kept audio is the array, resampled as a file of it would be
    import soundfile as sf

    sf.write(tmp_path / "c7.wav", waves[7], rate, subtype="FLOAT")
    a = rec.audio("clip00007", 16000)
    assert (a.sample_rate, a.source_sample_rate, a.cropped) == (16000, rate, False)
    np.testing.assert_array_equal(a.waveform, resample(waves[7], rate, 16000))
    f = load_audio(tmp_path / "c7.wav", 16000)
    np.testing.assert_allclose(a.waveform, f.waveform, atol=1e-6)
    assert a.peak_dbfs == pytest.approx(f.peak_dbfs, abs=1e-4)

    desc = dissect.describe(rec, llm="rules", keywords=False)
    caps = desc.captions
    assert sorted(caps) == rec.clip_ids
    for cid, note in zip(rec.clip_ids, names, strict=True):
        assert f"f0={note}" in caps.terms[cid] and "pitched=yes" in caps.terms[cid]
        assert caps[cid].startswith("acoustic: ") and f"around {note}" in caps[cid]
    # the bin nearest 440 Hz (as in test_describe_explains_then_scores_like_the_stage)
    unit = int(round((1200 * np.log2(440.0 / 10.0) - 1997.3794084376191) / 20))
    d = desc["classifier", unit]
    # the A4 tones alone carry the bands G#4, A4 and A#4 (no tone a semitone away): three
    # exactly tied terms (in the terms' order); the evidence text names their centre, A4
    assert {e["term"] for e in d.evidence[:3]} == {"f0=G#4", "f0=A4", "f0=A#4"}
    assert [e["auroc"] for e in d.evidence[:3]] == [1.0, 1.0, 1.0]
    assert desc.to_pandas().loc[unit, "top_term"] in ("f0=G#4", "f0=A4", "f0=A#4")
    ev = next(c for c in desc.explanations[unit]["candidates"] if c["kind"] == "evidence")
    assert ev["text"] == "measured pitch near A4"  # the band's centre
    assert sum(bool(x.evidence) for x in desc) > len(desc) // 2

    run = desc.save(tmp_path / "desc")
    rows = artifacts.read_jsonl(run / artifacts.CAPTIONS)
    assert {(r["clip"], r["captioner"]) for r in rows} == {
        (c, n) for c in rec.clip_ids for n in ("acoustic", "labels")}
    assert terms_by_clip(run) == caps.terms
    scores = dissect.evaluate(rec, desc)  # scored on desc.captions: every clip captioned
    assert scores == dissect.evaluate(rec, desc, caps)
    hold = holdout_mask(rec.clip_ids, 0.3, 0)
    assert scores["settings"]["n_clips"] == 60
    assert scores["settings"]["n_fit"] == int((~hold).sum())
    half = dissect.evaluate(rec, desc, {c: caps[c] for c in rec.clip_ids[:30]})
    assert half["settings"]["n_fit"] == int((~hold[:30]).sum())  # only captioned clips fit

    # 24 of these clips: too few for the fit/val/test split, so no evidence (said in "why")
    rec24 = dissect.record(crepe, waves[:24], layers=["classifier"], k=3, sample_rate=rate,
                           progress=False)
    ids = rec24.clip_ids
    few = dissect.describe(rec24, dissect.Captions({c: caps[c] for c in ids},
                                                   {c: caps.terms[c] for c in ids}),
                           keywords=False)
    assert not any(x.evidence for x in few)
    assert "24 clips are too few for the fit/val/test split" in few.explanations[0]["why"]

    back = dissect.Recording.load(rec.save(tmp_path / "rec"))
    assert back.waves is None and back.clip_ids == rec.clip_ids
    with pytest.raises(AudioMissingError, match="clip00000.*Recording.save does not write"):
        back.audio(0)
    with pytest.raises(ValueError, match=r"60 clip\(s\) \(clip00000, clip00001, clip00002, "
                                         r"\.\.\.\) were recorded from in-memory arrays.*"
                                         r"\['acoustic'\] need audio"):
        dissect.caption(back)
    labels = dissect.caption(back, ["labels"], progress=False)  # needs no audio
    assert set(labels.values()) == {"labels: No labels"}


def test_evaluate_needs_captions_from_somewhere(crepe):
    waves = _tones([220.0, 440.0] * 6)
    rec = dissect.record(crepe, waves, layers=["conv6"], k=2, sample_rate=SR, progress=False)
    caps = {cid: "a tone" for cid in rec.clip_ids}
    desc = dissect.describe(rec, caps, keywords=False)
    assert dict(desc.captions) == caps and desc.captions.parts is None
    assert [r["captioner"] for r in desc.captions.rows()] == ["given"] * 12
    bare = dissect.Descriptions(desc.summaries, desc.concepts, desc.evidence,
                                desc.explanations, desc.methods, desc.captioners)
    with pytest.raises(ValueError, match="no captions: these Descriptions hold none"):
        dissect.evaluate(rec, bare)
