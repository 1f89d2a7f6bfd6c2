"""Tags named at the right level of the AudioSet ontology (:mod:`dissect.description.ontology`,
:func:`dissect.description.captioners.tagger.tag_terms`), chosen by the evidence ranking."""

import numpy as np

from dissect.description.captioners.tagger import pool, tag_terms
from dissect.description.ontology import ancestors
from dissect.explain.candidates import term_matrix
from dissect.explain.evidence import associate, ranked_evidence

LIVESTOCK = "Livestock, farm animals, working animals"


def test_ancestors_nearest_first():
    assert ancestors("Dog") == ["Domestic animals, pets", "Animal"]
    assert ancestors("Bark") == ["Dog", "Domestic animals, pets", "Animal"]
    assert ancestors("Snare drum", levels=1) == ["Drum"]
    assert ancestors("Animal") == [] and ancestors("not a class") == []


def test_tag_terms_add_each_ancestor_once():
    assert tag_terms(["Dog", "Cat"]) == [
        "audioset_tag=Dog", "audioset_tag=Cat", "audioset_tag=Domestic animals, pets",
        "audioset_tag=Animal"]
    assert tag_terms(["Dog"], with_ancestors=False) == ["audioset_tag=Dog"]


def test_the_level_is_chosen_by_the_evidence():
    """A unit firing for three livestock siblings is named by their parent; a unit firing for
    one of them by that class; the same ranking decides both."""
    classes = ["Horse", "Cattle, bovinae", "Pig", "Dog", "Cat", "Speech", "Guitar"]
    assert all(LIVESTOCK in ancestors(c) for c in classes[:3])
    ids, terms = [], {}
    for c in classes:
        for i in range(12):
            cid = f"{c}-{i}"
            ids.append(cid)
            terms[cid] = tag_terms([c])
    names, X = term_matrix(ids, terms)
    rng = np.random.default_rng(0)
    label = np.array([cid.rsplit("-", 1)[0] for cid in ids])
    siblings = np.isin(label, classes[:3]).astype(float)
    horse = (label == "Horse").astype(float)
    A = np.stack([siblings, horse], 1) + 0.1 * rng.standard_normal((len(ids), 2))
    ev = ranked_evidence(associate(A, X), names)
    assert ev[0][0].term == f"audioset_tag={LIVESTOCK}"
    assert ev[1][0].term == "audioset_tag=Horse"


def test_pooling_lets_a_short_event_count():
    p = np.array([[0.9, 0.1], [0.1, 0.1], [0.1, 0.1], [0.1, 0.4], [0.1, 0.4]], np.float32)
    np.testing.assert_allclose(pool(p, "mean"), [0.26, 0.22], atol=1e-6)
    np.testing.assert_allclose(pool(p, "max"), [0.9, 0.4], atol=1e-6)
    np.testing.assert_allclose(pool(p, "top3"), [(0.9 + 0.1 + 0.1) / 3, 0.3], atol=1e-6)
    np.testing.assert_allclose(pool(p[:2], "top3"), [0.5, 0.1], atol=1e-6)
