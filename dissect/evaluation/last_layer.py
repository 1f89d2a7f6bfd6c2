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

**A head whose classes are not the probe set's labels** (YAMNet's 521 AudioSet classes on
ESC-50's 50 categories): :func:`map_names` maps each class onto the set's label vocabulary
(:func:`label_vocabulary`) by exact name, normalised name (:func:`label_key` of one of its
:func:`name_alternatives`), else the MiniLM-nearest label at cosine >= :data:`MAP_THRESHOLD`;
:func:`rank_labels` reads a description as ranked labels; :func:`mapped_accuracy` scores the
units whose class maps onto a label with enough clips and lists the mapping.
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
            from dissect.description.embed import default_embedder

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


# --------------------------------------------------------------------------- head -> probe labels
#: MiniLM (all-MiniLM-L6-v2) cosine at or above which a head class with no exact or normalised
#: match is mapped onto its nearest probe label. Chosen on YAMNet's 521 AudioSet classes against
#: ESC-50's 50 categories, every embedding match judged by hand
#: (``benchmarks/head_label_mapping.py``; ``docs/real-audio.md``, "Table 2 for any head"): of the
#: embedding matches :func:`map_names` makes, 19 of the 23 at cosine >= 0.70 are right (83 %;
#: wrong: Alarm, Clicking, Keyboard (musical), Mouse; 7 of 7 in [0.70, 0.75)) but only 5 of the
#: 12 in [0.65, 0.70) (42 %): precision falls off below 0.70. (All-MiniLM-L6-v2 on names of
#: 1-3 words; another embedder needs its own threshold.)
MAP_THRESHOLD = 0.70

_PAREN_RE = re.compile(r"\([^)]*\)")
_PUNCT_RE = re.compile(r"[^\w\s#]+")


def label_key(name: Any) -> str:
    """The normalised form of a class or label name: lower case, ``_``/``-`` and punctuation as
    spaces, each word's plural ``s`` dropped (words of 4+ letters not ending in ``ss``):
    ``"church_bells"`` and ``"Church bell"`` are both ``"church bell"``."""
    text = _PUNCT_RE.sub(" ", str(name).strip().lower().replace("_", " ").replace("-", " "))
    words = [w[:-1] if len(w) >= 4 and w.endswith("s") and not w.endswith("ss") else w
             for w in text.split()]
    return " ".join(words)


def _plain(name: Any) -> str:
    """Lower case with ``_``/``-`` as spaces: the text embedded for a name or label."""
    return " ".join(re.sub(r"[_\-]", " ", str(name).strip().lower()).split())


def name_alternatives(name: str) -> list[str]:
    """The names a head class goes by: AudioSet lists synonyms with commas and qualifies with
    parentheses (``"Crying, sobbing"`` -> ``["crying, sobbing", "crying", "sobbing"]``;
    ``"Ambulance (siren)"`` -> ``["ambulance (siren)", "ambulance"]``): the whole name in lower
    case (``_``/``-`` as spaces), then each comma part without the parenthesised qualifier."""
    whole = _plain(name)
    parts = [" ".join(p.split()) for p in _PAREN_RE.sub(" ", whole).split(",")]
    return list(dict.fromkeys([whole, *[p for p in parts if p]]))


def label_vocabulary(clips: Sequence[dict], columns: Sequence[str] | None = None
                     ) -> tuple[list[str], dict[str, int], list[str]]:
    """The probe set's label vocabulary.

    Args:
        clips: ``clips.jsonl`` rows (``{"labels": {column: value or list}}``).
        columns: label columns to read; None: every label column except the numeric ones that
            are a function of a named one
            (:func:`~dissect.description.captioners.labels.redundant_label_columns`: ESC-50's
            ``target``).

    Returns:
        ``(labels, clips_per_key, columns)``: one display name per :func:`label_key` (the first
        value seen), in first-seen order; per key, the number of clips carrying it (a clip
        counts once per key); the columns read.
    """
    from dissect.description.captioners.labels import redundant_label_columns

    if columns is None:
        drop = redundant_label_columns(clips)
        columns = [k for k in dict.fromkeys(str(k) for c in clips for k in (c.get("labels") or {}))
                   if k not in drop]
    columns = [str(c) for c in columns]
    shown: dict[str, str] = {}
    counts: dict[str, int] = {}
    for clip in clips:
        labels = clip.get("labels") or {}
        keys = set()
        for col in columns:
            v = labels.get(col)
            for x in v if isinstance(v, (list, tuple)) else [v]:
                if x is None or isinstance(x, (bool, dict)) or str(x).strip() == "":
                    continue
                text = str(int(x)) if isinstance(x, float) and float(x).is_integer() else str(x)
                k = label_key(text)
                if k:
                    shown.setdefault(k, text)
                    keys.add(k)
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
    return list(shown.values()), counts, columns


def _unit_rows(E: np.ndarray) -> np.ndarray:
    E = np.asarray(E, dtype=np.float64)
    return E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)


def map_names(names: Sequence[str], labels: Sequence[str], embedder,
              threshold: float = MAP_THRESHOLD) -> list[dict[str, Any] | None]:
    """Map class (or concept) names onto probe labels.

    Per name, the first rule that applies:

    1. ``exact``: the name equals a label (as strings);
    2. ``normalised``: one of its :func:`name_alternatives` has the :func:`label_key` of a label
       (``"Church bell"`` -> ``church_bells``, ``"Canidae, dogs, wolves"`` -> ``dog``);
    3. ``embedding``: the label nearest to it by sentence-embedding cosine (the largest over its
       alternatives) when that cosine is at least ``threshold`` and no name maps onto that label
       by rule 1 or 2 (a label that has its own class keeps it: ``"Animal"`` is not mapped onto
       ``dog`` when a ``"Dog"`` class exists);
    else None.

    Args:
        names: the names to map (``[n]``).
        labels: the probe set's labels (:func:`label_vocabulary`).
        embedder: ``encode(texts) -> [m, d]``; only used for names left by rules 1-2.
        threshold: the cosine cut of rule 3 (default :data:`MAP_THRESHOLD`).

    Returns:
        Per name, None or ``{"label": the label, "how": "exact" | "normalised" | "embedding",
        "cos": the cosine (rule 3; None otherwise)}``.
    """
    labels = [str(x) for x in labels]
    exact = {lab: lab for lab in labels}
    by_key: dict[str, str] = {}
    for lab in labels:
        by_key.setdefault(label_key(lab), lab)
    out: list[dict[str, Any] | None] = []
    pending: list[int] = []
    for i, name in enumerate(names):
        name = str(name)
        if name in exact:
            out.append({"label": name, "how": "exact", "cos": None})
            continue
        hit = next((by_key[k] for k in (label_key(a) for a in name_alternatives(name))
                    if k in by_key), None)
        if hit is not None:
            out.append({"label": hit, "how": "normalised", "cos": None})
            continue
        out.append(None)
        pending.append(i)
    if not pending or not labels or embedder is None:
        return out
    taken = {label_key(m["label"]) for m in out if m is not None}
    alts = [name_alternatives(str(names[i])) for i in pending]
    flat = [a for al in alts for a in al]
    L = _unit_rows(embedder.encode([_plain(lab) for lab in labels]))
    A = _unit_rows(embedder.encode(flat))
    S = A @ L.T  # [alternatives, labels]
    row = 0
    for i, al in zip(pending, alts, strict=True):
        s = S[row: row + len(al)].max(axis=0)
        row += len(al)
        j = int(np.argmax(s))
        if s[j] >= threshold and label_key(labels[j]) not in taken:
            out[i] = {"label": labels[j], "how": "embedding", "cos": float(s[j])}
    return out


def rank_labels(texts: Sequence[str], labels: Sequence[str], embedder, k: int = 5
                ) -> list[list[str]]:
    """Descriptions as ranked probe labels: a text whose :func:`label_key` is a label's names
    that label first; then the labels by sentence-embedding cosine to the text, up to ``k`` in
    all. An empty text predicts nothing.

    Args:
        texts: one description per unit (``[n]``; the claim of the shown description, AND's
            summary).
        labels: the probe set's labels.
        embedder: ``encode(texts) -> [m, d]``.
        k: labels per text.

    Returns:
        Per text, up to ``k`` labels, best first (``[]`` for an empty text).
    """
    labels = [str(x) for x in labels]
    uniq = sorted({str(t).strip() for t in texts if str(t).strip()})
    if not uniq or not labels:
        return [[] for _ in texts]
    by_key = {}
    for j, lab in enumerate(labels):
        by_key.setdefault(label_key(lab), j)
    E = _unit_rows(embedder.encode(uniq + [_plain(lab) for lab in labels]))
    S = E[: len(uniq)] @ E[len(uniq):].T  # [texts, labels]
    best: dict[str, list[str]] = {}
    for i, t in enumerate(uniq):
        order = [int(j) for j in np.argsort(-S[i], kind="stable")]
        first = by_key.get(label_key(t))
        if first is not None:
            order = [first] + [j for j in order if j != first]
        best[t] = [labels[j] for j in order[:k]]
    return [best.get(str(t).strip(), []) for t in texts]


def mapped_accuracy(preds: Sequence[Sequence[str | None]], class_names: Sequence[str],
                    mapping: Sequence[dict[str, Any] | None], clips_per_key: dict[str, int],
                    min_clips: int, n_predicted: int | None = None) -> dict[str, Any]:
    """Table 2 over the head units whose class maps onto a probe label with enough clips.

    Args:
        preds: per head unit, its predicted probe labels, best first (``[n units]`` lists;
            None for a prediction that is no probe label, e.g. an unmapped concept).
        class_names: per head unit, its class (``[n units]``).
        mapping: per head unit, :func:`map_names`'s entry for its class (or None).
        clips_per_key: clips per :func:`label_key` (:func:`label_vocabulary`).
        min_clips: a unit is scored when its label has at least this many clips.
        n_predicted: labels each method predicts per unit (top-5 needs 5; default: the most
            any unit has).

    Returns:
        ``{"n_classes", "n_mapped", "n_units"`` (the scored units: the denominator),
        ``"min_clips", "top1", "top5"`` (% of the scored units whose label is the first / among
        the first five predictions; top5 None with fewer than 5 predictions), ``"right"``
        (scored units right at top-1), ``"mapping": [{"unit", "class", "label", "how", "cos",
        "clips", "scored", "predicted", "right"}, ...]`` (the mapped units, by unit)}``.
    """
    if not (len(preds) == len(class_names) == len(mapping)):
        raise ValueError(f"{len(preds)} predictions, {len(class_names)} classes and "
                         f"{len(mapping)} mapping entries: one each per head unit")
    k = n_predicted if n_predicted is not None else max((len(p) for p in preds), default=0)
    rows, t1, t5 = [], [], []
    for u, (p, name, m) in enumerate(zip(preds, class_names, mapping, strict=True)):
        if m is None:
            continue
        key = label_key(m["label"])
        n = int(clips_per_key.get(key, 0))
        keys = [label_key(x) if x is not None else None for x in p]
        right = bool(keys) and keys[0] == key
        scored = n >= min_clips
        if scored:
            t1.append(right)
            t5.append(key in keys[:5])
        rows.append({"unit": u, "class": str(name), "label": m["label"], "how": m["how"],
                     "cos": m.get("cos"), "clips": n, "scored": scored,
                     "predicted": p[0] if p else None, "right": right})
    return {"n_classes": len(class_names), "n_mapped": len(rows), "n_units": len(t1),
            "min_clips": int(min_clips),
            "top1": 100.0 * float(np.mean(t1)) if t1 else None,
            "top5": 100.0 * float(np.mean(t5)) if t5 and k >= 5 else None,
            "right": int(sum(t1)), "mapping": rows}
