"""The embedding cache is optional: a disk that cannot take a shard (full, read-only) costs a
warning naming the file, never the stage."""

import errno
import os

import numpy as np
import pytest

from dissect.description import embed
from dissect.description.embed import TextEmbedder


def test_a_failed_cache_write_only_warns_and_returns_the_vectors(tmp_path, monkeypatch):
    texts = ["a dog barks", "rain on a roof", "a dog barks"]
    want = TextEmbedder(cache_dir=None).encode(texts)
    tried = []

    def full(path, data):
        tried.append(path)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(embed, "write_bytes", full)
    e = TextEmbedder(cache_dir=tmp_path)
    with pytest.warns(UserWarning, match="No space left on device") as caught:
        got = e.encode(texts)
    assert np.allclose(got, want, atol=1e-5) and got.shape == (3, e.dim)
    assert len(tried) == 1 and str(tried[0]) in str(caught[0].message)
    assert not list(tmp_path.rglob("*.npz"))  # nothing half-written
    assert np.array_equal(e.encode(texts[:2]), got[:2])  # still served from memory


def test_a_failed_merge_keeps_the_old_shards(tmp_path, monkeypatch):
    """Merging many shards deletes them only once the merged one is written."""
    monkeypatch.setattr(embed, "MAX_SHARDS", 2)
    e = TextEmbedder(cache_dir=tmp_path)
    for t in ("one", "two", "three"):
        e.encode([t])
    before = sorted(p.name for p in e.cache_dir.glob("*.npz"))
    assert len(before) == 3

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(embed, "write_bytes", full)
    e2 = TextEmbedder(cache_dir=tmp_path)
    with pytest.warns(UserWarning, match="cannot write .*merged"):
        got = e2.encode(["one", "two", "three"])
    assert e2.computed == 0 and got.shape == (3, e2.dim)
    assert sorted(p.name for p in e.cache_dir.glob("*.npz")) == before
