"""A tiny deterministic sentence embedder for the evaluate tests (no model download)."""

from __future__ import annotations

import hashlib
import re

import numpy as np


class HashEmbedder:
    """Bag of words: each lowercase word maps to a fixed random unit vector (seeded by its
    hash); a text is the normalised sum. Equal texts embed equally; texts sharing no word are
    nearly orthogonal."""

    name = "hash-bow"

    def __init__(self, dim: int = 64):
        self.dim = dim

    def _word(self, w: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "big")
        v = np.random.default_rng(seed).standard_normal(self.dim)
        return v / np.linalg.norm(v)

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z0-9#]+", str(t).lower()):
                out[i] += self._word(w)
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(n, 1e-12)
