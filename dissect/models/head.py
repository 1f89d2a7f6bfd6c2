"""A linear classifier head fitted on a model's own head input.

AND dissects classifiers fine-tuned on the probe set's classes (AST on ESC-50): their head
units are classes the set plays and the model is nearly always right on it. A pretrained
AudioSet model on another set is not (YAMNet on the free sounds: 4.6 % top-1), so its head
units cannot be found from their clips. :func:`fit_linear_head` fits the counterpart of AND's
fine-tuning that leaves the body as it is: logistic regressions on the input of the model's
head (YAMNet: the 1,024-d mean-pooled embedding), one unit per class that has enough clips.
``model.options.head=<file>`` (ONNX adapters) then replaces the head with it, so the head
layer's units are those classes.

The file is safetensors: ``weight`` float32 ``[C, D]``, ``bias`` float32 ``[C]``, metadata
``format`` (:data:`HEAD_FORMAT`), ``classes`` (JSON list, unit order) and ``info`` (JSON: what
it was fitted on and its training accuracy).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HEAD_FORMAT = "dissect-linear-head/1"


@dataclass
class LinearHead:
    """``logits = weight @ x + bias`` for an input ``x`` ``[D]``.

    Attributes:
        weight: float32 ``[C, D]``.
        bias: float32 ``[C]``.
        classes: the ``C`` class names, in unit order.
        info: provenance (clips, classes, regularisation, training accuracy).
    """

    weight: np.ndarray
    bias: np.ndarray
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``[N, D] -> [N, C]`` (float64)."""
        return np.asarray(x, np.float64) @ self.weight.T.astype(np.float64) + self.bias


#: Head kinds: one logistic regression per class against every other clip (``ovr``, the
#: multi-label sigmoid head YAMNet itself has), or one softmax over the classes (``softmax``).
HEAD_KINDS = ("ovr", "softmax")


def fit_linear_head(x: np.ndarray, labels: Sequence[str | None], min_clips: int = 5,
                    c: float = 1.0, seed: int = 0, kind: str = "ovr",
                    info: Mapping[str, Any] | None = None) -> LinearHead:
    """Logistic regression on standardised inputs, the scaler folded into the weights
    (``W' = W / sigma``, ``b' = b - W' mu``), so the head is one Linear.

    ``kind="ovr"`` (default): per class, a binary logistic regression of that class against
    *every* other training row, unlabelled ones and those of rare classes included, like
    YAMNet's own 521 sigmoid outputs. A unit's logit then says "this class rather than anything
    else in the set", and clips of no head class are negatives it was fitted on. ``softmax``:
    one multinomial regression over the head classes' rows only; its logits are unconstrained
    on clips of no class, which then top every unit (see docs/real-audio.md).

    Args:
        x: ``[N, D]`` head inputs of the training clips.
        labels: ``N`` class names or ``None`` (unlabelled). Classes with fewer than
            ``min_clips`` clips get no unit.
        c: sklearn's inverse L2 strength ``C``.
        seed: the solver's random state.
        kind: one of :data:`HEAD_KINDS`.
        info: extra provenance kept in :attr:`LinearHead.info`.

    Raises:
        ValueError: fewer than two classes with ``min_clips`` clips, mismatched lengths, or
            an unknown ``kind``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(labels):
        raise ValueError(f"head inputs {x.shape} do not match {len(labels)} labels")
    counts = Counter(v for v in labels if v)
    classes = sorted(k for k, n in counts.items() if n >= min_clips)
    if len(classes) < 2:
        raise ValueError(f"a head needs two classes with at least {min_clips} clips; "
                         f"have {dict(counts)}")
    if kind not in HEAD_KINDS:
        raise ValueError(f"head kind must be one of {HEAD_KINDS}, got {kind!r}")
    known = set(classes)
    labelled = np.array([v in known for v in labels])
    keep = labelled if kind == "softmax" else np.ones(len(labels), dtype=bool)
    scaler = StandardScaler().fit(x[keep])
    z = scaler.transform(x[keep])
    names = np.asarray(labels, dtype=object)[keep]
    if kind == "softmax":
        y = np.array([classes.index(v) for v in names])
        clf = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(z, y)
        coef, intercept = clf.coef_, clf.intercept_
    else:
        fits = [LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(z, names == k)
                for k in classes]
        coef = np.concatenate([f.coef_ for f in fits])
        intercept = np.concatenate([f.intercept_ for f in fits])
    sigma = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    weight = coef / sigma
    bias = intercept - weight @ scaler.mean_
    # the best unit of each clip of a head class, as a classifier is read
    zl = scaler.transform(x[labelled])
    truth = [classes.index(v) for v in np.asarray(labels, dtype=object)[labelled]]
    train_acc = float(np.mean((zl @ coef.T + intercept).argmax(1) == truth))
    meta = {"kind": kind, "clips": int(keep.sum()), "labelled_clips": int(labelled.sum()),
            "dim": int(x.shape[1]), "min_clips": int(min_clips), "C": float(c),
            "seed": int(seed), "train_accuracy": train_acc,
            "clips_per_class": {k: counts[k] for k in classes}, **dict(info or {})}
    return LinearHead(weight.astype(np.float32), bias.astype(np.float32), classes, meta)


def save_head(head: LinearHead, path: str | os.PathLike) -> Path:
    """Write ``head`` as safetensors (see the module docstring); returns the path."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"weight": np.ascontiguousarray(head.weight, np.float32),
               "bias": np.ascontiguousarray(head.bias, np.float32)}, str(path),
              metadata={"format": HEAD_FORMAT, "classes": json.dumps(head.classes),
                        "info": json.dumps(head.info, sort_keys=True)})
    return path


def load_head(path: str | os.PathLike) -> LinearHead:
    """Read a head file written by :func:`save_head`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a head file, or its shapes and class list disagree (names the file).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"head file not found: {path} (dissect fit-head writes one)")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open API)
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: not a safetensors head file ({e})") from e
    if meta.get("format") != HEAD_FORMAT or set(tensors) != {"weight", "bias"}:
        raise ValueError(f"{path}: not a {HEAD_FORMAT} file (format {meta.get('format')!r}, "
                         f"tensors {sorted(tensors)})")
    classes = json.loads(meta.get("classes", "[]"))
    w, b = tensors["weight"], tensors["bias"]
    if w.ndim != 2 or b.shape != (w.shape[0],) or len(classes) != w.shape[0]:
        raise ValueError(f"{path}: weight {w.shape}, bias {b.shape} and {len(classes)} class "
                         "names disagree")
    return LinearHead(w.astype(np.float32), b.astype(np.float32), [str(c) for c in classes],
                      json.loads(meta.get("info", "{}")))
