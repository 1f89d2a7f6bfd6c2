"""HEAR 2021 task directories: read them, and write them from our datasets.

A task directory (as built by hearpreprocess and read by hear-eval-kit)::

    task_metadata.json        task_name, version, embedding_type ("scene" | "event"),
                              prediction_type ("multiclass" | "multilabel"), split_mode
                              ("trainvaltest" | "presplit_kfold" | "new_split_kfold"), nfolds,
                              splits (["fold00", ...] or ["train", "valid", "test"]),
                              sample_duration (s), evaluation (score keys, primary first), mode
    labelvocabulary.csv       idx,label (labels sorted, unless a task orders them itself)
    <split>.json              scene: {"<file>.wav": [label, ...]}
                              event: {"<file>.wav": [{"label", "start", "end"}, ...]} (ms)
    <sample_rate>/<split>/<file>.wav

Writers (:func:`write_esc50_task`, :func:`write_spoken_digit_tasks`, :func:`write_synth_tasks`)
write one sample-rate directory (default 16000 Hz, the rate of our HEAR modules), resampled with
torchaudio, mono, trimmed or zero-padded at the end to ``sample_duration`` as hearpreprocess
does, as 32-bit float WAV without a timestamped PEAK chunk (so the same input always gives the
same bytes). A task is built in a temporary sibling directory and moved into place at the end,
so an interrupted write never leaves a half task behind.

Splits:

* ESC-50: its own 5 folds (``presplit_kfold``), ESC fold ``k`` -> ``fold0{k-1}``.
* spoken digits (FSDD naming ``{digit}_{speaker}_{index}``): 5 folds by take index,
  ``fold = index % 5`` (``new_split_kfold``); every digit x speaker pair is spread evenly, so
  both the digit task and the speaker task see every class in every fold.
* synth: 5 folds (``new_split_kfold``), stratified by label: within each label the clips are
  sorted by id, shuffled with ``random.Random("<seed>:<label>")`` and dealt round-robin,
  continuing the fold counter from one label to the next (labels in sorted order) so fold sizes
  differ by at most one. hearpreprocess splits unstratified by a hash of the file name; on our
  small synth tasks that leaves classes out of folds, hence the stratification.

Fold bookkeeping (hear-eval-kit, :func:`data_splits`): folds sorted; for fold ``i``: test = fold
``i``, valid = fold ``(i + 1) % k``, train = the others. ``trainvaltest`` tasks have one split.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dissect.datasets.errors import ProbeSetError, require_dir, require_file

TASK_METADATA = "task_metadata.json"
LABEL_VOCABULARY = "labelvocabulary.csv"
SPLIT_MODES = ("trainvaltest", "presplit_kfold", "new_split_kfold")
SCENE_SCORES = ["top1_acc", "mAP", "d_prime", "aucroc"]


# --------------------------------------------------------------------------- fold bookkeeping


def data_splits_from_folds(folds: Sequence[str]) -> list[dict[str, list[str]]]:
    """hear-eval-kit's leave-one-out rotation: test = fold i, valid = fold i+1 (mod k), train =
    the rest (sorted folds). Raises ValueError on duplicate or fewer than 3 folds."""
    folds = sorted(folds)
    if len(set(folds)) != len(folds):
        raise ValueError(f"folds are not unique: {folds}")
    if len(folds) < 3:
        raise ValueError(f"k-fold evaluation needs at least 3 folds, got {folds}")
    k = len(folds)
    out = []
    for i, test in enumerate(folds):
        valid = folds[(i + 1) % k]
        train = [f for f in folds if f not in (test, valid)]
        out.append({"train": train, "valid": [valid], "test": [test]})
    return out


def data_splits(metadata: Mapping[str, Any]) -> list[dict[str, list[str]]]:
    """The train/valid/test split(s) a task is evaluated on (``get_splits_from_metadata``)."""
    mode = metadata.get("split_mode")
    if mode == "trainvaltest":
        return [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]
    if mode in ("new_split_kfold", "presplit_kfold"):
        folds = metadata.get("splits")
        if not isinstance(folds, list) or not all(isinstance(f, str) for f in folds):
            raise ValueError("k-fold task metadata needs 'splits': a list of fold names")
        return data_splits_from_folds(folds)
    raise ValueError(f"unknown split_mode {mode!r} (known: {', '.join(SPLIT_MODES)})")


# --------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProbeSetError(path, f"malformed JSON: {exc}") from exc


def _read_vocabulary(path: Path) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    if not rows or not {"idx", "label"} <= set(rows[0]):
        raise ProbeSetError(path, "expected an 'idx,label' CSV with at least one row")
    try:
        pairs = sorted((int(r["idx"]), str(r["label"])) for r in rows)
    except ValueError as exc:
        raise ProbeSetError(path, f"idx must be integers ({exc})") from None
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ProbeSetError(path, "idx must be 0..n-1 without gaps")
    return [label for _, label in pairs]


@dataclass
class HearTask:
    """A HEAR task directory.

    Attributes:
        root: the directory.
        metadata: ``task_metadata.json``.
        vocabulary: labels by index (``labelvocabulary.csv``), as strings.
    """

    root: Path
    metadata: dict[str, Any]
    vocabulary: list[str]
    _labels: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The directory name (``esc50-v2.0.0-full``)."""
        return self.root.name

    @property
    def task_name(self) -> str:
        return str(self.metadata.get("task_name", self.root.name))

    @property
    def embedding_type(self) -> str:
        return str(self.metadata["embedding_type"])

    @property
    def prediction_type(self) -> str:
        return str(self.metadata["prediction_type"])

    @property
    def evaluation(self) -> list[str]:
        return list(self.metadata["evaluation"])

    @property
    def splits(self) -> list[str]:
        """Split names in metadata order (the order heareval embeds them in)."""
        return list(self.metadata["splits"])

    @property
    def sample_duration(self) -> float | None:
        d = self.metadata.get("sample_duration")
        return None if d is None else float(d)

    def sample_rates(self) -> list[int]:
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    def audio_dir(self, split: str, sample_rate: int) -> Path:
        return self.root / str(int(sample_rate)) / split

    def labels(self, split: str) -> dict[str, Any]:
        """``<split>.json``: file name -> labels (scene) or events (event), file order kept."""
        if split not in self._labels:
            path = require_file(self.root / f"{split}.json", f"label file of split {split!r}")
            table = _read_json(path)
            if not isinstance(table, dict):
                raise ProbeSetError(path, "expected an object file -> labels")
            self._labels[split] = table
        return self._labels[split]

    def data_splits(self) -> list[dict[str, list[str]]]:
        return data_splits(self.metadata)

    def split_hash(self, split: str, sample_rate: int) -> str:
        """sha256 over the metadata, vocabulary, the split's label file and the bytes of every
        audio file it lists (at ``sample_rate``). Changes whenever anything the embeddings or
        the probe of this split depend on changes."""
        h = hashlib.sha256()
        h.update(json.dumps(self.metadata, sort_keys=True, default=str).encode())
        h.update(json.dumps(self.vocabulary).encode())
        h.update((self.root / f"{split}.json").read_bytes())
        audio_dir = self.audio_dir(split, sample_rate)
        for name in self.labels(split):
            h.update(name.encode() + b"\0")
            h.update(hashlib.sha256((audio_dir / name).read_bytes()).digest())
        return h.hexdigest()


def read_task(root: str | Path) -> HearTask:
    """Read a HEAR task directory (metadata, vocabulary; labels are read on demand).

    Raises:
        ProbeSetError: missing directory/metadata/vocabulary, malformed files, unknown
            embedding or prediction type, no split list that can be derived.
    """
    root = require_dir(root, "HEAR task directory")
    meta_path = require_file(root / TASK_METADATA, "HEAR task metadata")
    meta = _read_json(meta_path)
    if not isinstance(meta, dict):
        raise ProbeSetError(meta_path, "expected a JSON object")
    for key in ("embedding_type", "prediction_type", "evaluation"):
        if key not in meta:
            raise ProbeSetError(meta_path, f"missing {key!r}")
    if meta["embedding_type"] not in ("scene", "event"):
        raise ProbeSetError(meta_path, f"embedding_type {meta['embedding_type']!r} unknown")
    if meta["prediction_type"] not in ("multiclass", "multilabel"):
        raise ProbeSetError(meta_path, f"prediction_type {meta['prediction_type']!r} unknown")
    meta = dict(meta)
    if not isinstance(meta.get("splits"), list):
        if meta.get("split_mode") == "trainvaltest":
            meta["splits"] = ["train", "valid", "test"]
        elif isinstance(meta.get("nfolds"), int):
            meta["splits"] = [f"fold{i:02d}" for i in range(meta["nfolds"])]
        else:
            raise ProbeSetError(meta_path, "no 'splits' list and none can be derived")
    vocab = _read_vocabulary(require_file(root / LABEL_VOCABULARY, "label vocabulary"))
    return HearTask(root=root, metadata=meta, vocabulary=vocab)


def find_tasks(path: str | Path) -> list[Path]:
    """``path`` itself when it is a task directory, else its task subdirectories (sorted)."""
    path = require_dir(path, "HEAR tasks directory")
    if (path / TASK_METADATA).is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and (p / TASK_METADATA).is_file())
    if not found:
        raise ProbeSetError(path, f"no task directory (with {TASK_METADATA}) here or below")
    return found


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class TaskItem:
    """One audio file of a task to write.

    Attributes:
        name: file name in the task (``"abc.wav"``); unique across the task.
        split: split it belongs to.
        labels: scene: list of labels; event: list of ``{"label", "start", "end"}`` (ms).
        source: audio file to read (any rate; mixed down and resampled).
        waveform: or the samples themselves (mono float), at ``source_rate``.
        source_rate: rate of ``waveform``.
    """

    name: str
    split: str
    labels: list[Any]
    source: Path | None = None
    waveform: np.ndarray | None = None
    source_rate: int | None = None


def wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """Mono 32-bit float WAV bytes, deterministic (no PEAK chunk)."""
    from dissect.datasets.synth import wav_bytes as _wav

    return _wav(np.asarray(x, dtype=np.float32), int(sample_rate))


def _load_item(item: TaskItem, sample_rate: int) -> np.ndarray:
    from dissect.audio import ClipPolicy, load_audio
    from dissect.audio.load import resample

    if item.waveform is not None:
        if not item.source_rate:
            raise ValueError(f"{item.name}: waveform given without source_rate")
        x = np.asarray(item.waveform, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"{item.name}: waveform must be mono 1-D, got shape {x.shape}")
        return resample(x, int(item.source_rate), int(sample_rate))
    if item.source is None:
        raise ValueError(f"{item.name}: neither source nor waveform given")
    return load_audio(item.source, sample_rate, ClipPolicy(max_seconds=None)).waveform


def trim_pad(x: np.ndarray, n: int) -> np.ndarray:
    """Trim the end, or zero-pad the end, to exactly ``n`` samples."""
    if len(x) >= n:
        return np.ascontiguousarray(x[:n], dtype=np.float32)
    return np.concatenate([x, np.zeros(n - len(x), dtype=np.float32)]).astype(np.float32)


def write_task(
    root: str | Path,
    metadata: Mapping[str, Any],
    items: Iterable[TaskItem],
    *,
    sample_rate: int = 16000,
    vocabulary: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> HearTask:
    """Write a HEAR task directory (replacing any previous one at ``root``).

    Args:
        root: the task directory to create.
        metadata: task metadata; needs ``task_name``, ``embedding_type``, ``prediction_type``,
            ``split_mode``, ``evaluation``, ``sample_duration`` (None keeps lengths); ``splits``
            is set from the items (folds sorted, or train/valid/test) unless given.
        items: the audio files.
        sample_rate: the one rate directory written.
        vocabulary: label order (default: sorted labels, as hearpreprocess).
        progress: called with a line per 100 files written.

    Returns:
        The task, read back.
    """
    root = Path(root)
    items = list(items)
    if not items:
        raise ValueError("write_task: no items")
    meta = dict(metadata)
    for key in ("task_name", "embedding_type", "prediction_type", "split_mode", "evaluation"):
        if key not in meta:
            raise ValueError(f"write_task: metadata needs {key!r}")
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[:5]
        raise ValueError(f"write_task: duplicate file names {dup}")
    bad = [n for n in names if "/" in n or not n.endswith(".wav")]
    if bad:
        raise ValueError(f"write_task: file names must be '<stem>.wav' without '/': {bad[:5]}")
    present = sorted({it.split for it in items})
    if "splits" not in meta:
        if meta["split_mode"] == "trainvaltest":
            meta["splits"] = ["train", "valid", "test"]
        else:
            meta["splits"] = present
    missing = [s for s in meta["splits"] if s not in present]
    if missing or set(present) - set(meta["splits"]):
        raise ValueError(f"write_task: splits {meta['splits']} vs items' splits {present}")
    if meta["split_mode"] != "trainvaltest":
        meta.setdefault("nfolds", len(meta["splits"]))
    meta.setdefault("version", "v1")
    meta.setdefault("mode", "full")
    meta.setdefault("default_mode", "full")
    meta.setdefault("sample_rate", int(sample_rate))

    def label_strings(it: TaskItem) -> list[str]:
        if meta["embedding_type"] == "scene":
            return [str(x) for x in it.labels]
        return [str(ev["label"]) for ev in it.labels]

    labels_used = sorted({lab for it in items for lab in label_strings(it)})
    if vocabulary is None:
        vocab = labels_used
    else:
        vocab = [str(v) for v in vocabulary]
        unknown = sorted(set(labels_used) - set(vocab))
        if unknown or len(set(vocab)) != len(vocab):
            raise ValueError(f"write_task: labels not in the vocabulary: {unknown[:5]}")
    if meta["embedding_type"] == "scene" and meta["prediction_type"] == "multiclass":
        wrong = [it.name for it in items if len(it.labels) != 1]
        if wrong:
            raise ValueError(f"write_task: multiclass items need exactly one label: {wrong[:5]}")

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        duration = meta.get("sample_duration")
        n_target = None if duration is None else int(round(float(duration) * sample_rate))
        tables: dict[str, dict[str, Any]] = {s: {} for s in meta["splits"]}
        for i, it in enumerate(items):
            x = _load_item(it, sample_rate)
            if n_target is not None:
                x = trim_pad(x, n_target)
            out = tmp / str(int(sample_rate)) / it.split / it.name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(wav_bytes(x, sample_rate))
            if meta["embedding_type"] == "scene":
                tables[it.split][it.name] = label_strings(it)
            else:
                tables[it.split][it.name] = [
                    {"label": str(ev["label"]), "start": float(ev["start"]),
                     "end": float(ev["end"])}
                    for ev in it.labels
                ]  # fmt: skip
            if progress and (i + 1) % 100 == 0:
                progress(f"{root.name}: {i + 1}/{len(items)} files")
        for split, table in tables.items():
            (tmp / f"{split}.json").write_text(json.dumps(table, indent=1) + "\n", "utf-8")
        vocab_csv = "idx,label\n" + "".join(f"{i},{_csv_field(v)}\n" for i, v in enumerate(vocab))
        (tmp / LABEL_VOCABULARY).write_text(vocab_csv, "utf-8")
        (tmp / TASK_METADATA).write_text(
            json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n", "utf-8"
        )
        old = None
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            os.replace(root, old)
        os.replace(tmp, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_task(root)


def _csv_field(v: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([v])
    return buf.getvalue()


def stratified_folds(
    keys: Sequence[str], labels: Sequence[str], nfolds: int = 5, seed: int = 0
) -> dict[str, str]:
    """Deterministic stratified fold names (``fold00`` ...) for ``keys`` (see module doc)."""
    if nfolds < 3:
        raise ValueError(f"nfolds must be >= 3, got {nfolds}")
    by_label: dict[str, list[str]] = {}
    for k, lab in zip(keys, labels, strict=True):
        by_label.setdefault(str(lab), []).append(k)
    out: dict[str, str] = {}
    counter = 0
    for lab in sorted(by_label):
        members = sorted(by_label[lab])
        random.Random(f"{seed}:{lab}").shuffle(members)
        for k in members:
            out[k] = f"fold{counter % nfolds:02d}"
            counter += 1
    return out


def task_dir_name(task_name: str, version: str = "v1", mode: str = "full") -> str:
    """HEAR's ``<task_name>-<version>-<mode>``."""
    return f"{task_name}-{version}-{mode}"


# --------------------------------------------------------------------------- ESC-50


def write_esc50_task(
    esc50_root: str | Path,
    out_dir: str | Path,
    *,
    sample_rate: int = 16000,
    folds: list[int] | None = None,
) -> HearTask:
    """ESC-50 as the HEAR ``esc50`` task: scene, multiclass (50 categories), its own 5 folds,
    5.0 s clips, scores top1_acc (primary), mAP, d_prime, aucroc."""
    from dissect.datasets.esc50 import load_esc50

    ps = load_esc50(esc50_root, folds=folds)
    items = [
        TaskItem(
            name=f"{c.id}.wav",
            split=f"fold{int(c.metadata['fold']) - 1:02d}",
            labels=[c.labels["category"]],
            source=c.path,
        )
        for c in ps
    ]
    meta = {
        "task_name": "esc50",
        "version": "v2.0.0",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "presplit_kfold",
        "sample_duration": 5.0,
        "evaluation": list(SCENE_SCORES),
        "dissect": {"source": "esc50", "root": ps.root.name},
    }
    return write_task(Path(out_dir) / task_dir_name("esc50", "v2.0.0"), meta, items,
                      sample_rate=sample_rate)  # fmt: skip


# --------------------------------------------------------------------------- spoken digits


def write_spoken_digit_tasks(
    root: str | Path,
    out_dir: str | Path,
    *,
    sample_rate: int = 16000,
    nfolds: int = 5,
    sample_duration: float = 1.0,
) -> dict[str, HearTask]:
    """FSDD-style recordings as two tasks, ``spoken_digit`` (10 digits) and
    ``spoken_digit_speaker`` (speaker id): scene, multiclass, ``nfolds`` folds by take index,
    ``sample_duration`` s (hearpreprocess used 1.0 s), score top1_acc."""
    from dissect.datasets.spoken_digit import load_spoken_digit

    ps = load_spoken_digit(root)
    out: dict[str, HearTask] = {}
    for task_name, key in (("spoken_digit", "digit"), ("spoken_digit_speaker", "speaker")):
        items = [
            TaskItem(
                name=f"{Path(c.id).name}.wav",
                split=f"fold{int(c.metadata['index']) % nfolds:02d}",
                labels=[str(c.labels[key])],
                source=c.path,
            )
            for c in ps
        ]
        meta = {
            "task_name": task_name,
            "version": "v1",
            "embedding_type": "scene",
            "prediction_type": "multiclass",
            "split_mode": "new_split_kfold",
            "splits": [f"fold{i:02d}" for i in range(nfolds)],
            "sample_duration": float(sample_duration),
            "evaluation": ["top1_acc"],
            "dissect": {"source": "spoken_digit", "root": ps.root.name, "label": key,
                        "split_rule": f"fold = take index % {nfolds}"},
        }  # fmt: skip
        out[task_name] = write_task(
            Path(out_dir) / task_dir_name(task_name), meta, items, sample_rate=sample_rate
        )
    return out


# --------------------------------------------------------------------------- synth

SYNTH_TASKS = ("pitch", "family", "noise_colour")


def synth_task_items(probe_set, task: str) -> tuple[list[Any], list[str], list[str] | None]:
    """Clips, labels and (for pitch) the vocabulary of one synth task.

    * ``pitch``: every clip with a MIDI note (notes, pure tones, harmonic complexes); label the
      MIDI number; vocabulary the contiguous MIDI range from the lowest to the highest note
      present, in numeric order (so heareval's index-based ``chroma_acc`` is pitch-class
      agreement, as for NSynth).
    * ``family``: instrument notes; label the General MIDI family (``Brass``, ...).
    * ``noise_colour``: noise clips; label ``white`` / ``pink`` / ``brown``.
    """
    if task == "pitch":
        clips = [c for c in probe_set if c.concepts.get("midi_note") is not None]
        labels = [str(int(c.concepts["midi_note"])) for c in clips]
        if not clips:
            return [], [], []
        notes = [int(x) for x in labels]
        return clips, labels, [str(m) for m in range(min(notes), max(notes) + 1)]
    if task == "family":
        clips = [c for c in probe_set if c.concepts.get("kind") == "note"]
        return clips, [str(c.concepts["family"]) for c in clips], None
    if task == "noise_colour":
        clips = [c for c in probe_set if c.concepts.get("kind") == "noise"]
        return clips, [str(c.concepts["noise_colour"]) for c in clips], None
    raise ValueError(f"unknown synth task {task!r} (known: {', '.join(SYNTH_TASKS)})")


def write_synth_tasks(
    out_dir: str | Path,
    cfg=None,
    *,
    tasks: Sequence[str] = SYNTH_TASKS,
    probe_set=None,
    sample_rate: int = 16000,
    nfolds: int = 5,
    seed: int = 0,
    max_clips: int | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, HearTask]:
    """Synth clips (``load_synth(cfg)``) as HEAR tasks ``synth_pitch``, ``synth_family``,
    ``synth_noise_colour``: scene, multiclass, ``nfolds`` stratified folds.

    Args:
        out_dir: the tasks directory; each task goes to ``<out_dir>/synth_<task>-v1-full``.
        cfg: a :class:`~dissect.config.SynthConfig` (default ``SynthConfig()``); ignored when
            ``probe_set`` is given.
        tasks: which of :data:`SYNTH_TASKS`.
        probe_set: an already loaded synth probe set.
        sample_rate: rate of the written audio.
        nfolds: folds per task.
        seed: seed of the fold assignment.
        max_clips: keep at most this many clips per task (the first in probe-set order).
        cache_dir: synth render cache.

    Scores: pitch -> pitch_acc (primary), chroma_acc; family and noise colour -> top1_acc
    (primary), mAP, d_prime, aucroc. ``sample_duration`` = the config's ``max_seconds``.
    """
    from dissect.config import SynthConfig
    from dissect.datasets.synth import load_synth

    if probe_set is None:
        cfg = cfg or SynthConfig()
        probe_set = load_synth(cfg, cache_dir=cache_dir, progress=False)
    first = probe_set[0]
    duration = float(cfg.max_seconds) if cfg is not None else max(
        float(c.metadata.get("duration_s", 0.0)) for c in probe_set
    )
    out: dict[str, HearTask] = {}
    for task in tasks:
        clips, labels, vocab = synth_task_items(probe_set, task)
        if max_clips is not None:
            clips, labels = clips[:max_clips], labels[:max_clips]
            if vocab is not None and labels:
                notes = [int(x) for x in labels]
                vocab = [str(m) for m in range(min(notes), max(notes) + 1)]
        if len(clips) < nfolds:
            raise ValueError(f"synth task {task!r}: {len(clips)} clips < {nfolds} folds")
        folds = stratified_folds([c.id for c in clips], labels, nfolds, seed)
        items = [
            TaskItem(name=f"{c.id}.wav", split=folds[c.id], labels=[lab], source=c.path)
            for c, lab in zip(clips, labels, strict=True)
        ]
        task_name = f"synth_{task}"
        meta = {
            "task_name": task_name,
            "version": "v1",
            "embedding_type": "scene",
            "prediction_type": "multiclass",
            "split_mode": "new_split_kfold",
            "splits": [f"fold{i:02d}" for i in range(nfolds)],
            "sample_duration": duration,
            "evaluation": ["pitch_acc", "chroma_acc"] if task == "pitch" else list(SCENE_SCORES),
            "dissect": {
                "source": "synth",
                "synth_cache_key": probe_set.root.name,
                "synth_render_version": first.metadata.get("render_version"),
                "synth_config": None if cfg is None else {
                    k: getattr(cfg, k)
                    for k in ("seed", "n_clips", "sample_rate", "min_seconds", "max_seconds",
                              "speech")
                },
                "split_rule": f"stratified by label, seed {seed}",
            },
        }  # fmt: skip
        out[task_name] = write_task(
            Path(out_dir) / task_dir_name(task_name), meta, items,
            sample_rate=sample_rate, vocabulary=vocab,
        )  # fmt: skip
    return out
