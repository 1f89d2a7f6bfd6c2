"""A linear classifier head fitted on a model's own head input.

AND dissects classifiers fine-tuned on the probe set's classes (AST on ESC-50): their head
units are classes the set plays and the model is nearly always right on it. A pretrained
AudioSet model on another set is not (YAMNet on the free sounds: 4.6 % top-1), so its head
units cannot be found from their clips. :func:`fit_linear_head` fits the counterpart of AND's
fine-tuning that leaves the body as it is: a multinomial logistic regression on the input of
the model's head (YAMNet: the 1,024-d mean-pooled embedding), over the clips of the classes that
have enough of them. ``model.options.head=<file>`` (ONNX adapters) then replaces the head with
it, so the head layer's units are those classes.

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


def fit_linear_head(x: np.ndarray, labels: Sequence[str | None], min_clips: int = 5,
                    c: float = 1.0, seed: int = 0,
                    info: Mapping[str, Any] | None = None) -> LinearHead:
    """Multinomial logistic regression on standardised inputs, the scaler folded into the
    weights (``W' = W / sigma``, ``b' = b - W' mu``), so the head is one Linear.

    Args:
        x: ``[N, D]`` head inputs of the training clips.
        labels: ``N`` class names; ``None`` (unlabelled) rows are left out, and so are the rows
            of classes with fewer than ``min_clips`` clips.
        c: sklearn's inverse L2 strength ``C``.
        seed: the solver's random state.
        info: extra provenance kept in :attr:`LinearHead.info`.

    Raises:
        ValueError: fewer than two classes with ``min_clips`` clips, or mismatched lengths.
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
    keep = np.array([v in set(classes) for v in labels])
    y = np.array([classes.index(v) for v in np.asarray(labels, dtype=object)[keep]])
    scaler = StandardScaler().fit(x[keep])
    z = scaler.transform(x[keep])
    clf = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(z, y)
    sigma = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    weight = clf.coef_ / sigma
    bias = clf.intercept_ - weight @ scaler.mean_
    train_acc = float((clf.predict(z) == y).mean())
    meta = {"clips": int(keep.sum()), "dim": int(x.shape[1]), "min_clips": int(min_clips),
            "C": float(c), "seed": int(seed), "train_accuracy": train_acc,
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
        raise FileNotFoundError(f"head file not found: {path} (scripts/fit_head.py writes one)")
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
