"""Fit / validation / test splits: stratified by label, groups kept together, deterministic."""

import numpy as np
import pytest

from dissect.explain.splits import assign_splits, split_keys


def test_splits_are_deterministic_order_free_and_near_the_fractions():
    ids = [f"clip{i}" for i in range(3000)]
    s = assign_splits(ids, (0.6, 0.2, 0.2), seed=0)
    assert list(assign_splits(ids[::-1], (0.6, 0.2, 0.2), seed=0)) == list(s[::-1])
    frac = {k: float(np.mean(s == k)) for k in ("fit", "val", "test")}
    assert frac["fit"] == pytest.approx(0.6, abs=0.03)
    assert frac["val"] == pytest.approx(0.2, abs=0.03)
    assert (assign_splits(ids, (0.6, 0.2, 0.2), seed=1) != s).any()
    with pytest.raises(ValueError, match="summing to 1"):
        assign_splits(ids, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="multiples of 1/20"):
        assign_splits(ids, (0.61, 0.2, 0.19))


def test_stratified_grouped_split_keeps_every_group_in_one_split():
    rng = np.random.default_rng(0)
    n = 720
    ids = [f"c{i}" for i in range(n)]
    labels = [f"note{i % 72}" for i in range(n)]  # 72 labels of 10 clips
    groups = [f"{labels[i]}:inst{rng.integers(0, 5)}" for i in range(n)]  # instrument-notes
    s = assign_splits(ids, (0.6, 0.2, 0.2), 0, labels, groups)
    for g in set(groups):
        assert len({s[i] for i in range(n) if groups[i] == g}) == 1, g
    # stratified: far more labels reach every split than a per-clip hash of 10-clip labels
    # whose renderings cluster would give
    every = sum(all((s[[i for i in range(n) if labels[i] == lab]] == k).any()
                    for k in ("fit", "val", "test")) for lab in set(labels))
    assert every >= 55
    order = list(range(n))[::-1]
    s2 = assign_splits([ids[i] for i in order], (0.6, 0.2, 0.2), 0,
                       [labels[i] for i in order], [groups[i] for i in order])
    assert list(s2) == [s[i] for i in order]


def test_split_keys_read_the_layouts_group_and_stratum():
    rows = [{"id": "a", "path": "/x/a.wav", "labels": {"category": "dog", "target": 0},
             "metadata": {"group": "src:1"}},
            {"id": "b", "path": "/x/b.wav", "labels": {}, "metadata": {"stratum": "midi:60"}},
            {"id": "c", "path": "/x/long.wav", "labels": {"tags": ["Rain", "Wind"]}}]
    assert split_keys(rows) == (["dog", "midi:60", "Rain"], ["src:1", "b", "c"])
    # no group: the clip id, so the same data under another root split the same way
    moved = [{**r, "path": "/elsewhere" + r["path"]} for r in rows]
    assert split_keys(moved) == split_keys(rows)
