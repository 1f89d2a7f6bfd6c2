"""Streaming reducers equal brute force on random data, and merge exactly."""

import math

import numpy as np
import pytest
import torch

from dissect.recording.reducers import LogHistogram, Moments, TopK


def brute_topk(values, k, largest):
    """Reference: per unit, sort (value, clip index) with ties by lower index."""
    N, U = values.shape
    out_v, out_i = np.zeros((min(k, N), U)), np.zeros((min(k, N), U), dtype=np.int64)
    for u in range(U):
        keyed = sorted(range(N), key=lambda i: ((-values[i, u]) if largest else values[i, u], i))
        out_i[:, u] = keyed[:k]
        out_v[:, u] = values[keyed[:k], u]
    return out_v, out_i


def stream(values, batch, k, largest, perm=None):
    N, U = values.shape
    order = np.arange(N) if perm is None else perm
    t = TopK(k, U, largest)
    for s in range(0, N, batch):
        idx = order[s : s + batch]
        t.update(torch.tensor(values[idx]), torch.tensor(idx), torch.tensor(values[idx] * 10))
    return t


@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_brute_force(largest):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(203, 17)).astype(np.float32)
    v[50:60, 3] = 1.5  # ties: resolved by lower clip index
    t = stream(v, 16, 7, largest)
    ref_v, ref_i = brute_topk(v, 7, largest)
    np.testing.assert_array_equal(t.index.numpy(), ref_i)
    np.testing.assert_array_equal(t.values.numpy(), ref_v.astype(np.float32))
    np.testing.assert_array_equal(t.peak_ms.numpy(), (ref_v * 10).astype(np.float32))


def test_topk_independent_of_order_and_batch_size():
    rng = np.random.default_rng(1)
    v = rng.integers(0, 5, size=(100, 6)).astype(np.float32)  # many ties
    a = stream(v, 7, 5, True)
    b = stream(v, 33, 5, True, perm=rng.permutation(100))
    assert torch.equal(a.index, b.index) and torch.equal(a.values, b.values)


def test_topk_merge_equals_one_pass_and_is_associative():
    rng = np.random.default_rng(2)
    v = rng.normal(size=(90, 8)).astype(np.float32)
    whole = stream(v, 10, 5, False)
    parts = []
    for lo, hi in [(0, 30), (30, 60), (60, 90)]:
        t = TopK(5, 8, False)
        t.update(torch.tensor(v[lo:hi]), torch.arange(lo, hi))
        parts.append(t)
    left = parts[0].merge(parts[1]).merge(parts[2])
    right = parts[0].merge(parts[1].merge(parts[2]))
    for m in (left, right):
        assert torch.equal(m.index, whole.index) and torch.equal(m.values, whole.values)
    with pytest.raises(ValueError):
        parts[0].merge(TopK(4, 8, False))


def test_topk_fewer_clips_than_k():
    t = TopK(10, 3)
    t.update(torch.tensor([[1.0, 2, 3], [4, 5, 0]]), torch.tensor([7, 9]))
    assert t.values.shape == (2, 3) and t.index[:, 2].tolist() == [7, 9]


def test_moments_match_numpy_and_merge():
    rng = np.random.default_rng(3)
    v = rng.normal(3.0, 2.0, size=(500, 4))
    m = Moments(4)
    for s in range(0, 500, 37):
        m.update(torch.tensor(v[s : s + 37]))
    np.testing.assert_allclose(m.mean.numpy(), v.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.var.numpy(), v.var(0), rtol=1e-10)
    np.testing.assert_array_equal(m.min.numpy(), v.min(0))
    np.testing.assert_array_equal(m.max.numpy(), v.max(0))
    a, b = Moments(4), Moments(4)
    a.update(torch.tensor(v[:123]))
    b.update(torch.tensor(v[123:]))
    merged = a.merge(b)
    np.testing.assert_allclose(merged.mean.numpy(), v.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.std.numpy(), v.std(0), rtol=1e-10)
    assert merged.count.tolist() == [500.0] * 4
    assert math.isnan(Moments(1).var.item())


def test_histogram_quantiles_within_alpha_and_exact_merge():
    rng = np.random.default_rng(4)
    v = np.concatenate([rng.lognormal(0, 2, size=(3000, 2)),
                        -rng.lognormal(1, 1, size=(1000, 2))]).astype(np.float32)
    v[:100, 1] = 0.0
    h = LogHistogram(2, alpha=0.02)
    for s in range(0, len(v), 256):
        h.update(torch.tensor(v[s : s + 256]))
    assert h.counts.sum().item() == v.size
    qs = [0.01, 0.1, 0.25, 0.5, 0.9, 0.99]
    est = h.quantiles(torch.tensor(qs)).numpy()
    for j, q in enumerate(qs):
        for u in range(2):
            exact = np.sort(v[:, u])[int(np.ceil(q * len(v))) - 1]
            assert abs(est[j, u] - exact) <= 0.02 * abs(exact) + 1e-6, (q, u, est[j, u], exact)
    a, b = LogHistogram(2), LogHistogram(2)
    a.update(torch.tensor(v[:1234]))
    b.update(torch.tensor(v[1234:]))
    assert torch.equal(a.merge(b).counts, h.counts)
    assert np.isnan(LogHistogram(1).quantiles(torch.tensor([0.5])).numpy()).all()
