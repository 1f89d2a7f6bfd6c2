"""Last-layer dissection accuracy (AND Table 2).

Each output unit ``i`` of a classifier head has a known concept: its class name. A description
method predicts a ranked list of concepts per unit; we report

* ``top1``: % of units whose class is the top-1 prediction;
* ``top5``: % of units whose class is among the first five predictions; None when the method
  predicts fewer than five concepts per unit (``n_predicted``, e.g. ICL's one), as top-5 would
  then be top-1 under another name;
* ``cos``: mean cosine between the sentence embeddings (all-MiniLM-L6-v2 by default; AND used
  L12) of the true class name and the top-1 prediction (a unit without a prediction counts 0).

Names are compared case-insensitively with ``_``, ``-`` and spaces equal ("chirping_birds" ==
"chirping birds"). For pitch heads (CREPE: 360 bins, each named by its nearest note) class and
prediction are note names; ``top1_semitone`` / ``top5_semitone`` also count a prediction within
one semitone of the class's note ("A4" for an "A#4" bin). Several bins share one note name, so a
bin's class is its nearest note.

Units whose class is not in ``concepts`` (when given) can never be predicted; the ``scorable``
block reports the same metrics over the units whose class is in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_NOTE_RE = re.compile(r"^([a-g])(#|b|♯|♭)?(-?\d+)$")
_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def note_midi(name: str) -> int | None:
    """MIDI number of a note name ("A4" -> 69, "C#2" -> 37, "Bb3" -> 58); None otherwise."""
    m = _NOTE_RE.match(str(name).strip().lower())
    if not m:
        return None
    acc = {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m.group(2) or "", 0)
    return 12 * (int(m.group(3)) + 1) + _PC[m.group(1)] + acc


def _norm(x: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(x).strip().lower())


def _names(pred: Sequence[Any]) -> list[str]:
    """Concept names of one unit's ranked predictions (plain names or (name, score) pairs)."""
    out = []
    for p in pred or []:
        out.append(str(p[0] if isinstance(p, (list, tuple)) else p))
    return out


def _block(preds: list[list[str]], truth: list[str], cos: list[float] | None,
           pitch: bool) -> dict[str, Any]:
    n = len(truth)
    if n == 0:
        return {"n_units": 0, "top1": None, "top5": None, "cos": None, "n_predicted": 0}
    k = max((len(p) for p in preds), default=0)
    t1 = [bool(p) and _norm(p[0]) == _norm(t) for p, t in zip(preds, truth, strict=True)]
    t5 = [_norm(t) in {_norm(x) for x in p[:5]} for p, t in zip(preds, truth, strict=True)]
    out: dict[str, Any] = {"n_units": n, "top1": 100.0 * np.mean(t1),
                           # top-5 needs 5 predictions (ICL asks for 1: no top-5 then)
                           "top5": 100.0 * np.mean(t5) if k >= 5 else None,
                           "cos": float(np.mean(cos)) if cos is not None else None,
                           "n_predicted": k}
    if pitch:
        def near(p: str, t: str) -> bool:
            a, b = note_midi(p), note_midi(t)
            return a is not None and b is not None and abs(a - b) <= 1

        s1 = [bool(p) and near(p[0], t) for p, t in zip(preds, truth, strict=True)]
        s5 = [any(near(x, t) for x in p[:5]) for p, t in zip(preds, truth, strict=True)]
        out["top1_semitone"] = 100.0 * np.mean(s1)
        out["top5_semitone"] = 100.0 * np.mean(s5) if k >= 5 else None
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}


def last_layer_accuracy(labels_per_neuron: Sequence[Sequence[Any]], class_names: Sequence[str],
                        embedder=None, concepts: Sequence[str] | None = None,
                        pitch: bool | None = None) -> dict[str, Any]:
    """AND Table 2 metrics for a head.

    Args:
        labels_per_neuron: per head unit (unit ``i`` has class ``class_names[i]``), its ranked
            predicted concepts: names or ``(name, score)`` pairs, best first.
        class_names: the true class name of every unit.
        embedder: ``encode(texts) -> [n, d]`` (unit rows); default all-MiniLM-L6-v2. ``False``
            skips the cosine (reported as None).
        concepts: the concept set the predictions come from (enables the ``scorable`` block).
        pitch: report the within-one-semitone variants; default: when every class is a note.

    Returns:
        ``{"n_units", "top1", "top5", "cos", ["top1_semitone", "top5_semitone"],
        "scorable": {same over units whose class is in concepts}}`` (percentages, 0..100).
    """
    truth = [str(c) for c in class_names]
    if len(labels_per_neuron) != len(truth):
        raise ValueError(f"{len(labels_per_neuron)} label lists for {len(truth)} classes")
    preds = [_names(p) for p in labels_per_neuron]
    if pitch is None:
        pitch = bool(truth) and all(note_midi(t) is not None for t in truth)
    cos = None
    if embedder is not False:
        if embedder is None:
            from dissect.describe.embed import default_embedder

            embedder = default_embedder()
        vocab = sorted({t.replace("_", " ") for t in truth}
                       | {p[0].replace("_", " ") for p in preds if p})
        E = np.asarray(embedder.encode(vocab), dtype=np.float64)
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        row = {v: i for i, v in enumerate(vocab)}
        cos = [float(E[row[t.replace("_", " ")]] @ E[row[p[0].replace("_", " ")]]) if p else 0.0
               for p, t in zip(preds, truth, strict=True)]
    out = _block(preds, truth, cos, pitch)
    if concepts is not None:
        cset = {_norm(c) for c in concepts}
        keep = [i for i, t in enumerate(truth) if _norm(t) in cset]
        out["scorable"] = _block([preds[i] for i in keep], [truth[i] for i in keep],
                                 [cos[i] for i in keep] if cos is not None else None, pitch)
    return out
