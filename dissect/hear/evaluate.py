"""The HEAR downstream protocol on cached embeddings, and :func:`run_hear` (module + task dirs ->
scores table).

Per task and seed (hear-eval-kit's ``task_predictions``):

1. splits from the metadata (:func:`~dissect.hear.tasks.data_splits`): one train/valid/test split,
   or the k-fold rotation;
2. hyper-parameter search on split 0 only: the ``grid_points`` (8) first points of the shuffled
   grid (:func:`~dissect.hear.probe.grid_confs`), each trained with early stopping on the
   validation fold's primary score; the best validation score wins (ties: the earlier point;
   a NaN score ranks last);
3. the winner's model is kept for split 0; the other splits train one model each with the
   winning hyper-parameters (``per_fold_search=True``, our opt-in deviation, searches the grid
   on every split instead);
4. each model is scored on its test fold with every score of ``evaluation``; event tasks use the
   postprocessing chosen on validation at the best epoch; the scores are averaged over folds
   (mean and sample std, ``ddof=1``, as heareval's pandas aggregation).

Event tasks: at every validation check each point of the postprocessing grid (metadata
``evaluation_params.event_postprocessing_grid``, else :data:`~dissect.hear.metrics.
EVENT_POSTPROCESSING_GRID`) is scored on the validation fold; the best (NaN counted as 0; ties
broken as heareval's descending sort of ``(score, setting)`` pairs) is remembered for that epoch.

Outputs of :func:`run_hear` in ``out_dir``:

* ``embeddings/<task>/`` the embedding cache (:mod:`dissect.hear.embed`; ``embeddings_dir``
  moves it);
* ``predictions/<task>.json`` per seed and fold: test scores, validation score, best epoch,
  seconds, hyper-parameters, postprocessing (like heareval's ``test.predicted-scores.json``);
* ``scores.json`` and ``scores.csv`` (written atomically): one row per (task, score) with the
  mean and sample std over every (seed, fold) test result, ``n`` results, and ``over``
  (``folds``, ``seeds`` or ``folds x seeds``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from dissect.artifacts import write_json, write_text
from dissect.hear.embed import EmbeddedTask, LoadedModule, embed_task, load_module
from dissect.hear.metrics import (
    EVENT_POSTPROCESSING_GRID,
    events_for_files,
    get_score,
    postprocessing_grid,
    score_all,
)
from dissect.hear.probe import TrainResult, grid_confs, predict, run_seed, targets_from_labels
from dissect.hear.probe import train_probe as _train_probe
from dissect.hear.tasks import HearTask, data_splits, find_tasks, read_task
from dissect.util import csv_text

CSV_COLUMNS = ["module", "task", "score", "primary", "mean", "std", "n", "n_nan", "over",
               "values"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _SplitData:
    """Embeddings + targets of one or more splits, concatenated in the given order."""

    def __init__(self, emb: EmbeddedTask, names: Sequence[str], cache: dict[str, Any]):
        parts = []
        for n in names:
            if n not in cache:
                cache[n] = emb.split(n)
            parts.append(cache[n])
        self.x = np.concatenate([np.asarray(p.embeddings, dtype=np.float32) for p in parts])
        labels = [lab for p in parts for lab in p.labels]
        self.y = targets_from_labels(labels, emb.vocabulary)
        self.files: list[str] = []
        self.timestamps: list[float] = []
        if emb.task.embedding_type == "event":
            for p in parts:
                self.files += [f for f, _ in p.filename_timestamps]
                self.timestamps += [t for _, t in p.filename_timestamps]
        self.target_events: dict[str, Any] = {}
        if emb.task.embedding_type == "event":
            for n in names:
                for f, evs in emb.task.labels(n).items():
                    if f in self.target_events:
                        raise ValueError(f"file {f!r} is in more than one split")
                    self.target_events[f] = evs


def _pp_grid(metadata: Mapping[str, Any]) -> dict[str, list[float]]:
    params = dict(metadata.get("evaluation_params", {}))
    return dict(params.get("event_postprocessing_grid", EVENT_POSTPROCESSING_GRID))


def _validator(emb: EmbeddedTask, valid: _SplitData) -> tuple[Callable | None, bool]:
    """``validate(probs) -> (score, postprocessing)`` on the primary score, and its direction."""
    meta = emb.metadata
    if not meta.get("use_scoring_for_early_stopping", True):
        return None, False
    primary = get_score(meta["evaluation"][0])
    vocab = emb.vocabulary
    if emb.task.embedding_type == "scene":
        return (lambda probs: (primary.primary(probs, valid.y, vocab), None)), primary.maximize
    grid = _pp_grid(meta)

    def validate(probs: np.ndarray) -> tuple[float, Any]:
        by_pp = events_for_files(probs, valid.files, valid.timestamps, vocab, grid)
        ranked = []
        raw = {}
        for pp, events in by_pp.items():
            value = primary.primary(events, valid.target_events, vocab)
            raw[pp] = value
            ranked.append((0.0 if math.isnan(value) else value, pp))
        ranked.sort(reverse=True)
        best = ranked[0][1]
        return raw[best], best

    return validate, primary.maximize


def _test_scores(emb: EmbeddedTask, result: TrainResult, test: _SplitData
                 ) -> tuple[dict[str, float], Any]:
    """The test fold's scores, and for an event task the predicted events they were computed
    from (``{file: [{label, start, end}, ...]}``, ms; None for a scene task), kept so that
    anyone can re-score them (``benchmarks/hear_event_parity.py`` with ``heareval.score``)."""
    meta = emb.metadata
    probs = predict(result.model, test.x, int(result.conf["batch_size"]))
    if emb.task.embedding_type == "scene":
        return score_all(meta["evaluation"], probs, test.y, emb.vocabulary), None
    pp = result.postprocessing
    if pp is None:  # loss-based early stopping: the grid must have exactly one point
        points = postprocessing_grid(_pp_grid(meta))
        if len(points) != 1:
            raise ValueError("without score-based early stopping the postprocessing grid "
                             "must have one point")  # fmt: skip
        pp = points[0]
    events = events_for_files(probs, test.files, test.timestamps, emb.vocabulary,
                              postprocessing=pp)[tuple(pp)]  # fmt: skip
    return score_all(meta["evaluation"], events, test.target_events, emb.vocabulary), events


def _rank_key(result: TrainResult, maximize: bool) -> float:
    v = result.validation_score
    if math.isnan(v):
        return -math.inf if maximize else math.inf
    return v


def evaluate_embeddings(
    emb: EmbeddedTask,
    *,
    grid: str | Mapping[str, Sequence[Any]] = "default",
    grid_points: int = 8,
    seed: int = 0,
    per_fold_search: bool = False,
    shuffle: bool = False,
    standardize: bool = False,
    device: str = "cpu",
    log: Callable[[str], None] = _log,
) -> dict[str, Any]:
    """Run the probe protocol on one embedded task for one seed (see the module doc).

    ``standardize`` (deviation, off by default; heareval feeds raw embeddings) z-scores every
    feature with the mean and standard deviation of that split's training rows before the probe
    sees train, validation or test rows.

    Returns:
        ``{"folds": {test_fold: {"scores", "validation_score", "epoch", "epochs", "seconds",
        "hparams", "postprocessing", "seed"}}, "aggregated_scores": {<score>_mean, _std, _n_nan}
        (NaN folds are skipped, as heareval's pandas aggregation does),
        "hparams": best grid point, "grid": [tried points with validation scores]}``.
    """
    meta = emb.metadata
    splits = data_splits(meta)
    cache: dict[str, Any] = {}
    confs = grid_confs(grid, meta, grid_points)
    primary = meta["evaluation"][0]
    use_scoring = meta.get("use_scoring_for_early_stopping", True)
    maximize = get_score(primary).maximize if use_scoring else False
    t0 = time.perf_counter()

    def fit(split_i: int, split: Mapping[str, list[str]], conf_i: int, conf) -> TrainResult:
        train = _SplitData(emb, split["train"], cache)
        valid = _SplitData(emb, split["valid"], cache)
        if standardize:
            mu, sd = _moments(train.x)
            train.x, valid.x = (train.x - mu) / sd, (valid.x - mu) / sd
        validate, maximize = _validator(emb, valid)
        return _train_probe(
            train.x, train.y, valid.x, valid.y, conf, meta["prediction_type"], validate,
            maximize=maximize, seed=run_seed(seed, split_i, conf_i), shuffle=shuffle,
            device=device,
        )  # fmt: skip

    def search(split_i: int, split) -> tuple[TrainResult, list[dict[str, Any]]]:
        results = [fit(split_i, split, ci, c) for ci, c in enumerate(confs)]
        order = sorted(range(len(results)), key=lambda i: _rank_key(results[i], maximize),
                       reverse=maximize)  # fmt: skip
        tried = [
            {"hparams": _jsonable(r.conf), "validation_score": _num(r.validation_score),
             "epoch": r.best_epoch}
            for r in results
        ]  # fmt: skip
        return results[order[0]], tried

    best0, tried = search(0, splits[0])
    best_conf = best0.conf
    best_conf_i = next(i for i, c in enumerate(confs) if c == best_conf)
    log(f"[hear probe] {emb.task.name} seed {seed}: best of {len(confs)} grid points "
        f"val {primary}={best0.validation_score:.4f} {_short_conf(best_conf)}")  # fmt: skip
    trained = [best0]
    for i, split in enumerate(splits[1:], start=1):
        if per_fold_search:
            trained.append(search(i, split)[0])
        else:
            trained.append(fit(i, split, best_conf_i, best_conf))

    folds: dict[str, Any] = {}
    for split, res in zip(splits, trained, strict=True):
        test = _SplitData(emb, split["test"], cache)
        if standardize:
            mu, sd = _moments(_SplitData(emb, split["train"], cache).x)
            test.x = (test.x - mu) / sd
        scores, events = _test_scores(emb, res, test)
        folds["|".join(split["test"])] = {
            "scores": {k: _num(v) for k, v in scores.items()},
            **({} if events is None else {"predicted_events": events}),
            "validation_score": _num(res.validation_score),
            "epoch": res.best_epoch,
            "epochs": res.epochs,
            "seconds": round(res.seconds, 3),
            "hparams": _jsonable(res.conf),
            "postprocessing": None if res.postprocessing is None
            else [list(kv) for kv in res.postprocessing],
            "seed": res.seed,
        }
    agg: dict[str, Any] = {}
    if len(folds) > 1:
        keys = list(next(iter(folds.values()))["scores"])
        for k in keys:
            vals = [f["scores"][k] for f in folds.values()]
            mean, std = _mean_std(vals)
            agg[f"{k}_mean"], agg[f"{k}_std"] = mean, std
            agg[f"{k}_n_nan"] = _n_nan(vals)
    log(f"[hear probe] {emb.task.name} seed {seed}: "
        + ", ".join(f"{k}={v['scores'][primary]:.4f}" for k, v in folds.items())
        + f" ({time.perf_counter() - t0:.1f} s)")  # fmt: skip
    return {"folds": folds, "aggregated_scores": agg, "hparams": _jsonable(best_conf),
            "grid": tried, "primary": primary}  # fmt: skip


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (float64 accumulation; a constant feature gets std 1)."""
    mu = x.mean(axis=0, dtype=np.float64)
    sd = x.std(axis=0, dtype=np.float64)
    sd[sd < 1e-8] = 1.0
    return mu.astype(np.float32), sd.astype(np.float32)


def _num(v: float | None) -> float | None:
    """JSON-safe number (NaN/inf -> None)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _mean_std(vals: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof 1) of the finite values, as heareval's pandas aggregation
    (``DataFrame.mean()/.std()`` skip NaN): ``[.5, None, .7, .6]`` -> ``(0.6, 0.1)``. None when
    no value (mean) or fewer than two values (std) are finite."""
    xs = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
    if not xs:
        return None, None
    arr = np.asarray(xs, dtype=np.float64)
    std = float(np.std(arr, ddof=1)) if len(arr) > 1 else float("nan")
    return _num(float(np.mean(arr))), _num(std)


def _n_nan(vals: Iterable[float | None]) -> int:
    """How many values are missing or not finite (left out of :func:`_mean_std`)."""
    return sum(1 for v in vals if v is None or not math.isfinite(float(v)))


def _jsonable(conf: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | float | bool) or v is None else str(v))
            for k, v in conf.items()}  # fmt: skip


def _short_conf(conf: Mapping[str, Any]) -> str:
    keys = ("hidden_layers", "lr", "initialization", "max_epochs", "check_val_every_n_epoch")
    return " ".join(f"{k}={conf[k]}" for k in keys if k in conf)


# --------------------------------------------------------------------------- runner


def _module_label(module: str | Any) -> str:
    name = module if isinstance(module, str) else getattr(module, "name", None) or getattr(
        module, "__name__", str(module)
    )
    return str(name)


def summarize(
    module: str, task: str, evaluation: Sequence[str], per_seed: Mapping[int, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Score rows of one task: mean and sample std over every (seed, fold) test result."""
    rows = []
    n_folds = len(next(iter(per_seed.values()))["folds"])
    n_seeds = len(per_seed)
    over = "folds" if n_seeds == 1 else ("seeds" if n_folds == 1 else "folds x seeds")
    first = next(iter(next(iter(per_seed.values()))["folds"].values()))["scores"]
    for k in first:
        vals = [f["scores"].get(k) for r in per_seed.values() for f in r["folds"].values()]
        mean, std = _mean_std(vals)
        rows.append({
            "module": module, "task": task, "score": k, "primary": k == evaluation[0],
            "mean": mean, "std": std, "n": len(vals), "n_nan": _n_nan(vals), "over": over,
            "values": [None if v is None else round(float(v), 6) for v in vals],
        })  # fmt: skip
    return rows


def scores_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """``scores.csv``: one row per module, task and score; cells spreadsheet-safe
    (:func:`dissect.util.csv_cell`)."""
    out_rows = []
    for r in rows:
        out = dict(r)
        out["values"] = " ".join("nan" if v is None else f"{v:.6f}" for v in r["values"])
        for k in ("mean", "std"):
            out[k] = "nan" if r[k] is None else f"{r[k]:.6f}"
        out_rows.append([out[k] for k in CSV_COLUMNS])
    return csv_text(CSV_COLUMNS, out_rows)


def format_table(rows: Sequence[Mapping[str, Any]], primary_only: bool = True) -> str:
    """A markdown table of score rows (``mean ± std``)."""
    lines = ["| module | task | score | mean ± std | n |", "|---|---|---|---|---|"]
    for r in rows:
        if primary_only and not r["primary"]:
            continue
        ms = "nan" if r["mean"] is None else f"{r['mean']:.3f}"
        sd = "nan" if r["std"] is None else f"{r['std']:.3f}"
        n = f"{r['n']} ({r['n_nan']} nan)" if r.get("n_nan") else f"{r['n']}"
        lines.append(f"| {r['module']} | {r['task']} | {r['score']} | {ms} ± {sd} | {n} |")
    return "\n".join(lines)


def select_tasks(tasks_dir: str | Path, tasks: Sequence[str] | None = None) -> list[HearTask]:
    """The tasks :func:`run_hear` evaluates: every task of ``tasks_dir`` (one task directory or a
    directory of them, sorted), kept to those whose directory name or ``task_name`` is in
    ``tasks`` when it is given."""
    read = [read_task(p) for p in find_tasks(tasks_dir)]
    if tasks:
        wanted = set(tasks)
        read = [t for t in read if t.name in wanted or t.task_name in wanted]
        if not read:
            raise ValueError(f"run_hear: none of {sorted(wanted)} in {tasks_dir}")
    return read


def run_hear(
    module: str | ModuleType,
    tasks_dir: str | Path,
    out_dir: str | Path,
    model_file_path: str = "",
    grid: str | Mapping[str, Sequence[Any]] = "default",
    seeds: Sequence[int] = (0,),
    *,
    grid_points: int = 8,
    tasks: Sequence[str] | None = None,
    per_fold_search: bool = False,
    shuffle: bool = False,
    standardize: bool = False,
    embeddings_dir: str | Path | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    probe_device: str = "cpu",
    force_embed: bool = False,
    model_options: Mapping[str, Any] | None = None,
    loaded: LoadedModule | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = _log,
    on_task: Callable[[str], None] | None = None,
    embedded: Callable[[HearTask, Path], EmbeddedTask] | None = None,
) -> list[dict[str, Any]]:
    """Embed HEAR tasks with a HEAR module and evaluate them with the HEAR probe protocol.

    Args:
        module: import name of a HEAR module (``"dissect.hear.modules.crepe_tiny"``) or the
            module itself.
        tasks_dir: one task directory, or a directory of task directories.
        out_dir: where embeddings, predictions and ``scores.json``/``scores.csv`` go.
        model_file_path: passed to ``load_model`` when not empty.
        grid: ``"default"`` (heareval's PARAM_GRID), ``"fast"``, ``"faster"``, or a grid dict.
        seeds: probe seeds; every seed runs the whole protocol.
        grid_points: grid points tried (heareval: 8).
        tasks: keep only tasks whose directory name or ``task_name`` is listed.
        per_fold_search: search the grid on every split (deviation; heareval: split 0 only).
        shuffle: reshuffle training rows every epoch (deviation; heareval: no shuffling).
        standardize: z-score features with training-fold statistics (deviation; heareval feeds
            raw embeddings, which lets the widest-range member dominate a concatenation).
        embeddings_dir: where the embedding cache goes (default ``<out_dir>/embeddings``).
        batch_size: embedding batch size (default heareval's heuristic).
        device: device of the embedding model (``auto``: cuda when available).
        probe_device: device of the probe training.
        force_embed: re-embed even when the cache is current.
        model_options: extra ``load_model`` keyword arguments (heareval's ``--model-options``).
        loaded: an already loaded module (``module`` is then only its label).
        threads: ``torch.set_num_threads`` for this process (None: leave it); on a busy
            machine 1 thread is often fastest for the small probe.
        on_task: called with each task's name once it is scored (a progress bar's tick).
        embedded: ``embedded(task, cache_dir)`` returns the task's embeddings written into
            ``cache_dir`` instead of running ``module`` (which is then only the label): a GURA
            ensemble combined from its members' caches (:mod:`dissect.hear.combine`).

    Returns:
        The score rows (also in ``scores.json``/``scores.csv``): ``module``, ``task``, ``score``,
        ``primary``, ``mean``, ``std``, ``n``, ``over``, ``values``.
    """
    out_dir = Path(out_dir)
    if not seeds:
        raise ValueError("run_hear: seeds must not be empty")
    read = select_tasks(tasks_dir, tasks)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    lm = None if embedded is not None else (
        loaded or load_module(module, model_file_path, device=device,
                              model_options=dict(model_options or {})))
    label = _module_label(module)
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    for task in read:
        emb_root = Path(embeddings_dir) if embeddings_dir else out_dir / "embeddings"
        if embedded is not None:
            emb = embedded(task, emb_root / task.name)
        else:
            emb = embed_task(lm, task, emb_root / task.name, batch_size=batch_size,
                             force=force_embed, log=log)  # fmt: skip
        per_seed = {
            int(s): evaluate_embeddings(emb, grid=grid, grid_points=grid_points, seed=int(s),
                                        per_fold_search=per_fold_search, shuffle=shuffle,
                                        standardize=standardize, device=probe_device, log=log)
            for s in seeds
        }  # fmt: skip
        seeds_out = {str(k): v for k, v in per_seed.items()}
        write_json(out_dir / "predictions" / f"{task.name}.json",
                   {"module": label, "task": task.name, "seeds": seeds_out})
        task_rows = summarize(label, task.name, task.evaluation, per_seed)
        rows += task_rows
        details[task.name] = {"task_name": task.task_name, "evaluation": task.evaluation,
                              "split_mode": task.metadata.get("split_mode"),
                              "n_splits": len(data_splits(task.metadata))}  # fmt: skip
        if on_task is not None:
            on_task(task.name)
    payload = {
        "module": label,
        "model_file_path": model_file_path,
        "model_options": _jsonable(dict(model_options or {})),
        "grid": grid if isinstance(grid, str) else "custom",
        "grid_points": grid_points,
        "seeds": [int(s) for s in seeds],
        "per_fold_search": per_fold_search,
        "shuffle": shuffle,
        "standardize": standardize,
        "tasks": details,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    write_json(out_dir / "scores.json", payload)
    write_text(out_dir / "scores.csv", scores_csv(rows))
    log(format_table(rows))
    return rows
