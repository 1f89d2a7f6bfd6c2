"""Record on Ray: shard the probe set across tasks, merge the reducer states exactly, resume.

The clips of ``clips.jsonl`` are cut into contiguous, deterministic index ranges (*shards*).
Each shard runs as one Ray task: one GPU per task when the cluster has GPUs (and the model is not
pinned to the CPU), else ``cpus_per_task`` CPUs per task. A task builds the adapter and loads the
model from the model config itself (the model is never pickled), loads its clips, runs
:func:`dissect.recording.recorder.record` and returns its layer states as the bytes of one
safetensors file. The driver writes each finished shard atomically to
``shard_dir/shard-{i:05d}.safetensors``; the file's metadata holds the shard's key, a hash of
(config hash, shard index, index range, the shard's clip rows), so a rerun after a crash or a
kill reuses every finished shard whose key still matches and recomputes only the rest.

Merging is exact: top/bottom-k and histogram counts merge exactly and independently of order,
moments by Chan's parallel update (float64); shards are always folded in index order, so a run
is deterministic whatever order the tasks finish in. Shard boundaries fall on multiples of the
batch size, so for padding-safe adapters without long-clip windows every shard runs exactly the
batches the single-process run would, and exemplars, histograms and the dense store equal it bit
for bit (moments to float64 rounding). Otherwise exemplars can differ only where two clips' values
differ by float rounding of a different batch composition. The optional dense store is assembled
from the shards' row slices.

Fault tolerance: a task whose worker process dies (crash, OOM kill, node loss) is retried up to
``max_retries`` times by Ray. A Python exception inside a task is deterministic and is not
retried. Either way the run first collects the shards still in flight (so their work is kept on
disk), then raises :class:`ShardError` naming the failed shards and their clips.

Ray is an optional extra (``pip install 'dissect[ray]'``) imported only when this backend runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from dissect import artifacts
from dissect.recording.recorder import LayerState, RecordResult
from dissect.recording.store import state_from_tensors, state_meta, state_tensors
from dissect.util import read_safetensors_metadata, safetensors_metadata

#: Format tag written into every shard file's metadata.
SHARD_FORMAT = "dissect-ray-shard/2"  # 2: layer metadata = record.store.state_meta
RAY_INSTALL = "pip install 'dissect[ray]'"

#: ``clip_loader(clip_index, row, sample_rate) -> mono float32 waveform``. Raising
#: :class:`dissect.audio.AudioError` marks the clip as failed (it is skipped and reported).
ClipLoader = Callable[[int, Mapping[str, Any], int], np.ndarray]


class ShardError(RuntimeError):
    """One or more shards failed; the message names each shard, its clip range and clip ids."""


@dataclass
class RayRecordResult(RecordResult):
    """:class:`RecordResult` plus the Ray bookkeeping.

    Attributes:
        failed: clips that could not be loaded: ``{"index", "id", "error"}`` (as in the
            single-process stage, these are skipped; the caller decides whether that is fatal).
        shards: per shard ``{"index", "lo", "hi", "clips", "seconds", "reused"}``.
        workers: tasks allowed in flight at once.
        use_gpu: whether tasks asked for one GPU each.
        compute_seconds: sum of the shards' own recording times (reused shards included).
    """

    failed: list[dict[str, Any]] = field(default_factory=list)
    shards: list[dict[str, Any]] = field(default_factory=list)
    workers: int = 0
    use_gpu: bool = False
    compute_seconds: float = 0.0

    @property
    def reused(self) -> int:
        return sum(bool(s["reused"]) for s in self.shards)


# --------------------------------------------------------------------------- planning


def import_ray():
    """``import ray`` with an error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f"record.backend=ray needs Ray, an optional extra: {RAY_INSTALL}"
        ) from exc
    return ray


def plan_shards(n_clips: int, n_shards: int, align: int = 1) -> list[tuple[int, int]]:
    """Contiguous ``[lo, hi)`` ranges covering ``0..n_clips``; deterministic.

    Boundaries fall on multiples of ``align`` (the batch size), so at most
    ``ceil(n_clips / align)`` shards are made and none is empty. Sizes differ by at most one
    ``align`` block.
    """
    if n_clips <= 0:
        return []
    align = max(1, int(align))
    blocks = math.ceil(n_clips / align)
    n = max(1, min(int(n_shards), blocks))
    edges = [min(n_clips, (i * blocks // n) * align) for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


def _plain(obj: Any) -> dict[str, Any]:
    """A plain dict from a mapping, an OmegaConf node or a dataclass (e.g. ClipPolicy)."""
    if obj is None:
        return {}
    from omegaconf import OmegaConf

    if OmegaConf.is_config(obj):
        return OmegaConf.to_container(obj, resolve=True)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return json.loads(json.dumps(dict(obj), default=_plain))


def _row_key(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("id", "path", "sha256")}


def config_hash(model_cfg: Mapping[str, Any], sites: Sequence[str] | None, *, reduction: str,
                k: int, batch_size: int, windows, dense: bool, hist_alpha: float,
                audio_policy: Mapping[str, Any], loader: str) -> str:
    """Hash of everything that changes a shard's result (the device is left out)."""
    model = {key: v for key, v in dict(model_cfg).items() if key != "device"}
    return artifacts.hash_config({
        "format": SHARD_FORMAT, "model": model, "sites": list(sites or []),
        "reduction": reduction, "k": int(k), "batch_size": int(batch_size),
        "windows": list(windows) if windows else None, "dense": bool(dense),
        "hist_alpha": float(hist_alpha), "audio_policy": dict(audio_policy), "loader": loader,
    })


def shard_key(cfg_hash: str, index: int, lo: int, hi: int,
              rows: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """``(key, clips_hash)`` of one shard: config hash + index range + its clip rows."""
    clips = artifacts.hash_config([_row_key(r) for r in rows])
    key = artifacts.hash_config({"config": cfg_hash, "index": index, "lo": lo, "hi": hi,
                                 "clips": clips})
    return key, clips


def shard_path(shard_dir: Path, index: int) -> Path:
    return Path(shard_dir) / f"shard-{index:05d}.safetensors"


_FIELDS = ("top_values", "top_index", "top_peak_ms", "bottom_values", "bottom_index",
           "bottom_peak_ms", "count", "mean", "m2", "min", "max", "hist_band", "hist_first")


def read_shard_meta(path: Path) -> dict[str, str] | None:
    """A shard file's metadata, or None when it is missing, unreadable, not a shard file or
    lacks a tensor (such a file is recomputed)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = read_safetensors_metadata(fh.metadata())
            keys = set(fh.keys())
        n_layers = len(json.loads(meta["layers"]))
    except Exception:  # missing, truncated, not safetensors, no layer list
        return None
    want = {f"L{j}/{f}" for j in range(n_layers) for f in _FIELDS}
    return meta if meta.get("format") == SHARD_FORMAT and want <= keys else None


# --------------------------------------------------------------------------- the task

# One loaded (adapter, model, sites) per worker process, reused by the next task with the same
# model config (Ray reuses CPU worker processes; GPU workers run one task each by default).
_LOADED: dict[str, tuple] = {}


def _load_model(model_cfg: Mapping[str, Any], sites: Sequence[str] | None, device: str):
    from dissect.models.load import adapter_from_config

    key = artifacts.hash_config({"model": dict(model_cfg), "sites": list(sites or []),
                                 "device": device})
    if key not in _LOADED:
        _LOADED.clear()
        adapter = adapter_from_config(model_cfg, default_name="crepe")
        model = adapter.load(device)
        _LOADED[key] = (adapter, model, adapter.resolve_layers(model, list(sites or [])))
    return _LOADED[key]


def record_shard(spec: dict[str, Any], rows: Sequence[Mapping[str, Any]],
                 clip_loader: ClipLoader | None = None) -> bytes:
    """Record one shard (runs inside a Ray task; also callable directly).

    ``spec`` holds the model config, sites, recorder settings, the shard's ``index``/``lo``/
    ``hi``/``key`` and the ``device`` and ``threads`` to use; ``rows`` are the shard's rows of
    ``clips.jsonl``. Returns the bytes of the shard's safetensors file.
    """
    from dissect.audio import AudioError, ClipPolicy, record_waveform
    from dissect.recording.recorder import record

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    device = spec["device"]
    adapter, model, sites = _load_model(spec["model"], spec["sites"], device)
    lo = int(spec["lo"])
    policy = ClipPolicy(**spec["audio_policy"])
    sr = adapter.sample_rate
    failed: list[dict[str, Any]] = []

    def clips():
        for j, row in enumerate(rows):
            try:
                if clip_loader is None:
                    wave = record_waveform(row["path"], sr, policy)
                else:
                    wave = clip_loader(lo + j, row, sr)
            except AudioError as exc:
                failed.append({"index": lo + j, "id": row.get("id"), "error": str(exc)})
                continue
            yield j, wave  # local index: the dense slice is [len(rows), U]

    windows = tuple(spec["windows"]) if spec["windows"] else None
    res = record(adapter, model, clips(), sites, reduction=spec["reduction"], k=spec["k"],
                 batch_size=spec["batch_size"], windows=windows,
                 dense_rows=len(rows) if spec["dense"] else None,
                 hist_alpha=spec["hist_alpha"], device=device, total=len(rows), progress=False)
    tensors: dict[str, torch.Tensor] = {}
    layers = []
    for j, st in enumerate(res.layers.values()):
        layers.append(state_meta(st))
        tensors.update(state_tensors(st, prefix=f"L{j}/", index_offset=lo, dense=True))
    meta = {
        "format": SHARD_FORMAT, "key": spec["key"], "config_hash": spec["config_hash"],
        "clips_hash": spec["clips_hash"], "index": str(spec["index"]), "lo": str(lo),
        "hi": str(spec["hi"]), "layers": json.dumps(layers), "n_clips": str(res.n_clips),
        "seconds": repr(res.seconds), "audio_seconds": repr(res.audio_seconds),
        "failed": json.dumps(failed), "device": str(device),
    }
    return save_bytes(tensors, metadata=safetensors_metadata(meta))


def load_shard(path: Path) -> tuple[dict[str, LayerState], dict[str, torch.Tensor], dict]:
    """A shard file -> ``(states by layer, dense slices by layer, metadata)``.

    Dense slices are ``[hi - lo, U]`` float16 rows of clips ``lo..hi-1``.
    """
    with safe_open(str(path), framework="pt") as fh:
        meta = read_safetensors_metadata(fh.metadata())
    if meta.get("format") != SHARD_FORMAT:
        raise ValueError(f"{path}: not a {SHARD_FORMAT} file")
    t = load_file(str(path))
    states, dense = {}, {}
    for j, lay in enumerate(json.loads(meta["layers"])):
        p = f"L{j}/"
        st = state_from_tensors(t, lay, prefix=p)
        states[st.site.name] = st
        if f"{p}dense" in t:
            dense[st.site.name] = t[f"{p}dense"]
    return states, dense, meta


# --------------------------------------------------------------------------- the driver


def _describe_shard(index: int, lo: int, hi: int, rows: Sequence[Mapping[str, Any]]) -> str:
    ids = [str(r.get("id", "?")) for r in rows[lo:hi]]
    shown = ", ".join(ids[:3]) + (f", ... {ids[-1]}" if len(ids) > 3 else "")
    return f"shard {index} (clips {lo}..{hi - 1}: {shown})"


def _loader_name(clip_loader: ClipLoader | None) -> str:
    if clip_loader is None:
        return "load_audio"
    return f"{getattr(clip_loader, '__module__', '?')}.{getattr(clip_loader, '__qualname__', '?')}"


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[record/ray] {msg}", file=sys.stderr, flush=True)


def record_ray(
    model_cfg: Mapping[str, Any],
    clip_rows: Sequence[Mapping[str, Any]],
    sites: Sequence[str] | None,
    *,
    shard_dir: str | Path,
    reduction: str = "mean",
    k: int = 10,
    batch_size: int = 8,
    windows: tuple[float, float] | None = None,
    dense: bool = False,
    hist_alpha: float = 0.02,
    audio_policy: Mapping[str, Any] | None = None,
    n_shards: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    num_workers: int | None = None,
    cpus_per_task: int = 1,
    max_retries: int = 2,
    clip_loader: ClipLoader | None = None,
    progress: bool = True,
) -> RayRecordResult:
    """Record ``sites`` of the configured model over ``clip_rows`` on Ray.

    Args:
        model_cfg: the ``model`` config (a mapping or an OmegaConf node): ``name``,
            ``source``, ``site``, ``options`` (adapter keyword arguments) and ``device``
            (``auto``/``cpu``/``cuda``); ``layers`` is ignored in favour of ``sites``.
        clip_rows: the rows of ``clips.jsonl`` (``id``, ``path``, optionally ``sha256``); a row's
            position is its clip index.
        sites: layer names to record (empty or None: the adapter's default layers).
        shard_dir: where finished shards are kept (``shard-{i:05d}.safetensors``); reused by
            a rerun when their key (config hash + index range + clip rows) still matches.
        reduction, k, batch_size, windows, hist_alpha: as for :func:`record`.
        dense: also assemble the dense float16 ``[n_clips, U]`` store per layer.
        audio_policy: the decoding policy: a :class:`dissect.audio.ClipPolicy` or its keyword
            arguments.
        n_shards: number of shards (default: one per worker). More shards checkpoint at a finer
            grain and balance load better, at the cost of one model load per shard on a GPU
            worker (CPU workers keep the model between tasks).
        address: an existing Ray cluster (``"auto"``, ``"ray://host:10001"``, ...). Without it
            a running Ray session is reused, else a local one is started with ``num_cpus``. Only
            a session started here is shut down here.
        num_workers: tasks in flight at once (default: the cluster's GPUs when tasks use GPUs,
            else its CPUs // cpus_per_task).
        cpus_per_task: CPUs (and torch threads) per CPU task.
        max_retries: Ray retries of a task whose worker died.
        clip_loader: optional ``(clip_index, row, sample_rate) -> waveform`` used instead of
            :func:`dissect.audio.record_waveform` (must be picklable; it runs on the workers).
        progress: one log line per shard on stderr.

    Returns:
        A :class:`RayRecordResult` whose ``layers`` equal the single-process run's.

    Raises:
        ImportError: Ray is not installed.
        ShardError: a shard failed (after retries, for worker deaths); finished shards are on
            disk and a rerun resumes from them.
    """
    ray = import_ray()
    rows = list(clip_rows)
    if not rows:
        raise ValueError("record_ray: no clips to record")
    shard_dir = Path(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    model_cfg = _plain(model_cfg)
    policy = _plain(audio_policy)
    site_names = [str(s) for s in (sites or [])]
    cfg_hash = config_hash(model_cfg, site_names, reduction=reduction, k=k,
                           batch_size=batch_size, windows=windows, dense=dense,
                           hist_alpha=hist_alpha, audio_policy=policy,
                           loader=_loader_name(clip_loader))
    t0 = time.perf_counter()
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False)
        started = True
    try:
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        requested = str(model_cfg.get("device") or "auto")
        use_gpu = gpus > 0 and not requested.startswith("cpu")
        if requested.startswith("cuda") and gpus == 0:
            raise ValueError(f"model.device={requested} but the Ray cluster has no GPU")
        capacity = gpus if use_gpu else max(1, cpus // max(1, cpus_per_task))
        workers = max(1, min(num_workers or capacity, capacity))
        plan = plan_shards(len(rows), n_shards or workers,
                           1 if windows else max(1, batch_size))
        task = ray.remote(record_shard).options(
            num_gpus=1 if use_gpu else 0, num_cpus=1 if use_gpu else cpus_per_task,
            max_retries=max_retries, retry_exceptions=False)
        base = {"model": dict(model_cfg), "sites": site_names, "reduction": reduction, "k": k,
                "batch_size": batch_size, "windows": list(windows) if windows else None,
                "dense": dense, "hist_alpha": hist_alpha, "audio_policy": policy,
                "config_hash": cfg_hash, "device": "cuda" if use_gpu else "cpu",
                "threads": None if use_gpu else cpus_per_task}
        todo, reused = [], set()
        for i, (lo, hi) in enumerate(plan):
            key, clips_hash = shard_key(cfg_hash, i, lo, hi, rows[lo:hi])
            meta = read_shard_meta(shard_path(shard_dir, i))
            if meta is not None and meta.get("key") == key:
                reused.add(i)
            else:
                todo.append({**base, "index": i, "lo": lo, "hi": hi, "key": key,
                             "clips_hash": clips_hash})
        _log(progress, f"{len(rows)} clips in {len(plan)} shards: {len(reused)} already done, "
                       f"{len(todo)} to run on {workers} {'GPU' if use_gpu else 'CPU'} "
                       f"worker(s)")
        errors = _run_tasks(ray, task, todo, rows, workers, shard_dir, clip_loader,
                            max_retries, progress)
        if errors:
            raise ShardError(
                f"{len(errors)} of {len(plan)} shard(s) failed; {len(plan) - len(errors)} "
                f"finished shard(s) are kept in {shard_dir} and a rerun resumes from them:\n"
                + "\n".join(errors))
    finally:
        if started:
            ray.shutdown()
    return _merge(shard_dir, plan, rows, reused, dense, workers, use_gpu,
                  time.perf_counter() - t0)


def _run_tasks(ray, task, todo, rows, workers, shard_dir, clip_loader, max_retries,
               progress) -> list[str]:
    """Run ``todo`` with at most ``workers`` in flight; write each result; return errors."""
    pending: dict[Any, dict] = {}
    queue = list(todo)
    errors: list[str] = []
    done = 0
    while queue or pending:
        while queue and not errors and len(pending) < workers:
            spec = queue.pop(0)
            ref = task.remote(spec, rows[spec["lo"]:spec["hi"]], clip_loader)
            pending[ref] = spec
        if not pending:
            break
        ready, _ = ray.wait(list(pending), num_returns=1)
        spec = pending.pop(ready[0])
        where = _describe_shard(spec["index"], spec["lo"], spec["hi"], rows)
        try:
            data = ray.get(ready[0])
        except ray.exceptions.RayTaskError as exc:  # a Python exception: not retried
            errors.append(f"{where} raised: {str(exc).strip()[-1500:]}")
            continue
        except ray.exceptions.RayError as exc:  # worker/node died, object lost, ...
            errors.append(f"{where} failed after {max_retries + 1} attempt(s) "
                          f"(max_retries={max_retries}): {type(exc).__name__}: "
                          f"{str(exc).strip()[-800:]}")
            continue
        with artifacts.atomic_path(shard_path(shard_dir, spec["index"])) as tmp:
            tmp.write_bytes(data)
        done += 1
        _log(progress, f"shard {spec['index']} done ({done}/{len(todo)})")
    return errors


def _merge(shard_dir, plan, rows, reused, dense, workers, use_gpu, seconds) -> RayRecordResult:
    """Fold the shard files in index order (one in memory at a time) into one result."""
    merged: dict[str, LayerState] = {}
    full: dict[str, torch.Tensor] = {}
    failed: list[dict[str, Any]] = []
    info: list[dict[str, Any]] = []
    n_clips, audio_s, compute_s = 0, 0.0, 0.0
    for i, (lo, hi) in enumerate(plan):
        states, dense_parts, meta = load_shard(shard_path(shard_dir, i))
        if merged and list(states) != list(merged):
            raise ValueError(f"{shard_path(shard_dir, i)}: layers {list(states)} differ from "
                             f"the other shards' {list(merged)}")
        for name, st in states.items():
            merged[name] = merged[name].merge(st) if name in merged else st
            if dense:
                if name not in full:
                    full[name] = torch.full((len(rows), st.site.units), float("nan"),
                                            dtype=torch.float16)
                full[name][lo:hi] = dense_parts[name]
        n_clips += int(meta["n_clips"])
        audio_s += float(meta["audio_seconds"])
        compute_s += float(meta["seconds"])
        failed += json.loads(meta["failed"])
        info.append({"index": i, "lo": lo, "hi": hi, "clips": int(meta["n_clips"]),
                     "seconds": round(float(meta["seconds"]), 3), "reused": i in reused})
    for name, st in merged.items():
        st.dense = full.get(name)
        st.dense_rows = len(rows) if dense else None
    return RayRecordResult(merged, n_clips, seconds, audio_s, failed=failed, shards=info,
                           workers=workers, use_gpu=use_gpu, compute_seconds=compute_s)
