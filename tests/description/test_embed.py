"""The text embedder's tables: each distinct string embedded once per process and per machine."""

import numpy as np
import pytest

from dissect.description import embed
from dissect.description.embed import TextEmbedder


@pytest.fixture(scope="module")
def texts():
    return ["a dog barks", "rain on a roof", "a dog barks", "", "pitch near C4",
            "ünïcode — bell"]


def test_cache_reuses_the_first_vectors_and_equals_the_model(tmp_path, texts):
    e1 = TextEmbedder(cache_dir=tmp_path)
    v1 = e1.encode(texts)
    assert v1.shape == (6, e1.dim) and v1.dtype == np.float32
    assert e1.computed == 5 and e1.reused == 1  # the repeated string once
    direct = e1.model.encode(texts, convert_to_numpy=True, normalize_embeddings=True,
                             show_progress_bar=False)
    assert np.allclose(v1, direct, atol=1e-5)
    assert np.array_equal(v1[0], v1[2])
    shards = list(e1.cache_dir.glob("*.npz"))
    assert len(shards) == 1
    with np.load(shards[0]) as z:  # hashed keys, no text on disk
        assert z["vecs"].shape == (5, e1.dim) and "a dog barks" not in set(z["keys"].tolist())
    assert np.array_equal(e1.encode(texts[::-1]), v1[::-1]) and e1.computed == 5

    e2 = TextEmbedder(cache_dir=tmp_path)  # a new process: served from disk, bit for bit
    v2 = e2.encode(texts + ["a new one"])
    assert np.array_equal(v2[:6], v1) and e2.computed == 1 and e2.reused == 6
    assert len(list(e2.cache_dir.glob("*.npz"))) == 2

    e3 = TextEmbedder(cache_dir=None)  # memory only: writes nothing
    assert np.allclose(e3.encode(texts), v1, atol=1e-5) and e3.computed == 5
    assert e3.encode([]).shape == (0, e3.dim)


def test_torn_shards_are_misses_and_many_shards_are_merged(tmp_path, monkeypatch):
    monkeypatch.setattr(embed, "MAX_SHARDS", 2)
    e = TextEmbedder(cache_dir=tmp_path)
    for t in ("one", "two", "three"):
        e.encode([t])
    d = e.cache_dir
    assert len(list(d.glob("*.npz"))) == 3
    (d / "torn.npz").write_bytes(b"PK\x03\x04 not a zip")
    e2 = TextEmbedder(cache_dir=tmp_path)
    got = e2.encode(["one", "two", "three"])
    assert e2.computed == 0 and np.array_equal(got, e.encode(["one", "two", "three"]))
    left = list(d.glob("*.npz"))
    assert len(left) == 1 and left[0].name.startswith("merged")
    with np.load(left[0]) as z:
        assert z["vecs"].shape == (3, e.dim)


def test_another_checkpoint_never_reads_these_vectors(tmp_path):
    e = TextEmbedder(cache_dir=tmp_path)
    e.encode(["a dog barks"])
    other = TextEmbedder(path=e.path, cache_dir=tmp_path)
    assert other.cache_dir == e.cache_dir  # same files: same table
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(e.path, copy)
    (copy / "extra.txt").write_text("changed")
    assert TextEmbedder(path=copy, cache_dir=tmp_path).cache_dir != e.cache_dir


def _rewrite_shard(path, keys, vecs, checksum=None):
    import io

    buf = io.BytesIO()
    extra = {} if checksum is False else {
        "sha256": np.asarray(checksum or embed._shard_checksum(keys, vecs))}
    np.savez(buf, keys=keys, vecs=vecs, **extra)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("poison", ["nan_with_checksum", "wrong_checksum", "no_checksum",
                                    "not_unit_norm", "inf"])
def test_poisoned_shards_are_recomputed_never_used(tmp_path, poison):
    """A shard with the right keys and shapes but NaN vectors (the issue's case: it passed the
    shape check and all neurons lost their concepts), a wrong or missing checksum, or vectors
    that are not unit norm is a miss: the model recomputes the vectors."""
    e = TextEmbedder(cache_dir=tmp_path)
    good = e.encode(["a dog barks", "rain"])
    [shard] = list(e.cache_dir.glob("*.npz"))
    with np.load(shard) as z:
        keys, vecs = z["keys"], z["vecs"].copy()
    bad = vecs.copy()
    if poison == "nan_with_checksum":
        bad[0] = np.nan
        _rewrite_shard(shard, keys, bad)  # a correct checksum of garbage: the norm check
    elif poison == "inf":
        bad[1, 0] = np.inf
        _rewrite_shard(shard, keys, bad)
    elif poison == "not_unit_norm":
        bad *= 3.0
        _rewrite_shard(shard, keys, bad)
    elif poison == "wrong_checksum":
        bad[0, 0] += 0.5
        _rewrite_shard(shard, keys, bad, checksum="0" * 64)
    else:
        _rewrite_shard(shard, keys, vecs, checksum=False)
    e2 = TextEmbedder(cache_dir=tmp_path)
    got = e2.encode(["a dog barks", "rain"])
    assert np.isfinite(got).all()
    assert np.allclose(got, good, atol=1e-5)
    expected_recomputed = {"nan_with_checksum": 1, "inf": 1}.get(poison, 2)
    assert e2.computed == expected_recomputed


def test_valid_vectors_hand_computed():
    v = np.array([[1.0, 0.0], [0.6, 0.8], [np.nan, 1.0], [2.0, 0.0], [0.0, 0.0],
                  [np.inf, 0.0]], dtype=np.float32)
    assert embed.valid_vectors(v).tolist() == [True, True, False, False, False, False]
