"""Embed a HEAR task with a HEAR API module and cache the embeddings, one memmap per split.

Layout of an embeddings directory (the one hear-eval-kit's ``task_embeddings`` writes, so its
own prediction code can read it too), for each split::

    <split>.embeddings.npy             raw float32 memmap (no .npy header, as heareval)
    <split>.embedding-dimensions.json  [n_rows, dim]
    <split>.target-labels.json         per row: list of labels (scene: the file's labels;
                                       event: the labels active at the frame)
    <split>.target-labels.pkl          the same list, pickled (what heareval reads)
    <split>.filename-timestamps.json   event tasks: per row [file, timestamp_ms]
    <split>.embedding-meta.json        our cache record (written last): module hash, split hash,
                                       file order, shape, sha256 of every file above
    <split>.json, task_metadata.json, labelvocabulary.csv   copied from the task

A split is skipped only when its record exists, its module hash and split hash equal the current
ones, and every file it lists still has the recorded sha256; an existing file alone never
counts. The module hash covers the module name, ``model_file_path`` (and the sha256 of that file),
the model's rate and sizes, and a fingerprint: the sha256 of the module's float16-rounded output
on a fixed 0.5 s signal, so a change anywhere in the module's code or weights is seen. The split
hash (:meth:`~dissect.hear.tasks.HearTask.split_hash`) covers metadata, vocabulary, labels and
every audio file's bytes.

Behaviour kept from hear-eval-kit:

* rows follow the files of ``<split>.json`` shuffled once with ``random.Random(0)``, one
  generator shared by the splits in metadata order (we replay it, so a single split can be
  re-embedded alone and still get heareval's order); frames of one file stay contiguous;
* batch size ``max(1, int(0.7 * (120 / sample_duration) * (16000 / sample_rate)))``, 1 when the
  task has no fixed duration;
* audio read with soundfile as float32 at the model's rate (a mismatch is an error), run under
  ``torch.no_grad()`` on ``cuda`` when available, else CPU (``device`` overrides); the model is
  not put in eval mode by us (``load_model`` must return it ready, as heareval assumes);
* event frame labels: a frame at ``t`` ms carries label L when ``start <= t < end + 0.0001``
  for an event of L.

One addition: within one :class:`LoadedModule`, a scene task's clip whose audio bytes equal a
clip already embedded (e.g. the synth pitch and family tasks share their instrument notes) reuses
that row instead of running the model again (``reuse_clips``; rows then equal what a fresh
batch would give up to float rounding of batched inference). Rows are computed in batches of
the not-yet-seen files, so each file is still run exactly once.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pickle
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from dissect.artifacts import atomic_path, hash_file, write_json, write_text
from dissect.hear.tasks import HearTask, read_task

META_FORMAT = 1
FINGERPRINT_SECONDS = 0.5


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_batch_size(sample_duration: float | None, sample_rate: int) -> int:
    """hear-eval-kit's batch-size heuristic (keyed to 120 s of audio at 16 kHz)."""
    if sample_duration is None:
        return 1
    return max(1, int(0.7 * (120 / float(sample_duration)) * (16000 / int(sample_rate))))


def heareval_file_order(task: HearTask) -> dict[str, list[str]]:
    """Row order of each split's files: heareval's one ``random.Random(0)`` shuffle per split,
    in metadata split order."""
    prng = random.Random(0)
    order = {}
    for split in task.splits:
        files = list(task.labels(split))
        prng.shuffle(files)
        order[split] = files
    return order


def frame_labels(events: Sequence[dict[str, Any]], timestamps: Sequence[float]) -> list[list[str]]:
    """Labels active at each timestamp (``start <= t < end + 0.0001``, heareval's rule)."""
    out = []
    for t in timestamps:
        t = float(t)
        out.append(
            [str(ev["label"]) for ev in events if ev["start"] <= t < ev["end"] + 0.0001]
        )
    return out


# --------------------------------------------------------------------------- modules


def _hash_path(path: str) -> str | None:
    p = Path(path).expanduser() if path else None
    if p is None or not p.exists():
        return None
    if p.is_file():
        return hash_file(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(str(f.relative_to(p)).encode() + b"\0" + hash_file(f).encode())
    return h.hexdigest()


@dataclass
class LoadedModule:
    """A HEAR API module with its model loaded.

    Attributes:
        name: import name (``"dissect.hear.modules.crepe_tiny"``).
        module: the imported module.
        model: what ``load_model`` returned.
        model_file_path: passed to ``load_model`` when not empty.
        device: where audio tensors go (``"cpu"``, ``"cuda"``).
    """

    name: str
    module: ModuleType
    model: Any
    model_file_path: str = ""
    device: str = "cpu"
    reuse_clips: bool = True
    _hashes: dict[str, str] = field(default_factory=dict, repr=False)
    _memo: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    def _tensor(self, audio: np.ndarray):
        import torch

        return torch.as_tensor(np.ascontiguousarray(audio, dtype=np.float32), device=self.device)

    def scene(self, audio: np.ndarray) -> np.ndarray:
        """``get_scene_embeddings`` on ``(n, samples)`` float32 audio -> ``(n, dim)`` float32."""
        import torch

        with torch.no_grad():
            emb = self.module.get_scene_embeddings(self._tensor(audio), self.model)
        emb = emb.detach().cpu().numpy() if hasattr(emb, "detach") else np.asarray(emb)
        if emb.ndim != 2 or emb.shape[0] != len(audio):
            raise ValueError(f"{self.name}: scene embeddings of shape {emb.shape} for "
                             f"{len(audio)} sounds")  # fmt: skip
        if emb.dtype != np.float32:
            raise TypeError(f"{self.name}: scene embeddings are {emb.dtype}, HEAR needs float32")
        return emb

    def timestamps(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``get_timestamp_embeddings`` -> ``(n, frames, dim)`` float32, ``(n, frames)`` ms."""
        import torch

        with torch.no_grad():
            emb, ts = self.module.get_timestamp_embeddings(self._tensor(audio), self.model)
        emb = emb.detach().cpu().numpy() if hasattr(emb, "detach") else np.asarray(emb)
        ts = ts.detach().cpu().numpy() if hasattr(ts, "detach") else np.asarray(ts)
        if emb.ndim != 3 or ts.ndim != 2 or emb.shape[:2] != ts.shape or len(emb) != len(audio):
            raise ValueError(f"{self.name}: timestamp embeddings {emb.shape}, timestamps "
                             f"{ts.shape} for {len(audio)} sounds")  # fmt: skip
        if emb.dtype != np.float32:
            raise TypeError(f"{self.name}: embeddings are {emb.dtype}, HEAR needs float32")
        return emb, ts

    def module_hash(self, embedding_type: str = "scene", fingerprint: bool = True) -> str:
        """sha256 identifying this module + weights + behaviour (see the module doc)."""
        key = f"{embedding_type}:{fingerprint}"
        if key in self._hashes:
            return self._hashes[key]
        info: dict[str, Any] = {
            "module": self.name,
            "model_file_path": self.model_file_path,
            "model_file_sha256": _hash_path(self.model_file_path),
            "sample_rate": self.sample_rate,
            "scene_embedding_size": int(getattr(self.model, "scene_embedding_size", -1)),
            "timestamp_embedding_size": int(getattr(self.model, "timestamp_embedding_size", -1)),
            "embedding_type": embedding_type,
        }
        if fingerprint:
            n = int(round(FINGERPRINT_SECONDS * self.sample_rate))
            t = np.arange(n) / self.sample_rate
            rng = np.random.default_rng(0)
            x = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.05 * rng.standard_normal(n)
            x = x.astype(np.float32)[None, :]
            if embedding_type == "scene":
                out = [self.scene(x)]
            else:
                out = list(self.timestamps(x))
            h = hashlib.sha256()
            for a in out:
                h.update(str(a.shape).encode())
                h.update(np.nan_to_num(a.astype(np.float16)).tobytes())
            info["fingerprint"] = h.hexdigest()
        self._hashes[key] = hashlib.sha256(
            json.dumps(info, sort_keys=True).encode()
        ).hexdigest()
        return self._hashes[key]


def resolve_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_module(
    name: str | ModuleType,
    model_file_path: str = "",
    *,
    device: str = "auto",
    model_options: dict[str, Any] | None = None,
) -> LoadedModule:
    """Import a HEAR module and call ``load_model`` as heareval does (with the path only when
    one is given), then move a torch model to ``device``."""
    module = importlib.import_module(name) if isinstance(name, str) else name
    for fn in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        if not callable(getattr(module, fn, None)):
            raise AttributeError(f"{module.__name__} is not a HEAR module: no {fn}()")
    opts = dict(model_options or {})
    model = module.load_model(model_file_path, **opts) if model_file_path else \
        module.load_model(**opts)
    dev = resolve_device(device)
    if hasattr(model, "to") and callable(model.to):
        model.to(dev)
    return LoadedModule(module.__name__, module, model, model_file_path or "", dev)


# --------------------------------------------------------------------------- cache


@dataclass
class SplitEmbeddings:
    """One embedded split.

    Attributes:
        embeddings: ``(n_rows, dim)`` float32 memmap (read-only).
        labels: per row, its list of labels (strings).
        filename_timestamps: event tasks: per row ``(file, timestamp_ms)``; else None.
        files: the split's files in row order.
    """

    embeddings: np.ndarray
    labels: list[list[str]]
    filename_timestamps: list[tuple[str, float]] | None
    files: list[str]


@dataclass
class EmbeddedTask:
    """A task's embeddings directory.

    Attributes:
        columns: when set, every split shows only these embedding columns, in this order
            (:meth:`select`); the directory itself is unchanged.
    """

    root: Path
    task: HearTask
    module: str
    columns: tuple[int, ...] | None = None

    def select(self, columns: Sequence[int], label: str | None = None) -> EmbeddedTask:
        """A view of the same embeddings keeping ``columns`` (e.g. a unit subset of a
        concatenation: its scene embedding is exactly those columns, since the mean over time
        commutes with column selection). Raises ValueError on an empty or out-of-range list."""
        cols = tuple(int(c) for c in columns)
        if not cols:
            raise ValueError(f"{self.root}: empty column selection")
        base = list(self.columns) if self.columns is not None else None
        if base is not None:
            if min(cols) < 0 or max(cols) >= len(base):
                raise ValueError(f"{self.root}: columns outside 0..{len(base) - 1}")
            cols = tuple(base[c] for c in cols)
        return EmbeddedTask(self.root, self.task, label or f"{self.module}[{len(cols)}]", cols)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.task.metadata

    @property
    def vocabulary(self) -> list[str]:
        return self.task.vocabulary

    def split(self, name: str) -> SplitEmbeddings:
        meta = json.loads((self.root / f"{name}.embedding-meta.json").read_text())
        n, d = json.loads((self.root / f"{name}.embedding-dimensions.json").read_text())
        emb = np.memmap(self.root / f"{name}.embeddings.npy", dtype=np.float32, mode="r",
                        shape=(int(n), int(d)))  # fmt: skip
        if self.columns is not None:
            if min(self.columns) < 0 or max(self.columns) >= int(d):
                raise ValueError(f"{self.root}: columns outside 0..{int(d) - 1} of {name}")
            emb = np.ascontiguousarray(emb[:, list(self.columns)])
        labels = json.loads((self.root / f"{name}.target-labels.json").read_text())
        ft = None
        if self.task.embedding_type == "event":
            ft = [(str(f), float(t)) for f, t in json.loads(
                (self.root / f"{name}.filename-timestamps.json").read_text())]  # fmt: skip
        return SplitEmbeddings(emb, labels, ft, list(meta["files"]))


def _split_files(split: str, event: bool) -> list[str]:
    names = [
        f"{split}.embeddings.npy",
        f"{split}.embedding-dimensions.json",
        f"{split}.target-labels.json",
        f"{split}.target-labels.pkl",
    ]
    if event:
        names.append(f"{split}.filename-timestamps.json")
    return names


def split_is_current(out_dir: Path, split: str, module_hash: str, split_hash: str) -> bool:
    """True when the split's cache record matches both hashes and every recorded file."""
    path = out_dir / f"{split}.embedding-meta.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if meta.get("format") != META_FORMAT or meta.get("module_hash") != module_hash:
        return False
    if meta.get("split_hash") != split_hash:
        return False
    for name, digest in dict(meta.get("file_sha256", {})).items():
        p = out_dir / name
        if not p.is_file() or hash_file(p) != digest:
            return False
    return bool(meta.get("file_sha256"))


def _read_batch(paths: Sequence[Path], sample_rate: int) -> np.ndarray:
    import soundfile as sf

    waves = []
    for p in paths:
        x, sr = sf.read(str(p), dtype="float32")
        if sr != sample_rate:
            raise ValueError(f"{p}: sample rate {sr} != the model's {sample_rate}")
        if x.ndim != 1:
            raise ValueError(f"{p}: expected mono audio, got shape {x.shape}")
        waves.append(x)
    lengths = {len(w) for w in waves}
    if len(lengths) != 1:
        raise ValueError(f"a batch mixes lengths {sorted(lengths)}; use batch_size=1")
    return np.stack(waves)


def embed_split(
    lm: LoadedModule,
    task: HearTask,
    split: str,
    out_dir: Path,
    files: Sequence[str],
    *,
    module_hash: str,
    split_hash: str,
    batch_size: int,
    log: Callable[[str], None] = _log,
) -> dict[str, Any]:
    """Embed one split into ``out_dir`` (rows in ``files`` order); returns its cache record."""
    event = task.embedding_type == "event"
    table = task.labels(split)
    audio_dir = task.audio_dir(split, lm.sample_rate)
    t0 = time.perf_counter()
    labels: list[Any] = []
    ft: list[tuple[str, float]] = []
    n_rows, dim = 0, None
    memo_key = {}
    if not event and lm.reuse_clips:  # scene rows of identical audio are computed once
        memo_key = {n: hashlib.sha256((audio_dir / n).read_bytes()).hexdigest() for n in files}
        todo = [n for n in files if (module_hash, memo_key[n]) not in lm._memo]
        for start in range(0, len(todo), batch_size):
            names = todo[start : start + batch_size]
            rows = lm.scene(_read_batch([audio_dir / n for n in names], lm.sample_rate))
            for n, r in zip(names, rows, strict=True):
                lm._memo[(module_hash, memo_key[n])] = r
        if len(todo) < len(files):
            log(f"[hear embed] {lm.name} {task.name}/{split}: {len(files) - len(todo)} clips "
                "reused from identical audio embedded earlier in this run")
    with atomic_path(out_dir / f"{split}.embeddings.npy") as tmp, open(tmp, "wb") as fh:
        for start in range(0, len(files), batch_size):
            names = list(files[start : start + batch_size])
            if memo_key:
                rows = np.stack([lm._memo[(module_hash, memo_key[n])] for n in names])
                labels += [[str(x) for x in table[n]] for n in names]
            elif event:
                audio = _read_batch([audio_dir / n for n in names], lm.sample_rate)
                emb, ts = lm.timestamps(audio)
                for i, name in enumerate(names):
                    labels += frame_labels(table[name], ts[i])
                    ft += [(f"{split}/{name}", float(t)) for t in ts[i]]
                rows = emb.reshape(-1, emb.shape[-1])
            else:
                rows = lm.scene(_read_batch([audio_dir / n for n in names], lm.sample_rate))
                labels += [[str(x) for x in table[n]] for n in names]
            if dim is None:
                dim = int(rows.shape[1])
            elif rows.shape[1] != dim:
                raise ValueError(f"{lm.name}: embedding size changed {dim} -> {rows.shape[1]}")
            if not np.isfinite(rows).all():
                raise ValueError(f"{lm.name}: non-finite embeddings in split {split!r}")
            fh.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
            n_rows += len(rows)
        fh.flush()
    if dim is None:
        raise ValueError(f"split {split!r} of {task.name} has no files")
    write_json(out_dir / f"{split}.embedding-dimensions.json", [n_rows, dim])
    write_json(out_dir / f"{split}.target-labels.json", labels)
    with atomic_path(out_dir / f"{split}.target-labels.pkl") as tmp:
        tmp.write_bytes(pickle.dumps(labels))
    if event:
        write_text(out_dir / f"{split}.filename-timestamps.json", json.dumps(ft) + "\n")
    seconds = time.perf_counter() - t0
    record = {
        "format": META_FORMAT,
        "module": lm.name,
        "module_hash": module_hash,
        "model_file_path": lm.model_file_path,
        "task": task.name,
        "split": split,
        "split_hash": split_hash,
        "embedding_type": task.embedding_type,
        "shape": [n_rows, dim],
        "files": list(files),
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "file_sha256": {n: hash_file(out_dir / n) for n in _split_files(split, event)},
    }
    write_json(out_dir / f"{split}.embedding-meta.json", record)
    log(f"[hear embed] {lm.name} {task.name}/{split}: {len(files)} files -> {n_rows}x{dim} "
        f"in {seconds:.1f} s")  # fmt: skip
    return record


def embed_task(
    module: str | ModuleType | LoadedModule,
    task: str | Path | HearTask,
    out_dir: str | Path,
    *,
    model_file_path: str = "",
    batch_size: int | None = None,
    device: str = "auto",
    fingerprint: bool = True,
    force: bool = False,
    log: Callable[[str], None] = _log,
) -> EmbeddedTask:
    """Embed every split of ``task`` with ``module`` into ``out_dir`` (cached, see module doc).

    Args:
        module: an import name, a module, or a :class:`LoadedModule` (reused across tasks).
        task: a task directory or a read :class:`~dissect.hear.tasks.HearTask`.
        out_dir: the embeddings directory of this (module, task).
        model_file_path: passed to ``load_model`` (when ``module`` is not loaded yet).
        batch_size: sounds per call; default heareval's heuristic.
        device: ``auto`` | ``cpu`` | ``cuda`` ...
        fingerprint: include the output fingerprint in the module hash.
        force: re-embed even current splits.

    Returns:
        The :class:`EmbeddedTask`.
    """
    task = task if isinstance(task, HearTask) else read_task(task)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lm = module if isinstance(module, LoadedModule) else load_module(
        module, model_file_path, device=device
    )
    if lm.sample_rate not in task.sample_rates():
        raise ValueError(f"{task.root}: no audio at the model's rate {lm.sample_rate} Hz "
                         f"(have {task.sample_rates()})")  # fmt: skip
    mhash = lm.module_hash(task.embedding_type, fingerprint=fingerprint)
    order = heareval_file_order(task)
    bs = batch_size or default_batch_size(task.sample_duration, lm.sample_rate)
    for name in ("task_metadata.json", "labelvocabulary.csv"):
        write_text(out_dir / name, (task.root / name).read_text("utf-8"))
    for split in task.splits:
        write_text(out_dir / f"{split}.json", (task.root / f"{split}.json").read_text("utf-8"))
        shash = task.split_hash(split, lm.sample_rate)
        if not force and split_is_current(out_dir, split, mhash, shash):
            log(f"[hear embed] {lm.name} {task.name}/{split}: up to date, skipped")
            continue
        embed_split(lm, task, split, out_dir, order[split], module_hash=mhash,
                    split_hash=shash, batch_size=bs, log=log)  # fmt: skip
    return EmbeddedTask(out_dir, task, lm.name)
