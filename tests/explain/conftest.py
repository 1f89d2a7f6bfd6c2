"""Shared toy inputs of the explain tests."""

import numpy as np
import pytest


class HashEmbedder:
    """A fake caption embedder: each text a fixed random 8-d vector (seeded by its hash)."""

    name = "fake"

    def encode(self, texts):
        return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8)
                         for t in texts])


def _toy_clips(n=200, seed=0):
    """``(rng, ids, lab, terms, caps)``: ``n`` clips with one of 4 labels each, as evidence
    terms ``label=l<k>`` and captions "a clip of l<k>"; ``rng`` continues the same stream."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(n)]
    lab = rng.integers(0, 4, n)
    terms = {cid: [f"label=l{lab[i]}"] for i, cid in enumerate(ids)}
    caps = {cid: f"a clip of l{lab[i]}" for i, cid in enumerate(ids)}
    return rng, ids, lab, terms, caps


@pytest.fixture
def toy_clips():
    """:func:`_toy_clips`, as a fixture."""
    return _toy_clips


@pytest.fixture
def hash_embedder():
    return HashEmbedder()
