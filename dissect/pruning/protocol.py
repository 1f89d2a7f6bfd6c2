"""Table 4's protocol: choose the operating point on one half of the held-out clips, report it
on the other half, with bootstrap intervals.

A pruning table has two things to choose: how many of a selection's ranked neurons to prune
(the prefix size ``n``) and whether a point keeps the retained classes' accuracy within the
budget. Choosing them on the clips the table is reported on makes the table optimistic by an
unknown amount (the maximum of noisy curve points is biased upward). So:

* :func:`split_halves` divides the evaluation clips once, deterministically (``seed``), into a
  ``select`` half and a ``report`` half, stratified (every class and every concept's target
  flag is spread over both halves) and grouped (near-duplicates, e.g. windows of one file or one
  ESC-50 source recording, stay in one half);
* :func:`choose_size` picks the prefix size on the ``select`` half only: the largest forget gap
  ΔR - ΔA (class-mean logits) among the curve points whose retained accuracy falls by at most
  the budget; when no point keeps within it, the size is 0 (nothing pruned), and the concept
  enters every mean as "no pruning" (ΔA = ΔR = 0), never dropped;
* :func:`concept_row` applies the same rule to every seed of the random baseline (each seed's
  own ranking, its own curve on ``select``, its own chosen size) and reports the selection and
  the random baseline on the ``report`` half;
* :func:`resample_weights` draws the bootstrap: the report half's clips are resampled with
  replacement, by near-duplicate group, within the strata of the concepts' target flags (so
  every concept keeps about its number of target and retained clips; classes may drop out
  of a resample, and class means are over the classes present), the same draws for every
  concept, method and seed of a table, so means over concepts and the random baseline's seed
  means are resampled jointly; :func:`interval` gives percentile 95 % intervals. (Strata by
  class would fix every class with one report clip, as most notes of a synth set have: the
  intervals would then show no variation at all.)

Everything here is numpy on per-clip measures (``[N]`` arrays from
:func:`dissect.pruning.unlearn.clip_measures`); no model is run. Units: ``logit`` in logits of the
head, ``prob`` and accuracy (``acc``) as fractions in [0, 1] (tables print accuracy changes in
points, i.e. x100).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

Neuron = tuple[str, int]

#: The curve key the size is chosen by (largest first) and the budget's key.
CHOICE_KEY = "class_logit_forget_gap"
BUDGET_KEY = "class_acc_delta_R"


# --------------------------------------------------------------------------- the split


def _unit(seed: int, key: str) -> float:
    h = hashlib.sha256(f"{seed}:select-report:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_halves(clip_ids: Sequence[str], strata: Sequence[Hashable] | None = None,
                 groups: Sequence[str] | None = None, fraction: float = 0.5,
                 seed: int = 0) -> np.ndarray:
    """Bool ``[N]``: True for the ``select`` half, False for the ``report`` half.

    Groups (``groups[i]``, default: each clip alone) are never divided. A group's stratum is
    the most common stratum of its clips (ties: the smallest ``repr``). Groups are visited
    stratum by stratum (sorted by ``repr``), within a stratum in the order of a SHA-256 hash of
    ``seed`` and the group key, and each goes to the half that is furthest below its share
    (``fraction`` for select) of the stratum's clips so far; ties go to the half furthest below
    its share of all clips, then to ``report``. So every stratum with at least two groups has
    clips in both halves, each half's size is within about one group per stratum of its share,
    and the split depends only on the ids, strata, groups and ``seed`` (not on the clips'
    order).

    Args:
        clip_ids: ``[N]`` unique clip ids.
        strata: ``[N]`` stratum of each clip (any hashable, e.g. ``(class, is_target)``).
        groups: ``[N]`` group key of each clip (near-duplicates share one).
        fraction: the select half's share, in (0, 1).
        seed: the split's seed.

    Raises:
        ValueError: ids not unique, lengths differ, or ``fraction`` outside (0, 1).
    """
    ids = [str(c) for c in clip_ids]
    n = len(ids)
    if len(set(ids)) != n:
        raise ValueError("split_halves: clip ids are not unique")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"select fraction must be in (0, 1), got {fraction}")
    st = list(strata) if strata is not None else [""] * n
    gr = [str(g) for g in groups] if groups is not None else ids
    if len(st) != n or len(gr) != n:
        raise ValueError(f"split_halves: {n} ids but {len(st)} strata and {len(gr)} groups")
    members: dict[str, list[int]] = {}
    for i, g in enumerate(gr):
        members.setdefault(g, []).append(i)
    gstratum = {}
    for g, idx in members.items():
        counts: dict[Hashable, int] = {}
        for i in idx:
            counts[st[i]] = counts.get(st[i], 0) + 1
        gstratum[g] = min(counts, key=lambda s: (-counts[s], repr(s)))
    order = sorted(members, key=lambda g: (repr(gstratum[g]), _unit(seed, g), g))
    sel_s: dict[Hashable, int] = {}
    tot_s: dict[Hashable, int] = {}
    sel_all = tot_all = 0
    out = np.zeros(n, dtype=bool)
    for g in order:
        s, size = gstratum[g], len(members[g])
        ss, ts = sel_s.get(s, 0), tot_s.get(s, 0)
        # deficits after adding the group: how far each half would be below its share
        d_sel = fraction * (ts + size) - ss
        d_rep = (1 - fraction) * (ts + size) - (ts - ss)
        if abs(d_sel - d_rep) < 1e-9:
            d_sel = fraction * (tot_all + size) - sel_all
            d_rep = (1 - fraction) * (tot_all + size) - (tot_all - sel_all)
        to_select = d_sel > d_rep + 1e-9
        if to_select:
            out[members[g]] = True
            sel_s[s] = ss + size
            sel_all += size
        tot_s[s] = ts + size
        tot_all += size
    return out


def clip_group(row: Mapping[str, Any]) -> str:
    """The near-duplicate group of a clip row: ``metadata["group"]`` when the layout sets one
    (ESC-50 source recording, a speaker, a synth instrument-note), else the clip id (one
    audio file; the rule of :mod:`dissect.explain.splits`). Never the file's absolute path:
    the halves would then depend on where the data lie."""
    g = (row.get("metadata") or {}).get("group")
    return str(g) if g not in (None, "") else str(row.get("id"))


# --------------------------------------------------------------------------- the bootstrap


def resample_weights(strata: Sequence[Hashable | None], n_boot: int = 1000, seed: int = 0,
                     groups: Sequence[str] | None = None) -> np.ndarray:
    """``[n_boot, N]`` float clip weights: how often each clip appears in each bootstrap
    resample (0 for clips whose stratum is None, e.g. the select half).

    Resampling is by group (a cluster bootstrap: near-duplicates, ``groups[i]``, default each
    clip alone, are drawn together) within strata: a stratum with G groups gets G draws with
    replacement from its groups, a group's stratum being its first clip's. Rows depend only on
    the strata, groups and ``seed``; strata are visited sorted by ``repr``, groups by key.
    """
    st = list(strata)
    n = len(st)
    gr = [str(g) for g in groups] if groups is not None else [f"#{i}" for i in range(n)]
    if len(gr) != n:
        raise ValueError(f"resample_weights: {n} strata but {len(gr)} groups")
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {}
    for i in range(n):
        if st[i] is not None:
            members.setdefault(gr[i], []).append(i)
    by: dict[Hashable, list[str]] = {}
    for g, idx in members.items():
        by.setdefault(st[idx[0]], []).append(g)
    out = np.zeros((int(n_boot), n), dtype=np.float64)
    for s in sorted(by, key=repr):
        gs = sorted(by[s])
        draws = rng.integers(0, len(gs), size=(int(n_boot), len(gs)))
        counts = np.stack([np.bincount(r, minlength=len(gs)) for r in draws]) \
            if len(gs) else np.zeros((int(n_boot), 0))
        for j, g in enumerate(gs):
            out[:, members[g]] = counts[:, j:j + 1]
    return out


def _weighted_means(values: np.ndarray, side: np.ndarray, classes: np.ndarray,
                    weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(clip_mean [B], class_mean [B])`` of ``values`` over the clips of ``side`` under
    per-resample clip ``weights [B, N]``; NaN where a resample has no clip of the side."""
    w = weights[:, side]
    v = values[side]
    den = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        clip = np.where(den > 0, w @ v / np.where(den > 0, den, 1), np.nan)
    total = np.zeros(weights.shape[0])
    count = np.zeros(weights.shape[0])
    cls = classes[side]
    for c in sorted(set(cls.tolist()), key=repr):
        m = cls == c
        d = w[:, m].sum(axis=1)
        present = d > 0
        total += np.where(present, w[:, m] @ v[m] / np.where(present, d, 1), 0.0)
        count += present
    with np.errstate(invalid="ignore", divide="ignore"):
        klass = np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)
    return clip, klass


def forget_ratio(delta_a: np.ndarray | float, delta_r: np.ndarray | float) -> np.ndarray:
    """The forget ratio ΔA / ΔR (how many times more the target lost than the rest).

    ``ΔR < 0``: ``ΔA / ΔR``; ``ΔR >= 0`` and ``ΔA < 0`` (only the target lost): ``+inf``;
    ``ΔR >= 0`` and ``ΔA >= 0`` (nothing forgotten, e.g. the no-pruning point): NaN
    (undefined). Elementwise on arrays."""
    a = np.asarray(delta_a, dtype=np.float64)
    r = np.asarray(delta_r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(r < 0, a / np.where(r < 0, r, -1.0),
                       np.where(a < 0, np.inf, np.nan))
    return out


def delta_stats(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                in_concept: np.ndarray, classes: Sequence[str],
                weights: np.ndarray) -> dict[str, np.ndarray]:
    """Class-mean ΔA and ΔR of every measure, and the logit forget ratio and gap, under clip
    weights (one row per resample; the unresampled report half is the 0/1 mask, ``[1, N]``).

    Args:
        before, after: per-clip measures ``{name: [N]}`` without and with the pruning.
        in_concept: bool ``[N]`` (target clips).
        classes: ``[N]`` each clip's class (the per-class rows of the class means).
        weights: ``[B, N]`` clip weights (counts of a resample; 0 = not in it).

    Returns:
        ``{f"{m}_delta_A", f"{m}_delta_R" for each measure m, "logit_ratio", "logit_gap"}``,
        each ``[B]``: class means of after - before over target (A) and retained (R) clips, the
        forget ratio (:func:`forget_ratio`) and gap ΔR - ΔA of the logit means.
    """
    tgt = np.asarray(in_concept, dtype=bool)
    cls = np.asarray(list(classes), dtype=object)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    out: dict[str, np.ndarray] = {}
    for name in before:
        d = np.asarray(after[name], dtype=np.float64) - np.asarray(before[name], np.float64)
        out[f"{name}_delta_A"] = _weighted_means(d, tgt, cls, w)[1]
        out[f"{name}_delta_R"] = _weighted_means(d, ~tgt, cls, w)[1]
    if "logit_delta_A" in out:
        out["logit_ratio"] = forget_ratio(out["logit_delta_A"], out["logit_delta_R"])
        out["logit_gap"] = out["logit_delta_R"] - out["logit_delta_A"]
    return out


def interval(values: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Percentile bootstrap interval of ``values [B]``: ``{"lo", "hi", "undefined"}``.

    The bounds are order statistics (``numpy.quantile(..., method="inverted_cdf")``, so an
    infinite ratio stays infinite rather than becoming NaN) at ``(1 - level) / 2`` and
    ``(1 + level) / 2`` of the resamples where the statistic is defined; ``undefined`` is the
    fraction where it is not (NaN: e.g. a forget ratio when neither side lost anything).
    """
    v = np.asarray(values, dtype=np.float64)
    ok = v[~np.isnan(v)]
    und = float(1.0 - len(ok) / len(v)) if len(v) else 1.0
    if not len(ok):
        return {"lo": None, "hi": None, "undefined": und}
    q = np.quantile(ok, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return {"lo": float(q[0]), "hi": float(q[1]), "undefined": und}


# --------------------------------------------------------------------------- the choice


def best_point(curve: Sequence[Mapping[str, Any]], key: str = CHOICE_KEY,
               max_rest_acc_drop: float | None = None) -> Mapping[str, Any] | None:
    """The curve point with the largest ``key`` (ties: fewer neurons); None when no point has
    one.

    ``max_rest_acc_drop`` (a fraction, e.g. 0.02 = 2 points): only points whose retained
    classes' class-mean accuracy (``class_acc_delta_R``) falls by at most this much count
    ("forget the concept, keep the rest"); None when no point keeps within it.
    """
    pts = [p for p in curve if p.get(key) is not None]
    if max_rest_acc_drop is not None:
        pts = [p for p in pts if p.get(BUDGET_KEY) is not None
               and p[BUDGET_KEY] >= -float(max_rest_acc_drop) - 1e-12]
    return max(pts, key=lambda p: (p[key], -p["n"])) if pts else None


def choose_size(curve: Sequence[Mapping[str, Any]], max_rest_acc_drop: float | None = None,
                key: str = CHOICE_KEY) -> int:
    """The prefix size chosen on a (select-half) curve by :func:`best_point`; 0 (prune
    nothing) when no point qualifies."""
    p = best_point(curve, key, max_rest_acc_drop)
    return int(p["n"]) if p is not None else 0


def half_curve(measures: Callable[[Sequence[Neuron]], Mapping[str, np.ndarray]],
               ranked: Sequence[Neuron], sizes: Sequence[int], in_concept: np.ndarray,
               classes: Sequence[str], mask: np.ndarray) -> list[dict[str, Any]]:
    """The forget/retain curve restricted to the clips of ``mask`` (bool ``[N]``): per size n,
    :func:`~dissect.pruning.unlearn.summary_line` (clip and class means) of pruning
    ``ranked[:n]``. Only ``mask``'s entries of the measures are read."""
    from dissect.pruning.unlearn import summary_line, unlearning_report

    m = np.asarray(mask, dtype=bool)
    cls = [c for c, k in zip(classes, m, strict=True) if k]
    before = {k: np.asarray(v)[m] for k, v in measures(()).items()}
    out = []
    for n in sizes:
        after = {k: np.asarray(v)[m] for k, v in measures(list(ranked[:n])).items()}
        rep = unlearning_report(before, after, np.asarray(in_concept)[m], cls, per_class=False)
        out.append({"n": int(n), **summary_line(rep), **summary_line(rep, "class_mean")})
    return out


# --------------------------------------------------------------------------- one row


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _summ(stats: Mapping[str, np.ndarray], point: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """``{stat: {"value", "lo", "hi", "undefined"}}`` from resampled ``stats [B]`` and the
    unresampled ``point [1]``."""
    out = {}
    for k, v in stats.items():
        iv = interval(v)
        out[k] = {"value": _jsonable(float(point[k][0])),
                  "lo": _jsonable(iv["lo"]), "hi": _jsonable(iv["hi"]),
                  "undefined": iv["undefined"]}
    return out


def concept_row(measures: Callable[[Sequence[Neuron]], Mapping[str, np.ndarray]],
                ranked: Sequence[Neuron], sizes: Sequence[int],
                random_rankings: Mapping[int, Sequence[Neuron]], in_concept: np.ndarray,
                classes: Sequence[str], select: np.ndarray | None, weights: np.ndarray,
                *, max_rest_acc_drop: float | None = 0.02, fixed_size: int | None = None
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One Table 4 row: choose on ``select``, report on the rest, with intervals.

    Args:
        measures: per-clip measures of the evaluation clips with a neuron set ablated
            (``{name: [N]}``; ``()`` = the unpruned model), e.g. ``Evaluator.measures``.
        ranked: the selection's ranking; prefixes of it are pruned.
        sizes: candidate prefix sizes (fixed in advance from the selection's size, never from
            the clips).
        random_rankings: seed -> a random ranking (same length and per-layer counts).
        in_concept: bool ``[N]``, the concept's target clips.
        classes: ``[N]`` class of each clip (class means).
        select: bool ``[N]``, the select half (None with ``fixed_size``: every clip reports).
        weights: ``[B, N]`` bootstrap clip counts over the report half
            (:func:`resample_weights`; 0 outside it).
        max_rest_acc_drop: the budget, a fraction of retained accuracy (None: no budget).
        fixed_size: prune this many neurons (capped at the ranking's length) for the selection
            and every random seed; nothing is chosen and there is no select half.

    Returns:
        ``(row, raw)``: ``row`` is JSON-ready (``choice``, ``select_curve``, ``report_curve``,
        ``report``: ``{stat: {value, lo, hi, undefined}}``, ``random``: the same for the seed
        mean at each seed's own chosen size, plus per-seed sizes and point values, and
        ``random_at_n``: the seed mean at the selection's chosen size); ``raw`` holds the
        resampled ``[B]`` statistics (``sel:*``, ``rnd:*``) and the point values (``sel0:*``,
        ``rnd0:*``, ``[1]``) for means over concepts.
    """
    n_all = len(np.asarray(in_concept))
    tgt = np.asarray(in_concept, dtype=bool)
    report = ~np.asarray(select, dtype=bool) if select is not None else np.ones(n_all, bool)
    point_w = report.astype(np.float64)[None, :]
    if fixed_size is not None:
        sizes = [min(int(fixed_size), len(ranked))] if len(ranked) else []
    sizes = [int(s) for s in sizes]

    def pick(rk: Sequence[Neuron]) -> tuple[int, list[dict[str, Any]]]:
        if fixed_size is not None:
            return (sizes[0] if sizes else 0), []
        curve = half_curve(measures, rk, sizes, tgt, classes, np.asarray(select, dtype=bool))
        return choose_size(curve, max_rest_acc_drop), curve

    before = measures(())
    n_sel, sel_curve = pick(ranked)
    rep_curve = half_curve(measures, ranked, sizes, tgt, classes, report)
    after = measures(list(ranked[:n_sel])) if n_sel else before
    sel_b = delta_stats(before, after, tgt, classes, weights)
    sel_0 = delta_stats(before, after, tgt, classes, point_w)

    rnd_n: dict[int, int] = {}
    rnd_b: list[dict[str, np.ndarray]] = []
    rnd_0: list[dict[str, np.ndarray]] = []
    at_b: list[dict[str, np.ndarray]] = []
    at_0: list[dict[str, np.ndarray]] = []
    for seed, rk in random_rankings.items():
        n_r, _ = pick(rk)
        rnd_n[int(seed)] = n_r
        aft = measures(list(rk[:n_r])) if n_r else before
        rnd_b.append(delta_stats(before, aft, tgt, classes, weights))
        rnd_0.append(delta_stats(before, aft, tgt, classes, point_w))
        aft_n = measures(list(rk[:n_sel])) if n_sel else before
        at_b.append(delta_stats(before, aft_n, tgt, classes, weights))
        at_0.append(delta_stats(before, aft_n, tgt, classes, point_w))

    def seed_mean(per_seed: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        keys = [k for k in per_seed[0] if k not in ("logit_ratio", "logit_gap")]
        out = {k: np.mean([s[k] for s in per_seed], axis=0) for k in keys}
        out["logit_ratio"] = forget_ratio(out["logit_delta_A"], out["logit_delta_R"])
        out["logit_gap"] = out["logit_delta_R"] - out["logit_delta_A"]
        return out

    row: dict[str, Any] = {
        "sizes": sizes,
        "choice": {
            "rule": ("fixed in advance" if fixed_size is not None else
                     f"largest {CHOICE_KEY} on the select half among sizes whose "
                     f"{BUDGET_KEY} >= -{max_rest_acc_drop}; none: 0 (no pruning)"
                     if max_rest_acc_drop is not None else
                     f"largest {CHOICE_KEY} on the select half"),
            "max_rest_acc_drop": max_rest_acc_drop, "fixed_size": fixed_size,
            "n": n_sel, "in_budget": bool(n_sel) or fixed_size is not None,
            # why nothing is pruned, when it is not: no candidate size, or none in the budget
            "pruned_nothing": (None if n_sel else "nothing selected" if not sizes
                               else "no size within the budget"),
        },
        "select_curve": sel_curve,
        "report_curve": rep_curve,
        "report": _summ(sel_b, sel_0),
        "random": None, "random_at_n": None,
    }
    raw = {**{f"sel:{k}": v for k, v in sel_b.items()},
           **{f"sel0:{k}": v for k, v in sel_0.items()}}
    if rnd_b:
        mb, m0 = seed_mean(rnd_b), seed_mean(rnd_0)
        row["random"] = {
            "seeds": sorted(rnd_n), "chosen_n": {str(k): v for k, v in rnd_n.items()},
            "report": _summ(mb, m0),
            "per_seed": {str(s): {k: _jsonable(float(v[0])) for k, v in p.items()}
                         for s, p in zip(random_rankings, rnd_0, strict=True)},
            "seed_std": {k: _jsonable(float(np.nanstd([p[k][0] for p in rnd_0])))
                         if any(np.isfinite(p[k][0]) for p in rnd_0) else None
                         for k in rnd_0[0]},
        }
        row["random_at_n"] = {"n": n_sel, "report": _summ(seed_mean(at_b), seed_mean(at_0))}
        raw.update({f"rnd:{k}": v for k, v in mb.items()})
        raw.update({f"rnd0:{k}": v for k, v in m0.items()})
    return row, raw


def mean_over_concepts(raws: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Mean over concepts of ΔA and ΔR (every measure), with the ratio and gap of the means,
    for the selection (``report``) and the random baseline (``random``), with intervals from
    the joint resamples (every row's ``raw`` from :func:`concept_row` with the same weights).
    Every concept counts, a concept without a point in the budget with its no-pruning zeros."""
    out: dict[str, Any] = {"concepts": len(raws)}
    for side, pre in (("report", "sel"), ("random", "rnd")):
        if not raws or any(f"{pre}:logit_delta_A" not in r for r in raws):
            out[side] = None
            continue
        keys = [k.split(":", 1)[1] for k in raws[0] if k.startswith(f"{pre}:")
                and not k.endswith(("_ratio", "_gap"))]
        b = {k: np.mean([r[f"{pre}:{k}"] for r in raws], axis=0) for k in keys}
        p = {k: np.mean([r[f"{pre}0:{k}"] for r in raws], axis=0) for k in keys}
        for d in (b, p):
            d["logit_ratio"] = forget_ratio(d["logit_delta_A"], d["logit_delta_R"])
            d["logit_gap"] = d["logit_delta_R"] - d["logit_delta_A"]
        out[side] = _summ(b, p)
    return out
