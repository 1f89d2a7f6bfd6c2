"""Neuron selection: lemma match (never substring), closed-set top-k, embedding, random baseline."""

from collections import Counter

import numpy as np
import pytest

from dissect.pruning.select import (
    random_like,
    select_by_concept,
    select_by_embedding,
    select_by_evidence,
    select_by_keyword,
    select_neurons,
)

ROWS = [
    {"layer": "l1", "unit": 0, "description": "A train passing by on the tracks."},
    {"layer": "l1", "unit": 1, "description": "Heavy rain falling on a roof."},
    {"layer": "l1", "unit": 2, "description": "Dogs barking loudly."},
    {"layer": "l2", "unit": 0, "description": "Water going down a drain; a brain scan beep."},
    {"layer": "l2", "unit": 1, "description": "A single dog."},
    {"layer": "l2", "unit": 2, "description": "A high-pitched whistle, then a dog and a dog."},
    {"layer": "l2", "unit": 3, "description": "Quiet hum.", "keywords": {"nouns": ["rains"]}},
]


@pytest.fixture(scope="module")
def nlp():
    from dissect.description.keywords import load_nlp

    return load_nlp()


def test_lemma_match_is_never_substring(nlp):
    assert select_by_keyword(ROWS, "rain", nlp=nlp) == [("l1", 1), ("l2", 3)]  # not train/drain
    assert ("l1", 0) in select_by_keyword(ROWS, "train", nlp=nlp)
    assert select_by_keyword(ROWS, "train", nlp=nlp) == [("l1", 0)]


def test_plural_matches_lemma(nlp):
    assert select_by_keyword(ROWS, "dog", nlp=nlp) == [("l1", 2), ("l2", 1), ("l2", 2)]
    assert select_by_keyword(ROWS, "dogs", nlp=nlp) == [("l1", 2), ("l2", 1), ("l2", 2)]


def test_multiword_and_hyphen_phrases(nlp):
    assert select_by_keyword(ROWS, "high pitch", nlp=nlp) == [("l2", 2)]
    assert select_by_keyword(ROWS, "pitch high", nlp=nlp) == []
    assert select_by_keyword(ROWS, "whistle", terms=["hum"], nlp=nlp) == [("l2", 2), ("l2", 3)]
    assert select_by_keyword(ROWS, "dog", nlp=nlp, layers=["l2"]) == [("l2", 1), ("l2", 2)]


def test_keyword_ranking_counts_then_position(nlp):
    sel = select_neurons(ROWS, "dog", "keyword", nlp=nlp)
    assert sel.ranked[0] == ("l2", 2)  # two mentions
    assert sel.ranked[1:] == [("l1", 2), ("l2", 1)]  # one mention each: earlier position first
    assert sel.neurons == sorted(sel.ranked) and sel.per_layer() == {"l1": 1, "l2": 2}


CLOSED = [
    {"layer": "a", "unit": 0, "closed": {"db": [["C5", 0.9], ["brass", 0.5], ["D5", 0.1]]}},
    {"layer": "a", "unit": 1, "closed": {"db": [["E2", 0.9], ["F2", 0.5], ["C5", 0.4]]}},
    {"layer": "b", "unit": 0, "closed": {"db": [["pink noise", 0.9], ["x", 0.5], ["y", 0.1],
                                                ["C5", 0.05]]}},
    {"layer": "b", "unit": 1, "closed": {"tab": [["C5", 0.9]]}},
]


def test_concept_among_top_k():
    assert select_by_concept(CLOSED, "C5", top_k=3) == [("a", 0), ("a", 1)]
    assert select_by_concept(CLOSED, "C5", top_k=1) == [("a", 0)]
    assert select_by_concept(CLOSED, "c5", top_k=4) == [("a", 0), ("a", 1), ("b", 0)]
    assert select_by_concept(CLOSED, ["pink_noise", "brass"], top_k=2) == [("a", 0), ("b", 0)]
    assert select_by_concept(CLOSED, "C5", method="tab", top_k=1) == [("b", 1)]
    sel = select_neurons(CLOSED, "C5", "concept", top_k=4)
    assert sel.ranked == [("a", 0), ("a", 1), ("b", 0)]


class WordEmbedder:
    """Bag of words over a fixed vocabulary (exact, so cosines are known)."""

    vocab = ["dog", "train", "rain", "high", "whistle"]

    def encode(self, texts):
        out = np.zeros((len(texts), len(self.vocab)), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(".", " ").replace("-", " ").split():
                w = w.rstrip("s")
                if w in self.vocab:
                    out[i, self.vocab.index(w)] += 1
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(n, 1e-12)


def test_embedding_threshold():
    rows = [{"layer": "x", "unit": i, "description": d}
            for i, d in enumerate(["dog dog", "dog train", "rain", ""])]
    got, scores = select_by_embedding(rows, "dog", threshold=0.7, embedder=WordEmbedder(),
                                      return_scores=True)
    assert got == [("x", 0), ("x", 1)]
    assert scores[("x", 0)] == pytest.approx(1.0) and scores[("x", 1)] == pytest.approx(2**-0.5)
    sel = select_neurons(rows, "dog", "embedding", threshold=0.75, embedder=WordEmbedder())
    assert sel.ranked == [("x", 0)]


def test_random_like_matched_and_global():
    ranked = [("a", 0), ("b", 3), ("a", 1), ("a", 2), ("b", 0)]
    units = {"a": 10, "b": 5, "c": 7}
    r1 = random_like(ranked, units, seed=3)
    assert r1 == random_like(ranked, units, seed=3)  # deterministic
    assert r1 != random_like(ranked, units, seed=4)
    assert [lay for lay, _ in r1] == [lay for lay, _ in ranked]  # every prefix matches layers
    assert len(set(r1)) == len(r1) and all(0 <= u < units[lay] for lay, u in r1)
    g = random_like(ranked, units, seed=0, mode="global")
    assert len(g) == 5 and len(set(g)) == 5 and all(0 <= u < units[lay] for lay, u in g)
    counts = Counter(lay for s in range(300) for lay, _ in random_like(ranked, units, s,
                                                                       mode="global"))
    assert counts["a"] > counts["c"] > counts["b"]  # proportional to layer size
    with pytest.raises(ValueError):
        random_like([("b", 0)] * 6, units, seed=0)


def test_underscore_concept_ids_match_their_words(nlp):
    rows = [{"layer": "l", "unit": 0, "description": "Water drops fall into a bucket."},
            {"layer": "l", "unit": 1, "description": "Dripping water drops, steady."},
            {"layer": "l", "unit": 2, "description": "A dog.",
             "keywords": {"nouns": ["water drop"]}}]
    # "water_drops" used to be one token and match nothing; "drops" is tagged AUX in unit 0,
    # so its lemma stays "drops": the surface form must count too
    assert select_by_keyword(rows, "water_drops", nlp=nlp) == [("l", 0), ("l", 1), ("l", 2)]
    assert select_by_keyword(rows, "water-drops", nlp=nlp) == [("l", 0), ("l", 1), ("l", 2)]


def test_negated_mentions_do_not_select(nlp):
    rows = [{"layer": "l", "unit": 0, "description": "There is no dog barking here."},
            {"layer": "l", "unit": 1, "description": "Not a dog. A dog barks loudly."},
            {"layer": "l", "unit": 2, "description": "Without any loud dog."},
            {"layer": "l", "unit": 3, "description": "No noise at all, but then a calm dog."}]
    assert select_by_keyword(rows, "dog", nlp=nlp) == [("l", 1), ("l", 3)]
    # unit 1 counts its second, unnegated mention only; unit 3's "No" is 8 tokens before
    _, scores = select_by_keyword(rows, "dog", nlp=nlp, return_scores=True)
    assert scores[("l", 1)][0] == 1
    # a window of 1 only catches "no dog"; window 0 turns the check off
    assert select_by_keyword(rows, "dog", nlp=nlp, negation_window=1) == [("l", 1), ("l", 2),
                                                                         ("l", 3)]
    assert len(select_by_keyword(rows, "dog", nlp=nlp, negation_window=0)) == 4


def _shown(*terms):
    return {"text": "x", "kind": "evidence",
            "terms": [{"term": t, "effect": e, "auroc": a} for t, e, a in terms]}


EVID = [
    {"layer": "a", "unit": 0, "shown": _shown(("audioset=Snare drum", 1.5, 0.9),
                                             ("category=snare_drum", 1.4, 0.8))},
    {"layer": "a", "unit": 1, "shown": _shown(("audioset=Hi-hat", 2.0, 0.95),
                                             ("audioset=Snare drum", 2.5, 0.7))},
    {"layer": "b", "unit": 0, "shown": _shown(("category=snare_drum", 0.9, 0.99))},
    {"layer": "b", "unit": 1, "shown": _shown(("audioset=Snare drum", -0.2, 0.4))},
    {"layer": "b", "unit": 2, "shown": None, "description": "Snare drum"},
    {"layer": "b", "unit": 3, "shown": _shown(("pitch=snare drum roll", 3.0, 0.9))},
]


def test_evidence_selects_shown_terms_ranked_by_effect():
    """A shown term whose value is the concept (case, _ and spaces ignored) selects; ranked by
    its effect size; position limited by top_k; a negative effect or no shown description
    never selects, and neither does a longer value that only contains the concept."""
    assert select_by_evidence(EVID, "Snare drum") == [("a", 0), ("a", 1), ("b", 0)]
    _, sc = select_by_evidence(EVID, "snare_drum", return_scores=True)
    assert sc[("a", 1)] == (2.5, 0.7, 1)  # the best matching term of the neuron
    assert sc[("a", 0)] == (1.5, 0.9, 0)
    assert select_by_evidence(EVID, "Snare drum", top_k=1) == [("a", 0), ("b", 0)]
    assert select_by_evidence(EVID, "Snare drum", min_effect=1.0) == [("a", 0), ("a", 1)]
    sel = select_neurons(EVID, "snare", "evidence", concepts=["Snare drum"], top_k=None)
    assert sel.ranked == [("a", 1), ("a", 0), ("b", 0)]
    assert sel.scores == {("a", 1): 2.5, ("a", 0): 1.5, ("b", 0): 0.9}
    assert select_neurons(EVID, "Snare drum", "evidence", top_k=None,
                          max_neurons=1).ranked == [("a", 1)]
