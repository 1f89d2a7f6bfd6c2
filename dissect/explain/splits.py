"""Fit / validation / test splits of a probe set: stratified by label, groups kept together.

Evidence is found on ``fit`` clips, the shown description is chosen on ``val`` clips and its
score is reported on ``test`` clips. Two things make such a split honest:

* **stratified**: every label value is spread over the three splits in the split's proportions
  (a hash of the clip id left 22 of the 72 notes of the default set without a test clip);
* **grouped**: near-duplicates stay in one split (renderings of one synth instrument-note, the
  clips cut from one ESC-50 source recording, one speaker's takes when the label is the digit,
  the windows of one file): otherwise a description "confirmed" on validation may only have
  recognised a near-copy of a fit clip.

The assignment is scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold` over
``k`` folds (``k`` the smallest number making every fraction a whole number of folds: 5 for
``(0.6, 0.2, 0.2)``), folds given to the splits in order; clips are sorted by id first, so the
split depends on the clip ids, labels, groups and ``seed`` only, not on the order clips come in.
With fewer groups than folds it falls back to a hash of each group's key.

Each clip's stratum and group come from its ``clips.jsonl`` row (:func:`split_keys`): the group
is the layout's ``metadata["group"]`` (ESC-50 ``src_file``, UrbanSound8K ``fsID``, a synth
instrument-note, a speaker of a digits set) or else the clip id (one clip is one audio file, so
its windows are one group; never the absolute path, which differs between machines); the
stratum is the clip's first label value.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SPLITS = ("fit", "val", "test")
#: Largest number of folds a split's fractions may need (multiples of 1/20).
MAX_FOLDS = 20


def _folds(fractions: Sequence[float]) -> tuple[int, list[int]]:
    """``(k, folds per split)``: the fewest equal folds that make every fraction whole."""
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, "
                         f"got {list(fractions)}")
    for k in range(2, MAX_FOLDS + 1):
        n = f * k
        if np.allclose(n, np.round(n), atol=1e-9):
            return k, [int(round(x)) for x in n]
    raise ValueError(f"split fractions {list(fractions)} are not multiples of 1/{MAX_FOLDS} "
                     "(e.g. 0.6/0.2/0.2 or 0.7/0.15/0.15)")


def _unit(seed: int, key: str) -> float:
    h = hashlib.sha256(f"{seed}:split:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def assign_splits(clip_ids: Sequence[str], fractions: Sequence[float] = (0.6, 0.2, 0.2),
                  seed: int = 0, labels: Sequence[Any] | None = None,
                  groups: Sequence[Any] | None = None) -> np.ndarray:
    """``[N]`` array of ``"fit"`` / ``"val"`` / ``"test"``.

    Args:
        clip_ids: ``[N]`` unique clip ids.
        fractions: the three splits' shares of the clips.
        seed: the split's seed.
        labels: ``[N]`` stratum of each clip (None: one stratum).
        groups: ``[N]`` group key of each clip (None: every clip its own group); a group is
            never divided between splits.
    """
    ids = [str(c) for c in clip_ids]
    n = len(ids)
    k, per_split = _folds(fractions)
    if len(set(ids)) != n:
        raise ValueError("assign_splits: clip ids are not unique")
    lab = [("" if x is None else str(x)) for x in (labels if labels is not None else [""] * n)]
    grp = [("" if x is None else str(x)) for x in (groups if groups is not None else ids)]
    if len(lab) != n or len(grp) != n:
        raise ValueError(f"assign_splits: {n} clip ids but {len(lab)} labels and {len(grp)} "
                         "groups")
    grp = [g if g else cid for g, cid in zip(grp, ids, strict=True)]  # no key: its own group
    fold_split = np.repeat(np.arange(3), per_split)  # fold -> split index
    out = np.empty(n, dtype=object)
    order = sorted(range(n), key=lambda i: ids[i])
    uniq_groups = sorted(set(grp))
    sizes = {}
    for x in lab:
        sizes[x] = sizes.get(x, 0) + 1
    # too few groups, or every stratum smaller than the folds (sklearn refuses): by group hash
    if len(uniq_groups) < k or max(sizes.values(), default=0) < k:
        edges = np.cumsum(np.asarray(fractions, dtype=np.float64))
        for i in range(n):
            u = _unit(seed, grp[i])
            out[i] = SPLITS[int(np.searchsorted(edges, u, side="right").clip(0, 2))]
        return out
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray([lab[i] for i in order], dtype=object)
    g = np.asarray([grp[i] for i in order], dtype=object)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(seed) % 2**32)
    with warnings.catch_warnings():  # "least populated class has only m members": expected
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, test_idx) in enumerate(cv.split(np.zeros(n), y, g)):
            for j in test_idx:
                out[order[j]] = SPLITS[fold_split[fold]]
    return out


def split_keys(clips: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """``(strata, groups)`` of ``clips.jsonl`` rows for :func:`assign_splits`.

    The stratum is ``metadata["stratum"]`` when the layout sets one (a synth note: its MIDI
    note), else the clip's first label value (a list: its first item; no labels: ``""``).
    The group is ``metadata["group"]`` when the layout sets one, else the clip id (one clip is
    one audio file, and its windows stay together; the id, unlike the file's absolute path,
    is the same on every machine, so the split does not depend on where the data lie).
    """
    strata, groups = [], []
    for c in clips:
        labels = c.get("labels") or {}
        first = next(iter(labels.values()), "") if labels else ""
        if isinstance(first, list):
            first = first[0] if first else ""
        meta = c.get("metadata") or {}
        strata.append(str(meta.get("stratum") or first))
        g = meta.get("group")
        groups.append(str(g) if g not in (None, "") else str(c.get("id")))
    return strata, groups
