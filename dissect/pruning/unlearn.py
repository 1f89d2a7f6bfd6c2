"""The unlearning report: what pruning a concept's neurons does to the target and to the rest.

Given evaluation clips with a true class each, split into *target* clips (they carry the
concept to forget) and *rest*, we compare the model before and after pruning on

* ``logit``: the true class's logit (what AND's Table 4 calls confidence);
* ``prob``: the true class's probability: ``softmax`` over the head's logits for single-label
  classifiers, ``sigmoid`` of the true bin's logit for CREPE (its 360 bins are independent
  sigmoids; the logit is the frame-averaged logit the adapter returns, so this is
  ``sigmoid(mean logit)``, not the mean of per-frame probabilities);
* ``acc``: whether the prediction is right: argmax == true class, or for pitch heads
  (:func:`pitch_correct`) whether the argmax bin lies within ``tolerance_cents`` of the clip's
  true f0 (default 50 cents = the right note; ``acc_semitone`` uses 100 cents).

For each measure, ``target`` and ``rest`` give the mean before, after and ``delta``
(after - before): ``delta`` of target is AND's ΔA and of rest ΔR. ``forget_gap = ΔR - ΔA``
(positive: the target lost more than the rest; AND's "ΔA - ΔR" column is numerically this
quantity). Means are over clips (``clip_mean``) and, as AND does, over classes of the per-class
means (``class_mean``). A per-class table lists every class (``groups``: e.g. note names).

Curves: :func:`forget_retain_curve` prunes growing prefixes of a ranked selection;
:func:`random_band` does the same for random neuron sets of equal size over several seeds and
reports mean and std per size. :func:`prune_run` runs it all on a finished run directory and
writes ``prune/<concept>.json`` plus the masks; its ``table4`` block is one row of
:func:`dissect.pruning.table4.prune_table` (operating point chosen on the select half of the
evaluation clips, reported on the report half with bootstrap intervals,
:mod:`dissect.pruning.protocol`).

Evaluation clips are the run's held-out clips (``heldout.jsonl``, ``probe.holdout``), or clips
given by the caller; a run without held-out clips is refused (:class:`NoHeldOutClips`) unless
the caller asks for the dissected clips explicitly (``eval_on="dissected"``, labelled so).
"""

from __future__ import annotations

import math
import operator
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dissect import artifacts
from dissect.models.base import PitchHead
from dissect.pruning.ablate import export_masks, save_masks, zeroed
from dissect.pruning.protocol import (
    best_point,
    clip_group,
    concept_row,
    resample_weights,
    split_halves,
)
from dissect.pruning.select import Selection, random_like, select_neurons
from dissect.recording.hooks import run_sites

Neuron = tuple[str, int]

__all__ = ["EvalSet", "Evaluator", "NoDescriptions", "NoHeldOutClips", "best_point",
           "build_evalset", "clip_measures", "evaluation_clips", "forget_retain_curve", "open_run",
           "pitch_correct", "prune_run", "random_band", "summary_line", "target_predicate",
           "unlearning_report"]


# --------------------------------------------------------------------------- evaluation data


@dataclass
class EvalSet:
    """Labelled evaluation clips.

    Attributes:
        ids: clip ids.
        waveforms: mono float32 at the adapter's sample rate.
        targets: true class index per clip ``[N]``.
        in_concept: bool ``[N]``, True for the concept's (target) clips.
        groups: per clip, the name its per-class row is listed under (default: class name).
        f0_hz: per clip true f0 for pitch heads (else None).
    """

    ids: list[str]
    waveforms: list[np.ndarray]
    targets: np.ndarray
    in_concept: np.ndarray
    groups: list[str] = field(default_factory=list)
    f0_hz: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


@torch.inference_mode()
def model_logits(model, adapter, waveforms: Sequence[np.ndarray], batch_size: int = 8,
                 device: str | torch.device = "cpu") -> np.ndarray:
    """The head's logits ``[N, C]`` (float64) for the clips, ``batch_size`` clips at a time."""
    out = []
    for i in range(0, len(waveforms), max(1, batch_size)):
        logits = run_sites(adapter, model, waveforms[i: i + batch_size], [], device=device).logits
        if logits is None:
            raise ValueError(f"{adapter.name}: the model has no classifier head to evaluate")
        out.append(logits.detach().double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def pitch_correct(logits: np.ndarray, f0_hz: np.ndarray, bin_hz: np.ndarray,
                  tolerance_cents: float = 50.0) -> np.ndarray:
    """Bool ``[N]``: the argmax bin's frequency is within ``tolerance_cents`` of ``f0_hz``."""
    pred = np.asarray(bin_hz)[np.asarray(logits).argmax(axis=1)]
    return np.abs(1200.0 * np.log2(pred / np.asarray(f0_hz, dtype=np.float64))) <= tolerance_cents


def _softmax_true(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p[np.arange(len(targets)), targets]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def clip_measures(logits: np.ndarray, targets: np.ndarray, prob: str = "softmax",
                  correct: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per-clip ``logit``, ``prob`` and accuracy measures (``correct``: name -> bool [N];
    default ``{"acc": argmax == target}``)."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    true = logits[np.arange(len(targets)), targets]
    if prob == "softmax":
        p = _softmax_true(logits, targets)
    elif prob == "sigmoid":
        p = _sigmoid(true)
    else:
        raise ValueError(f"prob must be 'softmax' or 'sigmoid', got {prob!r}")
    out = {"logit": true, "prob": p}
    if correct is None:
        correct = {"acc": logits.argmax(axis=1) == targets}
    out.update({k: np.asarray(v, dtype=np.float64) for k, v in correct.items()})
    return out


def _m(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if len(x) else None


def _class_mean(values: np.ndarray, groups: np.ndarray) -> float | None:
    if not len(values):
        return None
    return float(np.mean([values[groups == g].mean() for g in np.unique(groups)]))


def _d(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def unlearning_report(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                      in_concept: np.ndarray, groups: Sequence[str] | None = None,
                      per_class: bool = True) -> dict[str, Any]:
    """ΔA / ΔR per measure from per-clip measures (:func:`clip_measures`) before and after.

    Returns ``{"measures": {name: {"clip_mean": {...}, "class_mean": {...}}}, "per_class":
    [...], "n_target", "n_rest"}`` where each mean block is ``{"target": {before, after,
    delta}, "rest": {...}, "delta_A", "delta_R", "forget_gap"}``.
    """
    tgt = np.asarray(in_concept, dtype=bool)
    n = len(tgt)
    g = np.asarray(list(groups) if groups is not None else ["all"] * n, dtype=object)
    out: dict[str, Any] = {"n_target": int(tgt.sum()), "n_rest": int((~tgt).sum()),
                           "measures": {}}
    for name in before:
        b, a = np.asarray(before[name], dtype=np.float64), np.asarray(after[name], np.float64)
        blocks = {}
        for kind, agg in (("clip_mean", lambda v, m: _m(v[m])),
                          ("class_mean", lambda v, m: _class_mean(v[m], g[m]))):
            blk: dict[str, Any] = {}
            for side, mask in (("target", tgt), ("rest", ~tgt)):
                bb, aa = agg(b, mask), agg(a, mask)
                blk[side] = {"before": bb, "after": aa, "delta": _d(bb, aa)}
            blk["delta_A"], blk["delta_R"] = blk["target"]["delta"], blk["rest"]["delta"]
            blk["forget_gap"] = _d(blk["delta_A"], blk["delta_R"])
            blocks[kind] = blk
        out["measures"][name] = blocks
    if per_class:
        rows = []
        for grp in sorted(set(g.tolist()), key=_group_key):
            m = g == grp
            row: dict[str, Any] = {"class": grp, "n": int(m.sum()),
                                   "target": bool(tgt[m].any())}
            for name in before:
                bb = float(np.mean(np.asarray(before[name])[m]))
                aa = float(np.mean(np.asarray(after[name])[m]))
                row[name] = {"before": bb, "after": aa, "delta": aa - bb}
            rows.append(row)
        out["per_class"] = rows
    return out


def _group_key(name: str):
    from dissect.evaluation.last_layer import note_midi

    midi = note_midi(name)
    return (0, midi, "") if midi is not None else (1, 0, str(name))


def summary_line(report: Mapping[str, Any], kind: str = "clip_mean") -> dict[str, Any]:
    """Flat ``{measure_target_after, measure_rest_after, measure_delta_A, ...}`` of a report
    for one kind of mean; ``class_mean`` keys carry the prefix ``class_``
    (``class_logit_delta_A``: AND's per-class-mean ΔA)."""
    prefix = "" if kind == "clip_mean" else "class_"
    out = {}
    for name, blocks in report["measures"].items():
        blk = blocks[kind]
        out[f"{prefix}{name}_target"] = blk["target"]["after"]
        out[f"{prefix}{name}_rest"] = blk["rest"]["after"]
        out[f"{prefix}{name}_delta_A"] = blk["delta_A"]
        out[f"{prefix}{name}_delta_R"] = blk["delta_R"]
        out[f"{prefix}{name}_forget_gap"] = blk["forget_gap"]
    return out


# --------------------------------------------------------------------------- evaluator


class Evaluator:
    """Runs the model on an :class:`EvalSet` (optionally with neurons ablated) and turns the
    logits into per-clip measures. ``prob``/``bin_hz`` select the probability and pitch modes.
    """

    def __init__(self, model, adapter, evalset: EvalSet, *, prob: str = "softmax",
                 bin_hz: np.ndarray | None = None, tolerances_cents: Sequence[float] = (50, 100),
                 batch_size: int = 8, device: str | torch.device = "cpu", log=None):
        self.model, self.adapter, self.evalset = model, adapter, evalset
        self.prob, self.bin_hz = prob, bin_hz
        self.tolerances = list(tolerances_cents)
        self.batch_size, self.device = batch_size, device
        self.log = log or (lambda s: None)
        self.passes = 0
        self._memo: dict[tuple[Neuron, ...], dict[str, np.ndarray]] = {}

    def measures(self, neurons: Sequence[Neuron] = ()) -> dict[str, np.ndarray]:
        """Per-clip measures with ``neurons`` ablated (memoised per neuron set)."""
        key = tuple(sorted(set(neurons)))
        if key not in self._memo:
            self._memo[key] = self._measures(list(key))
        return self._memo[key]

    def _measures(self, neurons: list[Neuron]) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        if neurons:
            with zeroed(self.model, self.adapter, list(neurons)):
                logits = model_logits(self.model, self.adapter, self.evalset.waveforms,
                                      self.batch_size, self.device)
        else:
            logits = model_logits(self.model, self.adapter, self.evalset.waveforms,
                                  self.batch_size, self.device)
        self.passes += 1
        self.log(f"[prune] pass {self.passes}: {len(neurons)} neurons ablated, "
                 f"{time.perf_counter() - t0:.1f} s")
        correct = None
        if self.bin_hz is not None and self.evalset.f0_hz is not None:
            correct = {}
            for i, tol in enumerate(self.tolerances):
                name = "acc" if i == 0 else ("acc_semitone" if tol == 100 else f"acc_{tol:g}c")
                correct[name] = pitch_correct(logits, self.evalset.f0_hz, self.bin_hz, tol)
        return clip_measures(logits, self.evalset.targets, self.prob, correct)


def forget_retain_curve(evaluator: Evaluator, ranked: Sequence[Neuron], sizes: Sequence[int],
                        before: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """For each size n: prune ``ranked[:n]`` and summarise (:func:`summary_line`): clip means
    (``logit_delta_A``...) and class means (``class_logit_delta_A``...), as AND reports."""
    es = evaluator.evalset
    out = []
    for n in sizes:
        after = evaluator.measures(list(ranked[:n]))
        rep = unlearning_report(before, after, es.in_concept, es.groups, per_class=False)
        out.append({"n": int(n), **summary_line(rep), **summary_line(rep, "class_mean")})
    return out


def random_band(evaluator: Evaluator, ranked: Sequence[Neuron], sizes: Sequence[int],
                before: Mapping[str, np.ndarray], units_per_layer: Mapping[str, int],
                seeds: Sequence[int], mode: str = "matched") -> dict[str, Any]:
    """The random baseline: per seed a curve over ``sizes``; then mean and std per size."""
    per_seed = {}
    for s in seeds:
        rnd = random_like(ranked, units_per_layer, int(s), mode)
        per_seed[int(s)] = forget_retain_curve(evaluator, rnd, sizes, before)
    keys = [k for k in next(iter(per_seed.values()))[0] if k != "n"] if per_seed else []
    mean, std = [], []
    for i, n in enumerate(sizes):
        vals = {k: [c[i][k] for c in per_seed.values() if c[i][k] is not None] for k in keys}
        mean.append({"n": int(n), **{k: float(np.mean(v)) if v else None
                                     for k, v in vals.items()}})
        std.append({"n": int(n), **{k: float(np.std(v)) if v else None
                                    for k, v in vals.items()}})
    return {"mode": mode, "seeds": [int(s) for s in seeds], "per_seed": per_seed,
            "mean": mean, "std": std}


# --------------------------------------------------------------------------- targets


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
    ">": operator.gt, "<": operator.lt, "=": operator.eq,
}
_EXPR = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|!=|==|>|<|=)\s*(.+?)\s*$")


def target_predicate(target: str | Callable[[Mapping], bool]) -> Callable[[Mapping], bool]:
    """A clip predicate from a callable or an expression ``key OP value`` on the clip's
    ``concepts`` (then ``labels``), e.g. ``"midi_note>=72"``, ``"family=Brass"`` (string
    comparisons ignore case); a concept-set id ``"family:Brass"`` also works."""
    if callable(target):
        return target
    text = str(target)
    m = _EXPR.match(text)
    if not m:
        if ":" in text:
            from dissect.evaluation.agreement import clip_has_concept

            return lambda clip: bool(clip_has_concept(clip, text))
        raise ValueError(f"cannot parse target {target!r}: use KEY OP VALUE, e.g. midi_note>=72")
    key, op, raw = m.groups()
    fn = _OPS[op]
    try:
        value: Any = float(raw)
    except ValueError:
        value = raw.strip("'\"").lower()

    def pred(clip: Mapping) -> bool:
        have = (clip.get("concepts") or {}).get(key, (clip.get("labels") or {}).get(key))
        if have is None:
            return False
        if isinstance(value, float):
            try:
                return bool(fn(float(have), value))
            except (TypeError, ValueError):
                return False
        return bool(fn(str(have).lower(), value))

    return pred


def _concept_target(run_dir: Path, concept: str) -> Callable[[Mapping], bool]:
    """The concept's clips by ground truth, via the run's concept set (name or id)."""
    from dissect.description.concepts import load_concept_set
    from dissect.evaluation import rundata
    from dissect.evaluation.agreement import clip_has_concept

    cfg = rundata.run_config(run_dir)
    cset = load_concept_set(artifacts.config_setting(cfg, "concepts", "concept_set", "synth"))
    try:
        i = cset.index(concept)
    except KeyError:
        raise ValueError(f"concept {concept!r} is not in concept set {cset.name!r}; pass "
                         f"target= (e.g. 'midi_note>=72' or 'family=Brass')") from None
    cid, name = cset.ids[i], cset.concepts[i]
    return lambda clip: bool(clip_has_concept(clip, cid, name))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("_") or "concept"


# --------------------------------------------------------------------------- run entry point


def build_evalset(clips: Sequence[Mapping[str, Any]], adapter, class_names: Sequence[str],
                  predicate: Callable[[Mapping], bool], crop: tuple[float, float] | None = None,
                  pitch_head: PitchHead | None = None) -> tuple[EvalSet, dict[str, Any]]:
    """Load the clips that have a true class; returns the set and notes (dropped clips...).

    Pitch mode (``pitch_head`` given, from ``adapter.pitch_head(model)``, e.g. CREPE): a clip's
    class is the bin nearest to ``concepts["f0_hz"]`` and its group the note name; clips
    without f0 are dropped. Otherwise the class is the first label value
    equal to a class name (case, ``_``, ``-``, spaces ignored); other clips are dropped.
    ``crop = (start_s, seconds)`` keeps that window of every clip (shorter clips keep what
    they have).
    """
    from dissect.audio import load_audio

    pitch = pitch_head is not None
    norm = {re.sub(r"[\s_\-]+", " ", str(c).lower()): i for i, c in enumerate(class_names)}
    ids, waves, targets, flags, groups, f0s = [], [], [], [], [], []
    dropped = 0
    bins = np.asarray(pitch_head.bin_hz) if pitch else None
    for clip in clips:
        conc = clip.get("concepts") or {}
        if pitch:
            f0 = conc.get("f0_hz")
            if f0 is None:
                dropped += 1
                continue
            t = int(np.argmin(np.abs(np.log2(bins / float(f0)))))
            grp = conc.get("note") or pitch_head.note_name(float(f0))
        else:
            t = None
            for v in (clip.get("labels") or {}).values():
                for x in v if isinstance(v, list) else [v]:
                    key = re.sub(r"[\s_\-]+", " ", str(x).lower())
                    if key in norm:
                        t = norm[key]
                        break
                if t is not None:
                    break
            if t is None:
                dropped += 1
                continue
            grp = str(class_names[t])
        wave = load_audio(clip["path"], adapter.sample_rate).waveform
        if crop is not None:
            s0 = int(crop[0] * adapter.sample_rate)
            wave = wave[s0: s0 + int(crop[1] * adapter.sample_rate)]
            if len(wave) == 0:
                dropped += 1
                continue
        ids.append(clip["id"])
        waves.append(np.asarray(wave, dtype=np.float32))
        targets.append(t)
        flags.append(bool(predicate(clip)))
        groups.append(str(grp))
        f0s.append(float(conc["f0_hz"]) if pitch else math.nan)
    es = EvalSet(ids, waves, np.asarray(targets, dtype=np.int64), np.asarray(flags, dtype=bool),
                 groups, np.asarray(f0s) if pitch else None)
    return es, {"pitch": pitch, "dropped_without_class": dropped,
                "bin_hz": bins}


def default_sizes(n: int, points: int = 4, spacing: str = "linear") -> list[int]:
    """``points`` prefix sizes ending at ``n`` (unique, > 0): evenly spaced (``linear``:
    n/points, 2n/points, ...) or halving (``geometric``: ..., n/4, n/2, n)."""
    if n <= 0:
        return []
    if spacing == "linear":
        fracs = [(i + 1) / points for i in range(points)]
    elif spacing == "geometric":
        fracs = [2.0 ** -(points - 1 - i) for i in range(points)]
    else:
        raise ValueError(f"spacing must be 'linear' or 'geometric', got {spacing!r}")
    return sorted({max(1, int(round(n * f))) for f in fracs})


class NoHeldOutClips(ValueError):
    """The run has no held-out clips, and held-out figures were asked for."""


def evaluation_clips(run_dir: str | Path, eval_clips: Sequence[Mapping[str, Any]] | None = None,
                     eval_on: str = "heldout", holdout: float = 0.3, seed: int = 0
                     ) -> tuple[list[dict[str, Any]], str]:
    """The clip rows pruning is evaluated on and where they come from.

    Args:
        run_dir: a finished run.
        eval_clips: clip rows given by the caller (``source="given"``; e.g. a freshly rendered
            set); they win over ``eval_on``.
        eval_on: ``heldout``: the clips the run kept out of the dissection (``heldout.jsonl``,
            ``source="probe.holdout"``); ``dissected``: a ``holdout`` fraction of the run's own
            clips (:func:`~dissect.evaluation.agreement.holdout_mask` with ``seed``), which the
            descriptions saw (``source="dissected"``): asked for by name only, never a fallback.

    Returns:
        ``(rows, source)``.

    Raises:
        NoHeldOutClips: ``eval_on="heldout"`` and the run has no ``heldout.jsonl`` or an empty
            one.
        ValueError: an unknown ``eval_on``.
    """
    from dissect.evaluation import rundata
    from dissect.evaluation.agreement import holdout_mask

    run_dir = Path(run_dir)
    if eval_clips is not None:
        return [dict(c) for c in eval_clips], "given"
    if eval_on == "heldout":
        held = rundata.read_heldout(run_dir)
        if not held:
            path = run_dir / artifacts.HELDOUT
            why = f"{path.name} is empty" if path.is_file() else f"no {path.name}"
            raise NoHeldOutClips(
                f"{run_dir}: no held-out clips ({why}: the run kept no clips out of the "
                "dissection, probe.holdout=0), so there is nothing to report held-out pruning "
                "figures on. Re-run the dissection with probe.holdout=0.3, pass fresh clips "
                "(eval_clips=...), or ask for figures on the dissected clips by name "
                "(eval=dissected; the descriptions saw those clips and the output says so).")
        return held, "probe.holdout"
    if eval_on == "dissected":
        clips = rundata.read_clips(run_dir)
        hold = holdout_mask([c["id"] for c in clips], holdout, seed)
        return [c for c, h in zip(clips, hold, strict=True) if h], "dissected"
    raise ValueError(f"eval must be 'heldout' or 'dissected', got {eval_on!r}")


class NoDescriptions(ValueError):
    """A layer asked for has no descriptions in the run (nothing to select its units from)."""


@dataclass
class PruneSetup:
    """What every pruning entry point needs from a run: the model, its sites (SAE latents
    ``sae:<layer>`` included when a candidate layer), head, the run's neuron rows and the
    candidate layers (every recorded layer but the head and the SAE latents unless given)."""

    run_dir: Path
    adapter: Any
    model: Any
    device: Any
    sites: dict
    head: str | None
    class_names: list[str]
    rows: list[dict[str, Any]]
    layers: list[str]
    model_config: dict[str, Any]
    loaded: bool
    model_options: dict[str, Any] | None = None
    features: list[str] = field(default_factory=list)


def attach_features(run_dir: Path, model_config: Mapping[str, Any], adapter, model, device,
                    layers: Sequence[str]) -> list[str]:
    """Attach the SAE files of the run's ``model.features`` so that the latents' layers
    ``layers`` (``sae:<layer>``) are sites of ``adapter``; returns the files attached.

    Raises:
        FileNotFoundError: a file of ``model.features`` is missing (named, with the run).
        NoDescriptions: no file of ``model.features`` gives one of ``layers``.
        ValueError / LayerNameError: a file that does not fit the model
            (:func:`dissect.models.sae.attach`).
    """
    from dissect.models.sae import attach

    files = [str(f) for f in (model_config.get("features") or [])]
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(
                f"{f}: SAE file missing; {run_dir / artifacts.CONFIG} lists it in "
                f"model.features, and pruning {', '.join(layers)} needs its latents (decoder "
                "rows). Put the file back at that path (or rerun dissect features train with "
                f"out={f})")
    for f in files:
        attach(adapter, model, f, device=device)
    have = adapter.all_sites(model)
    lost = [x for x in layers if x not in have]
    if lost:
        raise NoDescriptions(
            f"{run_dir}: layer(s) {lost} are SAE latents, but the run's model.features "
            f"({files or 'none'}) gives no SAE over their base layer")
    return files


def open_run(run_dir: str | Path, *, layers: Sequence[str] | None = None,
             model_options: Mapping[str, Any] | None = None, device: str | None = None,
             model=None, adapter=None) -> PruneSetup:
    """Load a finished run's model (or use ``model`` and ``adapter``, both or neither) and its
    neuron rows.

    Candidate layers: ``layers``, else every described layer except the head and SAE latents
    (``sae:<layer>`` is pruned only when named, so a table never mixes neurons and latents
    unasked). Latents' layers get their SAE from the run's ``model.features`` unless
    ``adapter`` already has them (:func:`attach_features`).

    Raises:
        ValueError: only one of model/adapter given, or the model has no classifier head with
            class names.
        NoDescriptions: a layer of ``layers`` has no descriptions in the run (named, with the
            layers that have some).
        FileNotFoundError: an SAE file of the run's ``model.features`` is missing (named).
    """
    from dissect.evaluation import rundata
    from dissect.models import pick_device
    from dissect.models.load import adapter_from_config
    from dissect.models.sae import SAE_PREFIX

    run_dir = Path(run_dir)
    cfg = rundata.run_config(run_dir)
    mcfg = dict(cfg.get("model") or {})
    if (model is None) != (adapter is None):
        raise ValueError("give both model and adapter, or neither")
    rows = rundata.neuron_rows(run_dir)
    recorded = list(dict.fromkeys(r["layer"] for r in rows))
    if layers:
        use_layers = list(dict.fromkeys(str(x) for x in layers))
        lost = [x for x in use_layers if x not in recorded]
        if lost:
            how = (" (SAE latents are described by a run with model.features=[FILE] and "
                   "sae:<layer> among model.layers)" if any(x.startswith(SAE_PREFIX)
                                                            for x in lost) else "")
            raise NoDescriptions(
                f"{run_dir}: no descriptions for layer(s) {lost} in "
                f"{artifacts.SUMMARIES}{how}; the run describes "
                f"{', '.join(recorded) if recorded else 'no layer'}")
    else:
        use_layers = [x for x in recorded if not x.startswith(SAE_PREFIX)]
    loaded = adapter is None
    if adapter is None:
        info = rundata.record_info(run_dir)
        adapter = adapter_from_config(mcfg, options=model_options, default_name=info["adapter"],
                                      default_source=info.get("source"))
        dev = pick_device(device or mcfg.get("device"))
        model = adapter.load(dev)
    else:
        dev = pick_device(device) if device else next(model.parameters()).device
    head = adapter.head_layer(model)
    if not layers:
        use_layers = [x for x in use_layers if x != head]
    latents = [x for x in use_layers if x.startswith(SAE_PREFIX)]
    features: list[str] = []
    if any(x not in adapter.all_sites(model) for x in latents):
        features = attach_features(run_dir, mcfg, adapter, model, dev, latents)
    sites = adapter.all_sites(model)
    adapter.resolve_layers(model, use_layers)  # an unknown layer: LayerNameError, listing them
    class_names = adapter.class_names(model)
    if not class_names:
        raise ValueError(f"{adapter.name}: pruning needs a classifier head with class names")
    return PruneSetup(run_dir, adapter, model, dev, sites, head, list(class_names), rows,
                      use_layers, mcfg, loaded, dict(model_options or {}) or None, features)


def protocol_split(es: EvalSet, rows_by_id: Mapping[str, Mapping[str, Any]],
                   flags: Sequence[np.ndarray], *, select_fraction: float = 0.5,
                   split_seed: int = 0, fixed_size: int | None = None, n_boot: int = 1000,
                   boot_seed: int = 0) -> tuple[np.ndarray | None, np.ndarray, list]:
    """The select/report split of an evaluation set and the bootstrap weights of its report
    half (:mod:`dissect.pruning.protocol`).

    The split's strata: ``(class, target flag of every concept in flags)``; the bootstrap's
    strata: the target flags only (:func:`~dissect.pruning.protocol.resample_weights`); groups
    (kept whole by both): :func:`clip_group` of each clip's row. With ``fixed_size`` nothing is
    chosen, so there is no select half (``None``) and every clip reports.

    Returns:
        ``(select [N] bool | None, weights [n_boot, N], split strata [N])``.
    """
    strata = [(es.groups[i], *(bool(f[i]) for f in flags)) for i in range(len(es))]
    boot = [tuple(bool(f[i]) for f in flags) for i in range(len(es))]
    groups = [clip_group(rows_by_id.get(cid, {"id": cid})) for cid in es.ids]
    if fixed_size is not None:
        select = None
        rep_strata = boot
    else:
        select = split_halves(es.ids, strata, groups, select_fraction, split_seed)
        rep_strata = [None if s else b for s, b in zip(select, boot, strict=True)]
    return select, resample_weights(rep_strata, n_boot, boot_seed, groups), strata


def check_halves(name: str, in_concept: np.ndarray, select: np.ndarray | None) -> dict[str, int]:
    """Target / rest clip counts per half; raises ValueError naming the concept when a half
    has no target or no retained clip (nothing could be chosen or reported there)."""
    tgt = np.asarray(in_concept, dtype=bool)
    halves = {"report": ~select if select is not None else np.ones(len(tgt), bool)}
    if select is not None:
        halves = {"select": np.asarray(select, bool), **halves}
    out = {}
    for half, m in halves.items():
        out[f"{half}_target"] = int((tgt & m).sum())
        out[f"{half}_rest"] = int((~tgt & m).sum())
        if not out[f"{half}_target"] or not out[f"{half}_rest"]:
            raise ValueError(f"concept {name!r}: the {half} half has {out[f'{half}_target']} "
                             f"target and {out[f'{half}_rest']} retained clips; both are "
                             "needed (more evaluation clips, or fixed_size= to report on all)")
    return out


def prune_run(run_dir: str | Path, concept: str, method: str = "keyword", *,
              terms: Sequence[str] = (), concepts: Sequence[str] | None = None,
              closed_method: str = "db", top_k: int | None = 3, threshold: float = 0.5,
              layers: Sequence[str] | None = None, max_neurons: int | None = None,
              target: str | Callable[[Mapping], bool] | None = None,
              eval_clips: Sequence[Mapping[str, Any]] | None = None, eval_on: str = "heldout",
              holdout: float = 0.3, seed: int = 0, sizes: Sequence[int] | None = None,
              points: int = 4, spacing: str = "linear",
              seeds: Sequence[int] = (0, 1, 2, 3, 4), random_mode: str = "matched",
              max_rest_acc_drop: float | None = 0.02, select_fraction: float = 0.5,
              split_seed: int = 0, fixed_size: int | None = None, bootstrap: int = 1000,
              bootstrap_seed: int = 0,
              tolerance_cents: float = 50.0, model_options: Mapping[str, Any] | None = None,
              crop: tuple[float, float] | None = None, batch_size: int = 8,
              device: str | None = None, name: str | None = None, write: bool = True,
              model=None, adapter=None, log: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Select a concept's neurons in a finished run, prune them, and report forgetting.

    Args:
        run_dir: a run with ``summaries.jsonl`` (and ``concepts.jsonl`` for the concept method).
        concept: the concept to forget (a phrase; for the concept method a concept-set name).
        method: ``keyword`` | ``concept`` | ``evidence`` | ``embedding``
            (:func:`select_neurons`); ``terms``,
            ``concepts``, ``closed_method``, ``top_k``, ``threshold``, ``layers`` and
            ``max_neurons`` go there. Default layers: every recorded layer except the head.
        target: which evaluation clips carry the concept: an expression (``"midi_note>=72"``,
            ``"family=Brass"``), a concept-set id, or a callable on clip rows; default: the
            concept's ground truth through the run's concept set.
        eval_clips, eval_on, holdout, seed: the evaluation clips (:func:`evaluation_clips`):
            given rows, else the run's held-out clips (refused, :class:`NoHeldOutClips`, when
            it has none), or with ``eval_on="dissected"`` a ``holdout`` fraction of its own.
        sizes / points / spacing: prefix sizes of the forget/retain curve (default ``points``
            sizes up to the selection size, :func:`default_sizes`); fixed before any clip is
            looked at.
        seeds, random_mode: the random baseline (:func:`~dissect.pruning.select.random_like`).
        max_rest_acc_drop, select_fraction, split_seed, fixed_size, bootstrap,
            bootstrap_seed: the ``table4`` row's protocol (:func:`protocol_split`,
            :func:`~dissect.pruning.protocol.concept_row`): the size is chosen on the select
            half (largest class-mean logit forget gap whose retained accuracy falls by at most
            ``max_rest_acc_drop``, a fraction), and reported with ``bootstrap`` resamples of
            the report half; the random seeds get the same rule.
        tolerance_cents: pitch accuracy tolerance (``acc``); ``acc_semitone`` uses 100 cents.
        model_options: override the run's adapter options (e.g. ``{"hop_ms": 80}``).
        crop: ``(start_s, seconds)`` window of each evaluation clip.
        name: output file stem (default: the concept, slugged).
        write: write ``prune/<name>.json`` and ``prune/<name>.masks.{json,safetensors}``.
        model, adapter: use these instead of loading the run's model (both or neither).

    Returns:
        The report dict (what is written): ``report`` (all pruned, all evaluation clips),
        ``curve`` and ``random`` (the whole curve and random band over all evaluation clips:
        descriptive, nothing is chosen from them) and ``table4`` (the row chosen on the select
        half and reported on the report half).

    Raises:
        NoHeldOutClips: no held-out clips and none given.
        ValueError: no evaluation clip has a class, or a half lacks target or retained clips.
    """
    run_dir = Path(run_dir)
    log = log or (lambda s: print(s, file=sys.stderr))
    t_start = time.perf_counter()
    clips, eval_source = evaluation_clips(run_dir, eval_clips, eval_on, holdout, seed)
    setup = open_run(run_dir, layers=layers, model_options=model_options, device=device,
                     model=model, adapter=adapter)
    model, adapter = setup.model, setup.adapter
    sel: Selection = select_neurons(setup.rows, concept, method, terms=terms,
                                    concepts=concepts, closed_method=closed_method,
                                    top_k=top_k, threshold=threshold, layers=setup.layers,
                                    max_neurons=max_neurons)
    log(f"[prune] {concept!r} ({method}): {len(sel)} neurons {sel.per_layer()}")

    predicate = target_predicate(target) if target is not None else \
        _concept_target(run_dir, concept)
    es, notes = build_evalset(clips, adapter, setup.class_names, predicate, crop,
                              adapter.pitch_head(model))
    if not len(es):
        raise ValueError(f"{run_dir}: no evaluation clip ({eval_source}) has a true class of "
                         f"the head")
    rows_by_id = {str(c["id"]): c for c in clips}
    select, weights, _ = protocol_split(es, rows_by_id, [es.in_concept],
                                        select_fraction=select_fraction, split_seed=split_seed,
                                        fixed_size=fixed_size, n_boot=bootstrap,
                                        boot_seed=bootstrap_seed)
    counts = check_halves(concept, es.in_concept, select)
    prob = "sigmoid" if notes["pitch"] else "softmax"
    ev = Evaluator(model, adapter, es, prob=prob, bin_hz=notes["bin_hz"],
                   tolerances_cents=(tolerance_cents, 100.0), batch_size=batch_size,
                   device=setup.device, log=log)
    before = ev.measures()
    after = ev.measures(sel.ranked) if len(sel) else before
    report = unlearning_report(before, after, es.in_concept, es.groups)
    sizes = sorted({int(s) for s in sizes if 0 < int(s) <= len(sel)}) if sizes else \
        default_sizes(len(sel), points, spacing)
    units = {layer: setup.sites[layer].units for layer in setup.layers}
    rankings = {int(s): random_like(sel.ranked, units, int(s), random_mode) for s in seeds}
    curve, band = [], None
    if sizes:
        curve = forget_retain_curve(ev, sel.ranked, sizes, before)
        band = random_band(ev, sel.ranked, sizes, before, units, seeds, random_mode) \
            if seeds else None
    row, _ = concept_row(ev.measures, sel.ranked, sizes, rankings, es.in_concept, es.groups,
                         select, weights, max_rest_acc_drop=max_rest_acc_drop,
                         fixed_size=fixed_size)

    masks = export_masks(sel.ranked, setup.sites)
    stem = _slug(name or concept)
    out = {
        "format": 2,
        "concept": concept,
        "selection": {"method": method, "n_neurons": len(sel), "per_layer": sel.per_layer(),
                      "settings": sel.settings, "candidate_layers": setup.layers,
                      "features": setup.features,
                      "ranked": [[layer, unit] for layer, unit in sel.ranked]},
        "evaluation": _evaluation_block(es, notes, eval_source, target, concept, prob,
                                        tolerance_cents, crop, setup, holdout, seed,
                                        select, select_fraction, split_seed, bootstrap,
                                        bootstrap_seed, counts),
        "report": report,
        "curve": curve,
        "random": band,
        "table4": row,
        "passes": ev.passes,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    if write:
        pj, ps = save_masks(masks, run_dir / "prune" / f"{stem}.masks")
        out["masks"] = [str(pj.relative_to(run_dir)), str(ps.relative_to(run_dir))]
        artifacts.write_json(run_dir / "prune" / f"{stem}.json", _json_safe(out))
    return _json_safe(out)


def _evaluation_block(es: EvalSet, notes: Mapping[str, Any], source: str, target: Any,
                      concept: str, prob: str, tolerance_cents: float,
                      crop: tuple[float, float] | None, setup: PruneSetup, holdout: float,
                      seed: int, select: np.ndarray | None, select_fraction: float,
                      split_seed: int, bootstrap: int, bootstrap_seed: int,
                      counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    adapter = setup.adapter
    return {
        "source": source, "heldout": source != "dissected", "n_clips": len(es),
        "n_target": int(es.in_concept.sum()), "n_rest": int((~es.in_concept).sum()),
        "dropped_without_class": notes["dropped_without_class"],
        "target": target if isinstance(target, str) else
        ("callable" if target is not None else f"ground truth of {concept!r}"),
        "prob": prob, "pitch": notes["pitch"],
        "tolerance_cents": tolerance_cents if notes["pitch"] else None,
        "crop": list(crop) if crop else None,
        "adapter": {"name": adapter.name, "source": str(adapter.source),
                    "hop_ms": getattr(adapter, "hop_ms", None),
                    "options_from_run": ({**dict(setup.model_config.get("options") or {}),
                                          **dict(setup.model_options or {})}
                                         if setup.loaded else None)},
        "holdout": holdout if source == "dissected" else None,
        "seed": seed if source == "dissected" else None,
        "split": {"select_fraction": select_fraction if select is not None else 0.0,
                  "seed": split_seed, "n_select": int(select.sum()) if select is not None
                  else 0, "n_report": int((~select).sum()) if select is not None else len(es),
                  "stratified_by": "class and target flags", "grouped_by": "clip_group",
                  **(dict(counts) if counts else {})},
        "bootstrap": {"resamples": bootstrap, "seed": bootstrap_seed, "level": 0.95,
                      "resampled": "report clips by near-duplicate group, with replacement, "
                                   "within the strata of the concepts' target flags"},
        "clip_ids": es.ids,
        "select_ids": [c for c, s in zip(es.ids, select, strict=True) if s]
        if select is not None else [],
    }


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
