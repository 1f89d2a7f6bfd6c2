"""HEAR 2021 scores, equal to ``heareval.score`` (hear-eval-kit 2021.1.3); event postprocessing.

Scene scores take ``predictions`` and ``targets`` as ``(n_items, n_labels)`` arrays: the
probabilities of the probe (softmax for multiclass, sigmoid for multilabel) and one-/multi-hot
targets.

=========================================== ==================================================
key                                         definition (as in heareval)
=========================================== ==================================================
``top1_acc``, ``pitch_acc``                 fraction with ``argmax(pred) == argmax(target)``
``chroma_acc``                              fraction with ``argmax(pred) % 12 ==
                                            argmax(target) % 12`` on vocabulary *indices*
                                            (equal to pitch-class agreement when the
                                            vocabulary is a contiguous MIDI range, as in
                                            NSynth and in our synth pitch task); pass
                                            ``pitch_of_index`` to use real MIDI numbers.
``mAP``                                     sklearn ``average_precision_score(macro)``
``d_prime``                                 per-class ROC AUC -> ``sqrt(2) * Phi^-1(AUC)``,
                                            mean over classes; NaN when sklearn raises
``aucroc``                                  sklearn ``roc_auc_score(macro)``; NaN on error
``event_onset_200ms_fms``                   sed_eval ``EventBasedMetrics`` (onset only,
                                            collar 200 ms), overall F-measure
``event_onset_50ms_fms``                    the same with a 50 ms collar
``event_onset_offset_50ms_20perc_fms``      onset + offset, 50 ms collar, offset within
                                            max(50 ms, 20 % of the reference length)
``segment_1s_er``                           sed_eval ``SegmentBasedMetrics`` (1 s), overall
                                            error rate (lower is better)
=========================================== ==================================================

Event scores take ``{file: [{"label", "start", "end"}, ...]}`` dicts (times in ms) for the
predictions and the targets; as in heareval, only files that are keys of the *predictions* are
evaluated (one ``evaluate`` call per file), and the labels given to sed_eval are the task
vocabulary in index order. They return ``((name, value), ...)`` tuples; the first is primary.

Postprocessing (:func:`events_from_frames`): per-class median filter over
``round(median_filter_ms / mean_hop_ms)`` frames (Python rounding, as heareval), threshold 0.5
(strictly greater), runs of active frames become events from the first to the last frame's
timestamp (no hop added), events shorter than ``min_duration`` ms are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

Events = dict[str, list[dict[str, Any]]]

# Default event postprocessing grid of hear-eval-kit (tuned for DCASE 2016 task 2).
EVENT_POSTPROCESSING_GRID: dict[str, list[float]] = {
    "median_filter_ms": [250],
    "min_duration": [125, 250],
}


def _check_2d(predictions: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predictions = np.asarray(predictions)
    targets = np.asarray(targets)
    if predictions.ndim != 2 or targets.ndim != 2:
        raise ValueError(
            f"predictions and targets must be 2-D, got {predictions.shape} and {targets.shape}"
        )
    if predictions.shape != targets.shape:
        raise ValueError(f"shape mismatch: {predictions.shape} vs {targets.shape}")
    return predictions, targets


def top1_acc(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of items whose arg-max prediction is the arg-max target (first max on ties)."""
    predictions, targets = _check_2d(predictions, targets)
    if len(targets) == 0:
        raise ZeroDivisionError("top1_acc of an empty set")
    correct = int(np.sum(np.argmax(predictions, axis=1) == np.argmax(targets, axis=1)))
    return correct / len(targets)


pitch_acc = top1_acc


def chroma_acc(
    predictions: np.ndarray, targets: np.ndarray, pitch_of_index: Sequence[int] | None = None
) -> float:
    """Pitch-class accuracy: octave errors count as correct.

    Args:
        pitch_of_index: MIDI number of each vocabulary index. ``None`` (heareval) compares
            vocabulary indices modulo 12, which is pitch-class agreement only for a contiguous
            MIDI vocabulary.
    """
    predictions, targets = _check_2d(predictions, targets)
    if len(targets) == 0:
        raise ZeroDivisionError("chroma_acc of an empty set")
    p = np.argmax(predictions, axis=1)
    t = np.argmax(targets, axis=1)
    if pitch_of_index is not None:
        lut = np.asarray(pitch_of_index, dtype=np.int64)
        p, t = lut[p], lut[t]
    return int(np.sum(p % 12 == t % 12)) / len(targets)


def mean_average_precision(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Macro-averaged average precision (sklearn); classes without positives behave as sklearn."""
    from sklearn.metrics import average_precision_score

    predictions, targets = _check_2d(predictions, targets)
    return float(average_precision_score(targets, predictions, average="macro"))


def d_prime(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of ``sqrt(2) * norm.ppf(AUC_class)``; NaN if sklearn cannot score."""
    from scipy import stats
    from sklearn.metrics import roc_auc_score

    predictions, targets = _check_2d(predictions, targets)
    try:
        auc = roc_auc_score(targets, predictions, average=None)
    except ValueError:
        return math.nan
    return float(np.mean(stats.norm().ppf(auc) * np.sqrt(2.0)))


def aucroc(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Macro ROC AUC (sklearn); NaN if sklearn cannot score (e.g. a class without positives)."""
    from sklearn.metrics import roc_auc_score

    predictions, targets = _check_2d(predictions, targets)
    try:
        return float(roc_auc_score(targets, predictions, average="macro"))
    except ValueError:
        return math.nan


# --------------------------------------------------------------------------- event scores


def _containers(events: Events, files: Sequence[str]) -> dict[str, Any]:
    from dcase_util.containers import MetaDataContainer

    out = {}
    for f in files:
        out[f] = MetaDataContainer(
            [
                {
                    "event_label": str(ev["label"]),
                    "event_onset": float(ev["start"]) / 1000.0,
                    "event_offset": float(ev["end"]) / 1000.0,
                    "file": f,
                }
                for ev in events.get(f, [])
            ]
        )
    return out


def sed_eval_scores(
    predictions: Events,
    targets: Events,
    labels: Sequence[str],
    *,
    kind: str,
    params: Mapping[str, Any],
    scores: Sequence[str],
) -> tuple[tuple[str, float], ...]:
    """Overall sed_eval scores, evaluated file by file over the keys of ``predictions``.

    Args:
        labels: the task vocabulary in index order (``event_label_list`` of sed_eval).
        kind: ``"event"`` (``EventBasedMetrics``) or ``"segment"`` (``SegmentBasedMetrics``).
        params: keyword arguments of the sed_eval metric class.
        scores: overall score names to return, e.g. ``("f_measure", "precision", "recall")``.
    """
    import sed_eval

    cls = {
        "event": sed_eval.sound_event.EventBasedMetrics,
        "segment": sed_eval.sound_event.SegmentBasedMetrics,
    }[kind]
    metric = cls(event_label_list=[str(x) for x in labels], **dict(params))
    files = list(predictions)
    est = _containers(predictions, files)
    ref = _containers(targets, files)
    for f in files:
        metric.evaluate(reference_event_list=ref[f], estimated_event_list=est[f])
    overall: dict[str, float] = {}
    for group in reversed(list(metric.results_overall_metrics().values())):
        overall.update(group)  # earlier groups win, as ChainMap in heareval
    return tuple((s, float(overall[s])) for s in scores)


@dataclass(frozen=True)
class Score:
    """A named HEAR score.

    Attributes:
        name: the heareval key (``"top1_acc"``).
        kind: ``"scene"`` (arrays) or ``"event"`` (event dicts).
        maximize: False for losses/error rates.
        fn: ``fn(predictions, targets, labels) -> float | tuple[(name, value), ...]``.
    """

    name: str
    kind: str
    maximize: bool
    fn: Callable[..., Any]

    def __call__(self, predictions: Any, targets: Any, labels: Sequence[str] = ()) -> Any:
        return self.fn(predictions, targets, labels)

    def primary(self, predictions: Any, targets: Any, labels: Sequence[str] = ()) -> float:
        """The value (first sub-score for event scores)."""
        out = self(predictions, targets, labels)
        return float(out[0][1]) if isinstance(out, tuple) else float(out)


def _event(params: dict[str, Any], scores=("f_measure", "precision", "recall"), kind="event"):
    return lambda p, t, labels: sed_eval_scores(
        p, t, labels, kind=kind, params=params, scores=scores
    )


SCORES: dict[str, Score] = {
    "top1_acc": Score("top1_acc", "scene", True, lambda p, t, _: top1_acc(p, t)),
    "pitch_acc": Score("pitch_acc", "scene", True, lambda p, t, _: pitch_acc(p, t)),
    "chroma_acc": Score("chroma_acc", "scene", True, lambda p, t, _: chroma_acc(p, t)),
    "mAP": Score("mAP", "scene", True, lambda p, t, _: mean_average_precision(p, t)),
    "d_prime": Score("d_prime", "scene", True, lambda p, t, _: d_prime(p, t)),
    "aucroc": Score("aucroc", "scene", True, lambda p, t, _: aucroc(p, t)),
    "event_onset_200ms_fms": Score(
        "event_onset_200ms_fms",
        "event",
        True,
        _event({"evaluate_onset": True, "evaluate_offset": False, "t_collar": 0.2}),
    ),
    "event_onset_50ms_fms": Score(
        "event_onset_50ms_fms",
        "event",
        True,
        _event({"evaluate_onset": True, "evaluate_offset": False, "t_collar": 0.05}),
    ),
    "event_onset_offset_50ms_20perc_fms": Score(
        "event_onset_offset_50ms_20perc_fms",
        "event",
        True,
        _event(
            {
                "evaluate_onset": True,
                "evaluate_offset": True,
                "t_collar": 0.05,
                "percentage_of_length": 0.2,
            }
        ),
    ),
    "segment_1s_er": Score(
        "segment_1s_er",
        "event",
        False,
        _event({"time_resolution": 1.0}, scores=("error_rate",), kind="segment"),
    ),
}


def get_score(name: str) -> Score:
    try:
        return SCORES[name]
    except KeyError:
        raise KeyError(f"unknown HEAR score {name!r}; known: {sorted(SCORES)}") from None


def score_all(
    names: Sequence[str], predictions: Any, targets: Any, labels: Sequence[str] = ()
) -> dict[str, float]:
    """Every score of ``names`` as a flat dict, named as heareval logs them.

    Event scores add their sub-scores: ``event_onset_200ms_fms`` (the F-measure) plus
    ``event_onset_200ms_fms_f_measure``, ``..._precision`` and ``..._recall``.
    """
    out: dict[str, float] = {}
    for name in names:
        ret = get_score(name)(predictions, targets, labels)
        if isinstance(ret, tuple):
            out[name] = float(ret[0][1])
            for sub, value in ret:
                out[f"{name}_{sub}"] = float(value)
        else:
            out[name] = float(ret)
    return out


# --------------------------------------------------------------------------- postprocessing


def _median_filter_width(median_filter_ms: float, timestamps: np.ndarray) -> int:
    if not median_filter_ms or len(timestamps) < 2:
        return 0
    hop = float(np.mean(np.diff(timestamps)))
    return int(round(median_filter_ms / hop))  # banker's rounding, as heareval


def events_from_frames(
    probs: np.ndarray,
    timestamps: np.ndarray,
    labels: Sequence[str],
    threshold: float = 0.5,
    median_filter_ms: float = 150,
    min_duration: float = 60.0,
) -> list[dict[str, Any]]:
    """Events of one file from per-frame probabilities (``heareval``'s
    ``create_events_from_prediction``).

    Args:
        probs: ``(n_frames, n_labels)`` probabilities, any frame order.
        timestamps: ``(n_frames,)`` frame centres in ms.
        labels: label of each column.
        threshold: a frame is active when its (filtered) probability is strictly above this.
        median_filter_ms: median filter length in ms (0: none).
        min_duration: drop events with ``end - start < min_duration`` (ms).

    Returns:
        ``[{"label", "start", "end"}, ...]`` sorted by start (stable).
    """
    from scipy.ndimage import median_filter

    probs = np.asarray(probs)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    order = np.argsort(timestamps, kind="stable")
    timestamps = timestamps[order]
    probs = probs[order]
    width = _median_filter_width(median_filter_ms, timestamps)
    if width:
        probs = median_filter(probs, size=(width, 1))
    active = probs > threshold
    events = []
    for j in range(active.shape[1]):
        idx = np.flatnonzero(active[:, j])
        if idx.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(idx) != 1)
        starts = np.concatenate([[idx[0]], idx[breaks + 1]])
        ends = np.concatenate([idx[breaks], [idx[-1]]])
        for s, e in zip(starts, ends, strict=True):
            start, end = float(timestamps[s]), float(timestamps[e])
            if end - start >= min_duration:
                events.append({"label": labels[j], "start": start, "end": end})
    events.sort(key=lambda ev: ev["start"])
    return events


def postprocessing_grid(grid: Mapping[str, Sequence[float]]) -> list[tuple[tuple[str, Any], ...]]:
    """The grid points as ``((key, value), ...)`` tuples in sklearn ``ParameterGrid`` order."""
    keys = sorted(grid)
    return [tuple(zip(keys, vals, strict=True)) for vals in product(*(grid[k] for k in keys))]


def events_for_files(
    probs: np.ndarray,
    filenames: Sequence[str],
    timestamps: Sequence[float],
    labels: Sequence[str],
    grid: Mapping[str, Sequence[float]] | None = None,
    postprocessing: tuple[tuple[str, Any], ...] | None = None,
) -> dict[tuple[tuple[str, Any], ...], Events]:
    """Events for every file of a flat frame table, per postprocessing setting.

    Frames are grouped by file name (its last path component, as heareval's slug); with
    ``postprocessing`` given only that setting is computed, otherwise every point of ``grid``
    (default :data:`EVENT_POSTPROCESSING_GRID`).
    """
    probs = np.asarray(probs)
    if not (len(probs) == len(filenames) == len(timestamps)):
        raise ValueError("probs, filenames and timestamps must have the same length")
    rows: dict[str, list[int]] = {}
    for i, f in enumerate(filenames):
        slug = str(f).replace("\\", "/").rsplit("/", 1)[-1]
        rows.setdefault(slug, []).append(i)
    ts = np.asarray(timestamps, dtype=np.float64)
    settings = (
        [tuple(postprocessing)]
        if postprocessing
        else postprocessing_grid(grid or EVENT_POSTPROCESSING_GRID)
    )
    out: dict[tuple[tuple[str, Any], ...], Events] = {}
    for setting in settings:
        kw = dict(setting)
        out[setting] = {
            slug: events_from_frames(probs[idx], ts[idx], labels, **kw)
            for slug, idx in rows.items()
        }
    return out
