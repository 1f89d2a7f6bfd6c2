"""Table 4's protocol: the split, the choice on the select half only, the random baseline's
equal choice, and the bootstrap intervals against a brute-force loop."""

import math

import numpy as np
import pytest

from dissect.pruning.protocol import (
    choose_size,
    clip_group,
    concept_row,
    delta_stats,
    forget_ratio,
    half_curve,
    interval,
    mean_over_concepts,
    resample_weights,
    split_halves,
)
from dissect.pruning.unlearn import unlearning_report

N = 48
CLASSES = np.array(["a", "b", "c", "d"] * (N // 4), dtype=object)
TARGET = CLASSES == "a"  # the concept's clips: class a
RANKED = [("l", i) for i in range(8)]
SIZES = [1, 2, 4, 8]


def _measures_factory(drops, seed=0):
    """A fake evaluator: ``drops[n] = (target logit drop, rest logit drop, rest acc drop)`` for
    pruning a prefix of length n (per-clip values = that drop plus per-clip noise); returns
    ``measures(neurons)`` as Evaluator.measures does (``()``: unpruned)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(3.0, 0.5, N)
    noise = {n: rng.normal(0, 0.05, N) for n in drops}
    acc0 = np.ones(N)

    def measures(neurons):
        n = len(tuple(neurons))
        if n == 0:
            return {"logit": base.copy(), "prob": 1 / (1 + np.exp(-base)), "acc": acc0.copy()}
        key = tuple(neurons)
        da, dr, dacc = drops[key if key in drops else n]
        logit = base - np.where(TARGET, da, dr) + noise[key if key in noise else n]
        acc = acc0.copy()
        # retained accuracy falls by dacc: that many of every rest class's clips go wrong
        for c in ("b", "c", "d"):
            idx = np.flatnonzero(CLASSES == c)
            acc[idx[: int(round(dacc * len(idx)))]] = 0.0
        return {"logit": logit, "prob": 1 / (1 + np.exp(-logit)), "acc": acc}

    return measures


def _select():
    return split_halves([f"c{i}" for i in range(N)], list(zip(CLASSES, TARGET, strict=True)),
                        seed=0)


def _weights(select, n_boot=200, seed=0):
    return resample_weights([None if s else bool(t) for s, t in zip(select, TARGET, strict=True)],
                            n_boot, seed)


# --------------------------------------------------------------------------- split


def test_split_is_stratified_grouped_deterministic_and_order_free():
    ids = [f"clip{i:03d}" for i in range(60)]
    strata = [f"s{i % 5}" for i in range(60)]
    groups = [f"g{i // 3}" for i in range(60)]  # 20 groups of 3 (one stratum differs inside)
    sel = split_halves(ids, strata, groups, seed=3)
    for g in set(groups):
        sides = {bool(sel[i]) for i in range(60) if groups[i] == g}
        assert len(sides) == 1  # a group is never divided
    for s in set(strata):
        sides = {bool(sel[i]) for i in range(60) if strata[i] == s}
        assert sides == {True, False}  # every stratum in both halves
    assert abs(int(sel.sum()) - 30) <= 6
    assert (split_halves(ids, strata, groups, seed=3) == sel).all()
    perm = np.random.default_rng(0).permutation(60)
    again = split_halves([ids[i] for i in perm], [strata[i] for i in perm],
                         [groups[i] for i in perm], seed=3)
    assert (again == sel[perm]).all()  # the clips' order does not matter
    assert not (split_halves(ids, strata, groups, seed=4) == sel).all()


def test_split_of_the_table_puts_every_class_and_target_in_both_halves():
    sel = _select()
    for c in "abcd":
        assert sel[CLASSES == c].sum() == 6 and (~sel[CLASSES == c]).sum() == 6


# --------------------------------------------------------------------------- choice


# prefix n -> (target drop, rest drop, rest acc drop): the largest gap within a 2-point
# budget is at n = 4 (n = 8 forgets more but costs the rest 25 points of accuracy)
DROPS = {1: (0.2, 0.1, 0.0), 2: (0.6, 0.2, 0.0), 4: (1.5, 0.3, 0.0), 8: (3.0, 0.5, 0.25)}


def test_the_size_is_chosen_on_the_select_half_only():
    select = _select()
    w = _weights(select)
    meas = _measures_factory(DROPS)
    row, _ = concept_row(meas, RANKED, SIZES, {}, TARGET, CLASSES, select, w)
    assert row["choice"]["n"] == 4 and row["choice"]["in_budget"]

    # scramble every report clip's measures for every prefix: the choice cannot move ...
    rng = np.random.default_rng(1)
    junk = {n: rng.normal(0, 5, N) for n in (0, 1, 2, 4, 8)}

    def report_scrambled(neurons):
        m = {k: v.copy() for k, v in meas(neurons).items()}
        n = len(tuple(neurons))
        m["logit"][~select] += junk[n][~select]
        m["acc"][~select] = (junk[n][~select] > 0).astype(float)
        return m

    row2, _ = concept_row(report_scrambled, RANKED, SIZES, {}, TARGET, CLASSES, select, w)
    assert row2["choice"]["n"] == 4
    assert row2["select_curve"] == row["select_curve"]
    # ... while the reported figures, which come from the report half, do move
    assert row2["report"]["logit_delta_A"]["value"] != pytest.approx(
        row["report"]["logit_delta_A"]["value"])

    # the same change on the select half moves the choice: n = 2 now forgets most there
    def select_changed(neurons):
        m = {k: v.copy() for k, v in meas(neurons).items()}
        if len(tuple(neurons)) == 2:
            m["logit"][select & TARGET] -= 5.0
        return m

    row3, _ = concept_row(select_changed, RANKED, SIZES, {}, TARGET, CLASSES, select, w)
    assert row3["choice"]["n"] == 2
    # and so does the select half's retained accuracy (the budget now fails at n = 4)

    def select_acc(neurons):
        m = {k: v.copy() for k, v in meas(neurons).items()}
        if len(tuple(neurons)) == 4:
            m["acc"][select & (CLASSES == "b")] = 0.0
        return m

    row4, _ = concept_row(select_acc, RANKED, SIZES, {}, TARGET, CLASSES, select, w)
    assert row4["choice"]["n"] == 2


def test_no_point_in_the_budget_prunes_nothing_and_still_counts_in_the_mean():
    select = _select()
    w = _weights(select)
    bad = {n: (d[0], d[1], 0.5) for n, d in DROPS.items()}  # every size costs 50 points
    row_bad, raw_bad = concept_row(_measures_factory(bad), RANKED, SIZES, {}, TARGET, CLASSES,
                                   select, w)
    assert row_bad["choice"] == {**row_bad["choice"], "n": 0, "in_budget": False,
                                 "pruned_nothing": "no size within the budget"}
    assert row_bad["report"]["logit_delta_A"]["value"] == 0.0
    assert row_bad["report"]["logit_delta_R"]["value"] == 0.0
    assert row_bad["report"]["logit_ratio"]["value"] is None  # 0 / 0: undefined
    row_ok, raw_ok = concept_row(_measures_factory(DROPS), RANKED, SIZES, {}, TARGET, CLASSES,
                                 select, w)
    mean = mean_over_concepts([raw_ok, raw_bad])
    assert mean["concepts"] == 2
    assert mean["report"]["logit_delta_A"]["value"] == pytest.approx(
        row_ok["report"]["logit_delta_A"]["value"] / 2)


def test_the_random_baseline_gets_the_same_choice_rule():
    select = _select()
    w = _weights(select)
    # seed 7's ranking forgets best at n = 2 (its own curve), seed 8's never within budget
    rk7 = [("l", 100 + i) for i in range(8)]
    rk8 = [("l", 200 + i) for i in range(8)]
    drops = dict(DROPS)
    for n in SIZES:
        drops[tuple(rk7[:n])] = {1: (0.1, 0.1, 0.0), 2: (0.9, 0.1, 0.0), 4: (0.5, 0.4, 0.0),
                                 8: (1.0, 1.0, 0.0)}[n]
        drops[tuple(rk8[:n])] = (0.5, 0.5, 0.5)
    meas = _measures_factory(drops)
    row, raw = concept_row(meas, RANKED, SIZES, {7: rk7, 8: rk8}, TARGET, CLASSES, select, w)
    assert row["choice"]["n"] == 4
    for seed, rk in ((7, rk7), (8, rk8)):
        own = choose_size(half_curve(meas, rk, SIZES, TARGET, CLASSES, select), 0.02)
        assert row["random"]["chosen_n"][str(seed)] == own
    assert row["random"]["chosen_n"] == {"7": 2, "8": 0}
    # reported on the report half at each seed's own size, then averaged over seeds
    rep = ~select
    before = meas(())
    want = []
    for rk, n in ((rk7, 2), (rk8, 0)):
        after = meas(list(rk[:n])) if n else before
        r = unlearning_report({k: v[rep] for k, v in before.items()},
                              {k: v[rep] for k, v in after.items()}, TARGET[rep], CLASSES[rep],
                              per_class=False)
        want.append(r["measures"]["logit"]["class_mean"]["delta_A"])
    assert row["random"]["report"]["logit_delta_A"]["value"] == pytest.approx(np.mean(want))
    # and, as a second comparison, at the selection's size
    assert row["random_at_n"]["n"] == 4
    assert "rnd:logit_delta_A" in raw


def test_fixed_size_chooses_nothing_and_reports_on_every_clip():
    meas = _measures_factory(DROPS)
    w = resample_weights(list(TARGET), 50, 0)
    row, _ = concept_row(meas, RANKED, SIZES, {1: [("l", 50 + i) for i in range(8)]}, TARGET,
                         CLASSES, None, w, fixed_size=8)
    assert row["choice"]["n"] == 8 and row["select_curve"] == []
    assert row["random"]["chosen_n"] == {"1": 8}


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_intervals_equal_a_brute_force_loop():
    rng = np.random.default_rng(5)
    n = 16
    classes = np.array(list("aabbbccddeefffgg"), dtype=object)
    target = np.isin(classes, ["a", "b"])
    groups = [f"g{i // 2}" for i in range(n)]  # pairs of near-duplicates
    before = {"logit": rng.normal(2, 1, n), "acc": (rng.random(n) > 0.3).astype(float)}
    after = {"logit": before["logit"] - rng.normal(0.5, 0.5, n),
             "acc": (rng.random(n) > 0.5).astype(float)}
    select = np.zeros(n, bool)
    select[[2, 3, 8, 9, 12, 13]] = True  # whole groups
    strata = [None if s else bool(t) for s, t in zip(select, target, strict=True)]
    b = 400
    w = resample_weights(strata, b, seed=11, groups=groups)
    assert w.shape == (b, n) and (w[:, select] == 0).all()
    for i in range(0, n, 2):
        assert (w[:, i] == w[:, i + 1]).all()  # a group is drawn whole
    for flag in (True, False):  # every resample draws as many groups as the stratum has
        cols = [i for i in range(0, n, 2) if strata[i] is flag]
        assert (w[:, cols].sum(axis=1) == len(cols)).all()
    assert abs(w[:, ~select].mean() - 1.0) < 0.05
    stats = delta_stats(before, after, target, classes, w)

    loop = {k: [] for k in ("logit_delta_A", "logit_delta_R", "acc_delta_A", "logit_ratio")}
    for row in w:  # the plain definition on the explicitly resampled clips
        idx = np.repeat(np.arange(n), row.astype(int))
        r = unlearning_report({k: v[idx] for k, v in before.items()},
                              {k: v[idx] for k, v in after.items()}, target[idx], classes[idx],
                              per_class=False)["measures"]
        a, d = r["logit"]["class_mean"]["delta_A"], r["logit"]["class_mean"]["delta_R"]
        loop["logit_delta_A"].append(a)
        loop["logit_delta_R"].append(d)
        loop["acc_delta_A"].append(r["acc"]["class_mean"]["delta_A"])
        loop["logit_ratio"].append(a / d if d < 0 else (math.inf if a < 0 else math.nan))
    for k, vals in loop.items():
        np.testing.assert_allclose(stats[k], vals, rtol=1e-12, atol=1e-12)
        ok = np.sort([v for v in vals if not math.isnan(v)])
        lo = ok[math.ceil(0.025 * len(ok)) - 1]  # the empirical 2.5 % and 97.5 % points
        hi = ok[math.ceil(0.975 * len(ok)) - 1]
        iv = interval(stats[k])
        assert (iv["lo"], iv["hi"]) == (pytest.approx(lo), pytest.approx(hi))
        assert iv["lo"] < iv["hi"]  # the resamples vary (classes are not held fixed)
    # the unresampled report half (weights = its 0/1 mask) is the plain report's value
    rep = np.flatnonzero(~select)
    point = delta_stats(before, after, target, classes, (~select).astype(float)[None])
    plain = unlearning_report({k: v[rep] for k, v in before.items()},
                              {k: v[rep] for k, v in after.items()}, target[rep], classes[rep],
                              per_class=False)["measures"]["logit"]["class_mean"]
    assert point["logit_delta_A"][0] == pytest.approx(plain["delta_A"])
    assert (resample_weights(strata, b, seed=11, groups=groups) == w).all()  # seeded


def test_forget_ratio_and_interval_edge_cases():
    r = forget_ratio(np.array([-2.0, -1.0, 0.0, 1.0, 1.0]), np.array([-1.0, 0.0, 0.0, 0.5, -2]))
    assert r[0] == 2.0 and r[1] == math.inf and math.isnan(r[2]) and math.isnan(r[3])
    assert r[4] == -0.5
    iv = interval(np.array([1.0, np.inf, np.inf, np.nan]))
    assert iv["hi"] == math.inf and iv["undefined"] == 0.25
    assert interval(np.array([np.nan]))["lo"] is None


def test_clip_group_is_the_layout_group_else_the_id_never_the_path():
    rows = [{"id": "a/x", "path": "/data/a/x.wav", "metadata": {"group": "src:7"}},
            {"id": "a/y", "path": "/data/a/y.wav", "metadata": {}},
            {"id": "b", "path": "/data/b.wav"}]
    assert [clip_group(r) for r in rows] == ["src:7", "a/y", "b"]
    moved = [{**r, "path": "/elsewhere" + r["path"]} for r in rows]
    ids = [r["id"] for r in rows] * 4
    ids = [f"{c}#{i}" for i, c in enumerate(ids)]
    strata = [i % 2 for i in range(len(ids))]
    groups = [clip_group(rows[i % 3]) for i in range(len(ids))]
    moved_groups = [clip_group(moved[i % 3]) for i in range(len(ids))]
    assert (split_halves(ids, strata, groups) == split_halves(ids, strata, moved_groups)).all()
