"""The HEAR downstream probe: hear-eval-kit's MLP and trainer, in plain PyTorch.

Model (``FullyConnectedPrediction``): ``hidden_layers`` x [Linear(hidden_dim) -> BatchNorm1d ->
Dropout(0.1) -> ReLU] -> Linear(n_labels). Weights re-initialised with xavier uniform or normal
(the grid's ``initialization``); the gain is ``calculate_gain("linear")`` for the first layer
and ``"relu"`` after a ReLU (so also for the output layer when there is a hidden layer); biases
keep PyTorch's default init. No input normalisation (``embedding_norm`` is built but unused, as
in heareval). Multiclass: softmax outputs, cross-entropy on the arg-max of the one-hot target.
Multilabel: sigmoid outputs, ``BCEWithLogitsLoss``.

Trainer (what the PyTorch-Lightning setup of hear-eval-kit does):

* Adam (``lr`` from the grid, PyTorch defaults otherwise), batch size 1024, batches in the
  order of the embedding memmap, **no per-epoch shuffling** (heareval passes the split name as
  a list, so its ``split_name == "train"`` shuffle test is never true; ``shuffle=True`` is our
  opt-in deviation);
* validation after every ``check_val_every_n_epoch``-th epoch (0-based epochs 2, 5, 8, ... for
  3) on the task's primary score (or on the validation loss when the task sets
  ``use_scoring_for_early_stopping: false``);
* best checkpoint = the first check with the strictly best value (a NaN score counts as the
  worst value); early stopping after ``patience`` checks without a strict improvement, or as
  soon as the monitored value is not finite (Lightning's ``check_finite``);
* at most ``max_epochs`` epochs; the kept model is the best checkpoint.

Grids (:data:`GRIDS`): heareval's ``PARAM_GRID`` ("default": 1-2 hidden layers x 4 learning
rates x 2 inits = 16 points, 500 epochs, validation every 3, patience 20), ``FAST_PARAM_GRID``
("fast": also max_epochs {10, 50} x validation every {3, 10} = 64 points) and
``FASTER_PARAM_GRID``. Points are listed in sklearn ``ParameterGrid`` order, shuffled with
``random.Random(42)`` (heareval's ``seed_everything(42)`` then ``random.shuffle``) and the first
``grid_points`` (8) are tried (:func:`grid_confs`).

Seeds: each trained probe runs under ``torch.random.fork_rng`` with its own seed, derived from
``(seed, split index, grid point index)``, so a result does not depend on what ran before it
(heareval seeds once per task and lets every model draw from one stream).

One unavoidable deviation: a training batch of a single row cannot pass BatchNorm in training
mode (PyTorch raises; so would heareval), so such a last batch is skipped.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np
import torch

from dissect.hear.tasks import data_splits, data_splits_from_folds

__all__ = [
    "FAST_PARAM_GRID",
    "FASTER_PARAM_GRID",
    "GRIDS",
    "PARAM_GRID",
    "ProbeMLP",
    "TrainResult",
    "data_splits",
    "data_splits_from_folds",
    "grid_confs",
    "parameter_grid",
    "predict",
    "run_seed",
    "targets_from_labels",
    "train_probe",
]

PARAM_GRID: dict[str, list[Any]] = {
    "hidden_layers": [1, 2],
    "hidden_dim": [1024],
    "dropout": [0.1],
    "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4],
    "patience": [20],
    "max_epochs": [500],
    "check_val_every_n_epoch": [3],
    "batch_size": [1024],
    "hidden_norm": ["batchnorm"],
    "norm_after_activation": [False],
    "embedding_norm": ["identity"],
    "initialization": ["xavier_uniform", "xavier_normal"],
    "optim": ["adam"],
}
FAST_PARAM_GRID = {**PARAM_GRID, "max_epochs": [10, 50], "check_val_every_n_epoch": [3, 10]}
FASTER_PARAM_GRID = {
    **PARAM_GRID,
    "hidden_layers": [0, 1],
    "hidden_dim": [64, 128],
    "patience": [1, 3],
    "max_epochs": [10],
    "check_val_every_n_epoch": [1],
}
GRIDS = {"default": PARAM_GRID, "fast": FAST_PARAM_GRID, "faster": FASTER_PARAM_GRID}
TASK_SPECIFIC_PARAM_GRID: dict[str, dict[str, list[Any]]] = {
    "dcase2016_task2": {"check_val_every_n_epoch": [10]},  # sed_eval is slow
}
GRID_SHUFFLE_SEED = 42

_INITS = {
    "xavier_uniform": torch.nn.init.xavier_uniform_,
    "xavier_normal": torch.nn.init.xavier_normal_,
}
_NORMS = {
    "batchnorm": torch.nn.BatchNorm1d,
    "layernorm": torch.nn.LayerNorm,
    "identity": torch.nn.Identity,
}
_OPTIMS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


# --------------------------------------------------------------------------- grid


def parameter_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """All points of ``grid`` in sklearn ``ParameterGrid`` order (keys sorted, last fastest)."""
    keys = sorted(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in product(*(grid[k] for k in keys))]


def grid_confs(
    grid: str | Mapping[str, Sequence[Any]] = "fast",
    metadata: Mapping[str, Any] | None = None,
    grid_points: int = 8,
) -> list[dict[str, Any]]:
    """The hyper-parameter points heareval tries on a task, in its order.

    ``grid`` is a name of :data:`GRIDS` or a grid dict; task-specific overrides come from
    :data:`TASK_SPECIFIC_PARAM_GRID` and ``metadata["evaluation_params"]
    ["task_specific_param_grid"]``.
    """
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"unknown grid {grid!r}; choose one of {sorted(GRIDS)}")
        final = dict(GRIDS[grid])
    else:
        final = dict(grid)
    metadata = metadata or {}
    final.update(TASK_SPECIFIC_PARAM_GRID.get(str(metadata.get("task_name")), {}))
    final.update(dict(metadata.get("evaluation_params", {})).get("task_specific_param_grid", {}))
    confs = parameter_grid(final)
    random.Random(GRID_SHUFFLE_SEED).shuffle(confs)
    return confs[: max(1, int(grid_points))]


def run_seed(seed: int, split_index: int, conf_index: int) -> int:
    """The torch seed of one trained probe."""
    return random.Random(f"hear-probe:{seed}:{split_index}:{conf_index}").randrange(2**31)


# --------------------------------------------------------------------------- model


class ProbeMLP(torch.nn.Module):
    """hear-eval-kit's ``FullyConnectedPrediction`` (see the module doc)."""

    def __init__(self, nfeatures: int, nlabels: int, prediction_type: str, conf: Mapping):
        super().__init__()
        if prediction_type not in ("multiclass", "multilabel"):
            raise ValueError(f"unknown prediction_type {prediction_type!r}")
        init = _INITS[conf["initialization"]]
        norm = _NORMS[conf["hidden_norm"]]
        layers: list[torch.nn.Module] = []
        dim, last = nfeatures, "linear"
        for _ in range(int(conf["hidden_layers"])):
            linear = torch.nn.Linear(dim, int(conf["hidden_dim"]))
            init(linear.weight, gain=torch.nn.init.calculate_gain(last))
            layers.append(linear)
            if not conf["norm_after_activation"]:
                layers.append(norm(int(conf["hidden_dim"])))
            layers.append(torch.nn.Dropout(float(conf["dropout"])))
            layers.append(torch.nn.ReLU())
            if conf["norm_after_activation"]:
                layers.append(norm(int(conf["hidden_dim"])))
            dim, last = int(conf["hidden_dim"]), "relu"
        self.hidden = torch.nn.Sequential(*layers) if layers else torch.nn.Identity()
        self.projection = torch.nn.Linear(dim, nlabels)
        init(self.projection.weight, gain=torch.nn.init.calculate_gain(last))
        self.prediction_type = prediction_type

    def forward_logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.hidden(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.forward_logit(x)
        if self.prediction_type == "multiclass":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.prediction_type == "multiclass":
            if not torch.all(y.sum(dim=1) == 1):
                raise ValueError("multiclass targets must have exactly one label per row")
            return torch.nn.functional.cross_entropy(logits, y.argmax(dim=1))
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y)


def targets_from_labels(labels: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """Multi-hot ``(n, len(vocabulary))`` float32 targets; unknown labels raise KeyError."""
    idx = {str(v): i for i, v in enumerate(vocabulary)}
    y = np.zeros((len(labels), len(vocabulary)), dtype=np.float32)
    for r, labs in enumerate(labels):
        for lab in labs:
            y[r, idx[str(lab)]] = 1.0
    return y


def predict(model: ProbeMLP, x: torch.Tensor | np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Probabilities (softmax / sigmoid) in eval mode, as float32 numpy."""
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(x, dtype=np.float32)) if isinstance(x, np.ndarray) else x
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            out.append(model(x[s : s + batch_size].to(device)).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.projection.out_features))


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """A trained probe.

    Attributes:
        model: the best checkpoint (eval mode).
        conf: its hyper-parameters.
        best_epoch: 0-based epoch of the best validation check.
        validation_score: the monitored value there (NaN if it was not finite).
        postprocessing: what ``validate`` returned with the best value (event tasks: the
            postprocessing setting chosen on validation for that epoch).
        epochs: epochs trained.
        history: ``[(epoch, value), ...]`` of every validation check.
        seconds: wall time.
        seed: the torch seed used.
    """

    model: ProbeMLP
    conf: dict[str, Any]
    best_epoch: int
    validation_score: float
    postprocessing: Any
    epochs: int
    history: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    seed: int = 0


def train_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    conf: Mapping[str, Any],
    prediction_type: str,
    validate: Callable[[np.ndarray], tuple[float, Any]] | None = None,
    *,
    maximize: bool = True,
    seed: int = 0,
    shuffle: bool = False,
    device: str = "cpu",
) -> TrainResult:
    """Train one probe with early stopping on validation (see the module doc).

    Args:
        x_train, y_train: training embeddings ``(n, d)`` and multi-hot targets ``(n, c)``.
        x_valid, y_valid: validation data.
        conf: one grid point.
        prediction_type: ``"multiclass"`` or ``"multilabel"``.
        validate: ``validate(valid_probabilities) -> (score, extra)``; ``None`` monitors the
            validation loss (minimised) instead.
        maximize: direction of ``validate``'s score.
        seed: torch seed (forked: the global RNG state is left as it was).
        shuffle: reshuffle training rows every epoch (deviation from heareval; off).
        device: torch device.
    """
    if validate is None:
        maximize = False
    t0 = time.perf_counter()
    xt = torch.as_tensor(np.asarray(x_train, dtype=np.float32)).to(device)
    yt = torch.as_tensor(np.asarray(y_train, dtype=np.float32)).to(device)
    xv = torch.as_tensor(np.asarray(x_valid, dtype=np.float32)).to(device)
    yv = torch.as_tensor(np.asarray(y_valid, dtype=np.float32))
    if len(xt) == 0 or len(xv) == 0:
        raise ValueError("train_probe needs non-empty train and validation sets")
    bs = int(conf["batch_size"])
    every = int(conf["check_val_every_n_epoch"])
    patience = int(conf["patience"])
    worst = -math.inf if maximize else math.inf
    better = (lambda a, b: a > b) if maximize else (lambda a, b: a < b)

    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = ProbeMLP(xt.shape[1], yt.shape[1], prediction_type, conf).to(device)
        optim = _OPTIMS[conf["optim"]](model.parameters(), lr=float(conf["lr"]))
        best_value, best_state, best_epoch, best_extra = None, None, -1, None
        es_best, wait = worst, 0
        history: list[tuple[int, float]] = []
        epoch = -1
        for epoch in range(int(conf["max_epochs"])):
            model.train()
            order = torch.randperm(len(xt), generator=gen) if shuffle else None
            for s in range(0, len(xt), bs):
                idx = order[s : s + bs] if order is not None else slice(s, s + bs)
                xb, yb = xt[idx], yt[idx]
                if len(xb) < 2 and conf["hidden_layers"] and conf["hidden_norm"] == "batchnorm":
                    continue
                loss = model.loss(model.forward_logit(xb), yb)
                optim.zero_grad()
                loss.backward()
                optim.step()
            if (epoch + 1) % every != 0:
                continue
            if validate is None:
                with torch.no_grad():
                    logits = torch.cat([model.forward_logit(xv[s : s + bs]).cpu()
                                        for s in range(0, len(xv), bs)])  # fmt: skip
                    value, extra = float(model.loss(logits, yv)), None
            else:
                value, extra = validate(predict(model, xv, bs))
                value = float(value)
            history.append((epoch, value))
            ranked = value if math.isfinite(value) else worst
            if best_value is None or better(ranked, best_value):
                best_value, best_epoch, best_extra = ranked, epoch, extra
                best_state = copy.deepcopy(model.state_dict())
            if not math.isfinite(value):
                break  # Lightning's EarlyStopping(check_finite=True)
            if better(value, es_best):
                es_best, wait = value, 0
            else:
                wait += 1
                if wait >= patience:
                    break
    if best_state is None:
        raise RuntimeError(
            f"no validation check ran: max_epochs={conf['max_epochs']} < "
            f"check_val_every_n_epoch={every}"
        )
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        conf=dict(conf),
        best_epoch=best_epoch,
        validation_score=float(best_value) if math.isfinite(best_value) else math.nan,
        postprocessing=best_extra,
        epochs=epoch + 1,
        history=history,
        seconds=time.perf_counter() - t0,
        seed=seed,
    )
