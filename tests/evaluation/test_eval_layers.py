"""Interpretable fraction (AND's clustering rule), polysemanticity, and evaluate_run end to end."""

import json

import numpy as np
import pytest
from eval_fakes import HashEmbedder
from safetensors.numpy import save_file

from dissect import artifacts
from dissect.evaluation.layer_stats import (
    cluster_clips,
    interpretable_fraction,
    is_interpretable,
    min_cover,
    polysemanticity,
    split_sentences,
)
from dissect.evaluation.scores import evaluate_run


def test_split_sentences():
    assert split_sentences("A dog barks. Then rain!  Is it 1.8 s? yes") == [
        "A dog barks.", "Then rain!", "Is it 1.8 s?", "yes"]
    assert split_sentences("one two. three", min_words=2) == ["one two."]


def test_interpretable_rule_on_a_constructed_clustering():
    clusters = {"a": {0}, "b": {0, 1}, "c": {1}, "d": {0}, "e": {2}, "f": {1}, "g": set()}
    assert is_interpretable(["a", "b", "d", "e", "c"], clusters, k=5, tau=3)  # cluster 0: a,b,d
    assert not is_interpretable(["a", "b", "c", "e", "g"], clusters, k=5, tau=3)  # max 2
    assert is_interpretable(["a", "b", "c", "e", "g"], clusters, k=5, tau=2)
    assert not is_interpretable(["a", "a", "a", "e", "c"], clusters, k=5, tau=2)  # distinct clips
    assert is_interpretable(["c", "f", "b", "a", "e", "d"], clusters, k=5, tau=3)  # 1: c,f,b
    tops = {"L1": [["a", "b", "d"], ["e", "g", "c"]], "L2": [["c", "f", "b"]]}
    out = interpretable_fraction(tops, clusters, k=5, tau=3)
    assert out["per_layer"] == {"L1": 0.5, "L2": 1.0}
    assert out["interpretable"]["L1"] == [True, False] and out["n_neurons"]["L2"] == 1


def test_clustering_is_seeded_and_groups_similar_sentences():
    dog = ["Dog barking loudly. Dog growling.", "A dog barking. Dog dog whining."]
    rain = ["Rain falling on a roof. Heavy rain.", "Rain drops. Rain rain falling."]
    texts = {f"d{i}": dog[i % 2] for i in range(6)}
    texts.update({f"r{i}": rain[i % 2] for i in range(6)})
    emb = HashEmbedder()
    a = cluster_clips(texts, emb, n_clusters=2, seed=0)
    assert a == cluster_clips(texts, emb, n_clusters=2, seed=0)
    shared_dog = set.intersection(*(set(a[f"d{i}"]) for i in range(6)))
    shared_rain = set.intersection(*(set(a[f"r{i}"]) for i in range(6)))
    assert shared_dog and shared_rain and not shared_dog & shared_rain
    frac = interpretable_fraction({"L": [["d0", "d1", "d2", "r0", "r1"],
                                         ["d0", "r0", "d1", "r1", "x"]]},
                                  clip_texts=texts, embedder=emb, n_clusters=2, seed=0)
    assert frac["interpretable"]["L"] == [True, False]


def test_polysemanticity_is_the_minimum_cover():
    assert min_cover([{1, 2}, {2, 3}, {3}]) == 2  # {2, 3}
    assert min_cover([{1}, {2}, {3}, set()]) == 3
    assert min_cover([]) == 0
    labels = {"a": "dog", "b": "dog", "c": "rain", "d": {"x", "y"}, "e": {"y"}}
    assert polysemanticity([["a", "b", "c"], ["d", "e"], ["a", "b"]], labels) == [2, 1, 1]


# ------------------------------------------------------------------ evaluate_run


CAPTION = {"Brass": "A trumpet note, brass family.", "Reed": "A clarinet note, reed family.",
           "Pipe": "A flute note, pipe family."}


def make_run(root, n=45):
    """A tiny finished run: 2 layers x 2 units over n synth-like clips (brass, reed, pipe)."""
    run = root / "run"
    rng = np.random.default_rng(0)
    fams = [("Brass", "Reed", "Pipe")[i % 3] for i in range(n)]
    clips = [{"id": f"clip-{i:03d}", "path": f"/nope/{i}.wav",
              "concepts": {"family": f, "kind": "note", "f0_hz": 440.0, "note": "A4"},
              "labels": {"family": f}} for i, f in enumerate(fams)]
    artifacts.write_jsonl(run / artifacts.CLIPS, clips)
    brass = np.array([f == "Brass" for f in fams], dtype=np.float32)
    acts = {"l1": np.stack([brass * 3 + 0.1 * rng.standard_normal(n),
                            rng.standard_normal(n)], 1),
            "head": np.stack([1 - brass + 0.1 * rng.standard_normal(n), brass], 1)}
    (run / "activations").mkdir(parents=True, exist_ok=True)
    for layer, U in acts.items():
        path = run / "activations" / f"{layer}.safetensors"
        save_file({"values": U.astype(np.float16)}, str(path))
    caps = []
    for c, f in zip(clips, fams, strict=True):
        caps.append({"clip": c["id"], "captioner": "labels", "error": None,
                     "text": CAPTION[f]})
    artifacts.write_jsonl(run / artifacts.CAPTIONS, caps)
    ex, summ, conc = [], [], []
    for layer, U in acts.items():
        for u in range(2):
            order = np.argsort(-U[:, u], kind="stable")
            ex.append({"layer": layer, "unit": u,
                       "top": [{"clip": clips[i]["id"], "value": float(U[i, u])}
                               for i in order[:5]]})
            desc = "brass trumpet" if (layer, u) in (("l1", 0), ("head", 1)) else "reed"
            summ.append({"layer": layer, "unit": u, "calibrated": desc, "llm": "test"})
            conc.append({"layer": layer, "unit": u,
                         "closed": {"db": [["brass", 0.9], ["reed", 0.1]] if desc != "reed"
                                    else [["reed", 0.9], ["brass", 0.1]]},
                         "keywords": {"adjectives": ["loud"] if u == 0 else []}})
    artifacts.write_jsonl(run / artifacts.EXEMPLARS, ex)
    artifacts.write_jsonl(run / artifacts.SUMMARIES, summ)
    artifacts.write_jsonl(run / artifacts.CONCEPTS, conc)
    # the explain stage's shown descriptions of the head (class reed, class brass): an evidence
    # template whose first claim names reed, and "no clear concept", which names nothing
    artifacts.write_jsonl(run / artifacts.EXPLANATIONS, [
        {"layer": "head", "unit": 0, "description": "clarinet note; weaker for trumpet note",
         "kind": "evidence", "no_clear_concept": False, "test": {}, "val": {}, "candidates": []},
        {"layer": "head", "unit": 1, "description": "no clear concept", "kind": "none",
         "no_clear_concept": True, "test": {}, "val": {}, "candidates": []}])
    artifacts.write_jsonl(run / artifacts.EVIDENCE, [
        {"layer": "head", "unit": u, "evidence": [], "sample": {}} for u in range(2)])
    cset = root / "fams.txt"
    cset.write_text("brass\ta trumpet note\tfamily:Brass\nreed\ta clarinet note\tfamily:Reed\n"
                    "pipe\ta flute note\tfamily:Pipe\nstrings\ta violin note\tfamily:Strings\n")
    artifacts.write_text(run / artifacts.CONFIG,
                         f"describe:\n  concept_set: {cset}\n  similarity: cos_cubed\n")
    m = artifacts.Manifest(run)
    m.stages["record"] = {"status": "done",
                          "info": {"head_layer": "head", "class_names": ["reed", "brass"]}}
    m.save()
    return run


def test_evaluate_run_writes_scores(tmp_path):
    run = make_run(tmp_path)
    s = evaluate_run(run, holdout=0.5, embedder=HashEmbedder(), per_neuron=True, n_clusters=2)
    on_disk = json.loads((run / "scores.json").read_text())
    assert on_disk == s
    st = s["settings"]
    assert st["n_holdout"] + st["n_fit"] == 45 and st["refit"] and st["truth"] == "ground_truth"
    assert s["last_layer"]["db"]["top1"] == 100.0 and s["last_layer"]["db"]["n_units"] == 2
    # Table 2 of the shown description: unit 0's first claim is reed's prompt; unit 1 names
    # nothing. (Before, "description" was AND's summary: "reed" and "brass trumpet".)
    assert s["last_layer"]["description"]["top1"] == 50.0
    assert s["last_layer"]["description"]["n_predicted"] == 4  # the set's 4 concepts: no top-5
    assert s["last_layer"]["and_summary"]["n_units"] == 2
    # l1 unit 0 is the brass indicator: its refit top-1 concept is brass, AUPRC 1 on held-out
    assert s["per_neuron"]["l1"]["top1"][0] == "brass"
    assert s["per_neuron"]["l1"]["agreement"][0]["auprc"] == pytest.approx(1.0)
    # its top-10 % clips are brass; other brass clips tie with them (same caption): AUROC < 1
    assert 0.75 < s["per_neuron"]["l1"]["detection_auroc"][0] <= 1.0
    assert s["layers"]["l1"]["interpretable_fraction"] == 1.0
    assert s["layers"]["l1"]["mean_adjectives"] == 0.5
    assert s["layers"]["head"]["mean_poly_clusters"] >= 1
    again = evaluate_run(run, holdout=0.5, embedder=HashEmbedder(), per_neuron=True,
                         n_clusters=2, write=False)
    assert again == s  # deterministic
