"""AND's Table 4 on a finished run: for several concepts and selection methods, forget the
concept, keep the rest, against a random baseline given the same choice.

:func:`prune_table` is what ``dissect prune`` runs (one concept is a table of one row) and what
``benchmarks/and_table4.py`` wraps. For every concept and method it selects the concept's neurons
from the run's descriptions (:func:`~dissect.pruning.select.select_neurons`), and then follows
the protocol of :mod:`dissect.pruning.protocol` on the run's held-out clips (refused when the run
has none, :class:`~dissect.pruning.unlearn.NoHeldOutClips`):

1. prefix sizes are fixed from the selection's size alone (:func:`default_sizes`);
2. the evaluation clips are split once, for the whole table, into a select half and a report
   half (stratified by class and every concept's target flag, near-duplicates together);
3. the size is chosen on the select half: the largest class-mean logit forget gap ΔR - ΔA
   among sizes that keep the retained classes' accuracy within the budget (2 points by
   default); none: 0 neurons (the row says so and counts as no pruning in the mean);
4. each random seed (matched per-layer counts) is given the same rule on its own curve;
5. ΔA, ΔR (class means of logit, probability, accuracy) and the forget ratio ΔA/ΔR are
   reported on the report half, with percentile 95 % bootstrap intervals (report clips
   resampled by group within the target-flag strata, the same resamples for every row, so
   the mean over concepts and the random seed mean get joint intervals).

Writes ``prune/<name>.json`` (rows, means, settings, the markdown) and ``prune/<name>.md``,
plus, per row, the chosen point's masks ``prune/<concept>.<method>.masks.{json,safetensors}``
(``prune/<name>.<concept>.<method>.masks.*`` for a table not named ``table4``).
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dissect import artifacts
from dissect.pruning.ablate import export_masks, save_masks
from dissect.pruning.protocol import concept_row, mean_over_concepts
from dissect.pruning.select import random_like, select_neurons
from dissect.pruning.unlearn import (
    Evaluator,
    _concept_target,
    _evaluation_block,
    _json_safe,
    _slug,
    build_evalset,
    check_halves,
    default_sizes,
    evaluation_clips,
    open_run,
    protocol_split,
    target_predicate,
)

MEASURES = ("logit", "prob", "acc")


@dataclass
class ConceptSpec:
    """One concept of the table.

    Attributes:
        name: the concept as searched in descriptions (keyword method) and as the row's name.
        classes: closed-set names / label values that count for ``concept`` and ``evidence``
            selection, and whose clips are the target clips (empty: the concept's own name for
            selection, ``target`` or the run's concept set for the target clips).
        target: the target clips as an expression (``"family=Brass"``) or a callable on clip
            rows; overrides ``classes`` for the target.
        terms: extra words that also select a neuron (keyword method).
    """

    name: str
    classes: list[str] = field(default_factory=list)
    target: str | Callable[[Mapping], bool] | None = None
    terms: list[str] = field(default_factory=list)


def parse_concept(text: str) -> ConceptSpec:
    """``"NAME"`` or ``"NAME=CLASS[,CLASS...]"`` (e.g. ``"hi-hat=Hi-hat"``) -> a spec."""
    name, sep, classes = str(text).partition("=")
    name = name.strip()
    if not name:
        raise ValueError(f"empty concept name in {text!r}: use NAME or NAME=CLASS[,CLASS...]")
    return ConceptSpec(name, [c.strip() for c in classes.split(",") if c.strip()] if sep else [])


def _norm(x: Any) -> str:
    return re.sub(r"[\s_\-]+", " ", str(x).strip().lower())


def class_target(classes: Sequence[str], label: str | None = None) -> Callable[[Mapping], bool]:
    """A clip predicate: a label value (of ``label`` only, when given; list labels: any item)
    equals one of ``classes`` (case, ``_``, ``-`` and spaces ignored)."""
    wanted = {_norm(c) for c in classes}

    def pred(clip: Mapping) -> bool:
        labels = clip.get("labels") or {}
        vals = [labels.get(label)] if label is not None else list(labels.values())
        for v in vals:
            for x in v if isinstance(v, list) else [v]:
                if x is not None and _norm(x) in wanted:
                    return True
        return False

    return pred


def _predicate(run_dir: Path, spec: ConceptSpec, target_label: str | None):
    if spec.target is not None:
        return target_predicate(spec.target)
    if spec.classes:
        return class_target(spec.classes, target_label)
    return _concept_target(run_dir, spec.name)


def prune_table(run_dir: str | Path, concepts: Sequence[ConceptSpec | str],
                methods: Sequence[str] = ("evidence", "keyword", "concept"), *,
                top_k: int | None = 3, evidence_top_k: int | None = None,
                closed_method: str = "db", threshold: float = 0.5,
                layers: Sequence[str] | None = None, max_neurons: int | None = None,
                target_label: str | None = None,
                eval_clips: Sequence[Mapping[str, Any]] | None = None, eval_on: str = "heldout",
                holdout: float = 0.3, seed: int = 0, sizes: Sequence[int] | None = None,
                points: int = 6, spacing: str = "geometric",
                seeds: Sequence[int] = (0, 1, 2, 3, 4), random_mode: str = "matched",
                max_rest_acc_drop: float | None = 0.02, select_fraction: float = 0.5,
                split_seed: int = 0, fixed_size: int | None = None, bootstrap: int = 1000,
                bootstrap_seed: int = 0, tolerance_cents: float = 50.0,
                model_options: Mapping[str, Any] | None = None,
                crop: tuple[float, float] | None = None, batch_size: int = 8,
                device: str | None = None, name: str = "table4", write: bool = True,
                model=None, adapter=None, log: Callable[[str], None] | None = None
                ) -> dict[str, Any]:
    """Table 4 for ``concepts`` x ``methods`` on a finished run (see the module docstring).

    Args:
        run_dir: a finished run (``summaries.jsonl``; ``concepts.jsonl`` for ``concept``,
            ``explanations.jsonl`` + ``evidence.jsonl`` for ``evidence``).
        concepts: :class:`ConceptSpec` or ``"NAME=CLASS[,CLASS...]"`` strings.
        methods: selection methods (``evidence``, ``keyword``, ``concept``, ``embedding``).
        top_k: closed-set concepts looked at by ``concept``; ``evidence_top_k``: shown
            description terms looked at by ``evidence`` (None: all).
        target_label: compare a spec's CLASSes with this label column only (None: any label).
        eval_clips, eval_on, holdout, seed: evaluation clips
            (:func:`~dissect.pruning.unlearn.evaluation_clips`; no held-out clips: refused).
        sizes / points / spacing: candidate prefix sizes (default: ``points`` sizes up to each
            selection's size).
        seeds, random_mode: random baseline seeds and mode (``matched``: same per-layer counts).
        max_rest_acc_drop: retained-accuracy budget, a fraction (0.02 = 2 points; None: none).
        select_fraction, split_seed: the select half's share and the split's seed.
        fixed_size: prune exactly this many neurons everywhere (nothing chosen, no select
            half: every evaluation clip reports).
        bootstrap, bootstrap_seed: number of resamples of the report half and their seed.
        name: stem of the written table (``prune/<name>.json``, ``prune/<name>.md``).

    Returns:
        ``{"rows": [...], "mean": {method: ...}, "evaluation": {...}, "settings": {...},
        "markdown": str}`` (JSON-safe; infinite ratios as ``"inf"``).

    Raises:
        NoHeldOutClips: the run has no held-out clips and none were given.
        ValueError: no evaluation clip has a class; a concept has no target or no retained
            clip in a half (checked before any model pass).
    """
    run_dir = Path(run_dir)
    log = log or (lambda s: print(s, file=sys.stderr))
    t_start = time.perf_counter()
    specs = [parse_concept(c) if isinstance(c, str) else c for c in concepts]
    if not specs:
        raise ValueError("no concept to prune")
    clips, source = evaluation_clips(run_dir, eval_clips, eval_on, holdout, seed)
    setup = open_run(run_dir, layers=layers, model_options=model_options, device=device,
                     model=model, adapter=adapter)
    es, notes = build_evalset(clips, setup.adapter, setup.class_names, lambda c: False, crop,
                              setup.adapter.pitch_head(setup.model))
    if not len(es):
        raise ValueError(f"{run_dir}: no evaluation clip ({source}) has a true class of the "
                         "head")
    rows_by_id = {str(c["id"]): c for c in clips}
    flags = []
    for spec in specs:
        pred = _predicate(run_dir, spec, target_label)
        flags.append(np.array([bool(pred(rows_by_id[cid])) for cid in es.ids], dtype=bool))
    select, weights, _ = protocol_split(es, rows_by_id, flags, select_fraction=select_fraction,
                                        split_seed=split_seed, fixed_size=fixed_size,
                                        n_boot=bootstrap, boot_seed=bootstrap_seed)
    counts = {s.name: check_halves(s.name, f, select) for s, f in zip(specs, flags, strict=True)}
    prob = "sigmoid" if notes["pitch"] else "softmax"
    ev = Evaluator(setup.model, setup.adapter, es, prob=prob, bin_hz=notes["bin_hz"],
                   tolerances_cents=(tolerance_cents, 100.0), batch_size=batch_size,
                   device=setup.device, log=log)
    units = {layer: setup.sites[layer].units for layer in setup.layers}
    rows, raws = [], {m: [] for m in methods}
    for spec, flag in zip(specs, flags, strict=True):
        for method in methods:
            sel = select_neurons(setup.rows, spec.name, method, terms=spec.terms,
                                 concepts=spec.classes or None, closed_method=closed_method,
                                 top_k=evidence_top_k if method == "evidence" else top_k,
                                 threshold=threshold, layers=setup.layers,
                                 max_neurons=max_neurons)
            sz = sorted({int(s) for s in sizes if 0 < int(s) <= len(sel)}) if sizes else \
                default_sizes(len(sel), points, spacing)
            rankings = {int(s): random_like(sel.ranked, units, int(s), random_mode)
                        for s in seeds}
            row, raw = concept_row(ev.measures, sel.ranked, sz, rankings, flag, es.groups,
                                   select, weights, max_rest_acc_drop=max_rest_acc_drop,
                                   fixed_size=fixed_size)
            n = row["choice"]["n"]
            # a table of another name keeps its own masks (two tables in one run, e.g. the
            # neurons' and the latents', never overwrite each other's)
            stem = _slug(f"{spec.name}.{method}" if name == "table4" else
                         f"{name}.{spec.name}.{method}")
            entry = {"concept": spec.name, "classes": spec.classes, "method": method,
                     "target": (spec.target if isinstance(spec.target, str) else
                                "callable" if spec.target is not None else
                                f"label in {spec.classes}" if spec.classes else
                                f"ground truth of {spec.name!r}"),
                     "n_selected": len(sel), "per_layer": sel.per_layer(),
                     "chosen_per_layer": _per_layer(sel.ranked[:n]),
                     "counts": counts[spec.name], **row,
                     "rest_acc_before": _rest_acc(ev.measures(), flag, es.groups, select)}
            if write:
                pj, ps = save_masks(export_masks(sel.ranked[:n], setup.sites),
                                    run_dir / "prune" / f"{stem}.masks")
                entry["masks"] = [str(pj.relative_to(run_dir)), str(ps.relative_to(run_dir))]
            rows.append(entry)
            raws[method].append(raw)
            log(f"[table4] {spec.name} / {method}: {len(sel)} selected, {n} chosen on the "
                f"select half; {ev.passes} passes so far")
    mean = {m: mean_over_concepts(raws[m]) for m in methods}
    for m in methods:  # counted in the mean as no pruning (ΔA = ΔR = 0), listed here
        mean[m]["pruned_nothing"] = {r["concept"]: r["choice"]["pruned_nothing"] for r in rows
                                     if r["method"] == m and r["choice"]["pruned_nothing"]}
    evaluation = _evaluation_block(es, notes, source, None, "", prob, tolerance_cents, crop,
                                   setup, holdout, seed, select, select_fraction, split_seed,
                                   bootstrap, bootstrap_seed)
    evaluation.pop("target")
    evaluation.pop("n_target")
    evaluation.pop("n_rest")
    out = {
        "format": 1,
        "run_dir": str(run_dir),
        "rows": rows,
        "mean": mean,
        "evaluation": evaluation,
        "settings": {"methods": list(methods), "top_k": top_k, "evidence_top_k": evidence_top_k,
                     "closed_method": closed_method, "max_neurons": max_neurons,
                     "points": points, "spacing": spacing, "sizes": list(sizes or []),
                     "seeds": [int(s) for s in seeds], "random_mode": random_mode,
                     "max_rest_acc_drop": max_rest_acc_drop, "fixed_size": fixed_size,
                     "target_label": target_label, "layers": setup.layers,
                     "features": setup.features},
        "passes": ev.passes,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    out["markdown"] = markdown(out)
    out = _json_safe(out)
    if write:
        artifacts.write_json(run_dir / "prune" / f"{name}.json", out)
        artifacts.write_text(run_dir / "prune" / f"{name}.md", out["markdown"] + "\n")
    return out


def _per_layer(neurons: Sequence[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for layer, _ in neurons:
        out[layer] = out.get(layer, 0) + 1
    return out


def _rest_acc(before: Mapping[str, np.ndarray], flag: np.ndarray, classes: Sequence[str],
              select: np.ndarray | None) -> float | None:
    """Class-mean accuracy of the retained clips of the report half, unpruned (a fraction)."""
    rep = ~np.asarray(select, bool) if select is not None else np.ones(len(flag), bool)
    m = rep & ~np.asarray(flag, bool)
    if not m.any():
        return None
    acc = np.asarray(before["acc"])[m]
    cls = np.asarray(list(classes), dtype=object)[m]
    return float(np.mean([acc[cls == c].mean() for c in sorted(set(cls.tolist()))]))


# --------------------------------------------------------------------------- markdown


def _num(x: Any, scale: float = 1.0, signed: bool = True, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    v = x * scale
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _ci(stat: Mapping[str, Any] | None, scale: float = 1.0, signed: bool = True) -> str:
    """``value [lo, hi]`` (x100 with one decimal for points, else two decimals)."""
    if not stat:
        return "-"
    d = 1 if scale == 100 else 2
    return (f"{_num(stat.get('value'), scale, signed, d)} "
            f"[{_num(stat.get('lo'), scale, signed, d)}, {_num(stat.get('hi'), scale, signed, d)}]")


def _units_line(layers: Sequence[str]) -> str:
    """``conv6 (neurons), sae:conv6 (SAE latents: z_i * W_dec[i] removed from conv6)``."""
    from dissect.models.sae import SAE_PREFIX

    out = []
    for x in layers:
        if x.startswith(SAE_PREFIX):
            out.append(f"{x} (SAE latents: z_i * W_dec[i] removed from {x[len(SAE_PREFIX):]})")
        else:
            out.append(f"{x} (neurons)")
    return ", ".join(out) or "-"


def markdown(table: Mapping[str, Any]) -> str:
    """The table as markdown: one line per concept and method, then the mean per method.
    Logits in logits, probability and accuracy changes in points (x100); brackets: bootstrap
    95 % intervals over the report half."""
    ev = table["evaluation"]
    sp = ev["split"]
    held = ("held-out" if ev.get("heldout")
            else "DISSECTED (not held-out: the descriptions saw them)")
    lines = [f"Evaluation clips: {ev['n_clips']} {held} ({ev['source']}); chosen on "
             f"{sp['n_select']} select clips, reported on {sp['n_report']} report clips; "
             f"95 % bootstrap intervals ({ev['bootstrap']['resamples']} resamples of the "
             "report clips). ΔA/ΔR in class-mean logits; prob and acc in points.",
             f"Units pruned: {_units_line(table['settings'].get('layers') or [])}.", "",
             "| concept | method | target clips (select / report) | n chosen (select) / selected "
             "| ΔA logit | ΔR logit | ΔA/ΔR | ΔA acc | ΔR acc | random n per seed | "
             "random ΔA logit | random ΔR logit | random ΔA/ΔR | retained acc before |",
             "|" + "---|" * 14]
    for r in table["rows"]:
        rep, rnd = r["report"], (r.get("random") or {}).get("report") or {}
        n = r["choice"]["n"]
        why = r["choice"].get("pruned_nothing")
        chosen = f"{n} / {r['n_selected']}" + (f" ({why})" if why else "")
        cnt = r.get("counts") or {}
        tc = f"{cnt.get('select_target', '-')} / {cnt.get('report_target', '-')}"
        rn = ",".join(str(v) for v in ((r.get("random") or {}).get("chosen_n") or {}).values())
        ret = r.get("rest_acc_before")
        lines.append(
            f"| {r['concept']} | {r['method']} | {tc} | {chosen} | {_ci(rep['logit_delta_A'])} | "
            f"{_ci(rep['logit_delta_R'])} | {_ci(rep['logit_ratio'], signed=False)} | "
            f"{_ci(rep.get('acc_delta_A'), 100)} | {_ci(rep.get('acc_delta_R'), 100)} | "
            f"{rn or '-'} | {_ci(rnd.get('logit_delta_A'))} | {_ci(rnd.get('logit_delta_R'))} | "
            f"{_ci(rnd.get('logit_ratio'), signed=False)} | "
            f"{'-' if ret is None else f'{100 * ret:.1f}'} |")
    lines += ["", "| mean over all concepts (none dropped) | concepts | pruned nothing (0, 0) | "
              "ΔA logit | ΔR logit | ratio of means | random ΔA logit | random ΔR logit | "
              "random ratio of means |", "|" + "---|" * 9]
    for method, m in table["mean"].items():
        rep, rnd = m.get("report") or {}, m.get("random") or {}
        none = "; ".join(f"{c}: {w}" for c, w in (m.get("pruned_nothing") or {}).items()) or "-"
        lines.append(f"| {method} | {m['concepts']} | {none} | {_ci(rep.get('logit_delta_A'))} | "
                     f"{_ci(rep.get('logit_delta_R'))} | "
                     f"{_ci(rep.get('logit_ratio'), signed=False)} | "
                     f"{_ci(rnd.get('logit_delta_A'))} | {_ci(rnd.get('logit_delta_R'))} | "
                     f"{_ci(rnd.get('logit_ratio'), signed=False)} |")
    return "\n".join(lines)
