"""The ``offline`` HEAR suite: five tasks of real (and one synthesised) recordings, rebuilt
offline from registry packages by one command (:func:`write_offline_suite`;
``dissect hear-tasks suite=offline out=tasks/``).

Every source comes from a Debian package fetched with ``apt-get download`` (no root) into
``<data_dir>/debs`` and unpacked there, or from a probe set this project renders itself:

* ``free_sounds_category`` (scene, multiclass): the ESC-50-style ``category`` of the
  ``free_sounds`` probe set (``scripts/get_free_sounds.sh``; built here when missing), classes
  with at least ``min_clips`` files in at least ``min_groups`` sample packs; folds stratified
  by category and grouped by sample pack (:func:`dissect.datasets.free_sounds.source_group`),
  so no pack spans two folds. Clips cut or padded to 4 s.
* ``ktuberling_language`` (scene, multiclass): the word recordings of ``ktuberling-data``
  (KDE's KTuberling: the names of the game's pictures, recorded per language); label the
  language; languages with at least ``min_clips`` distinct recordings; byte-identical files
  (the Serbian script variants share theirs) kept once; folds grouped by the picture's name, so
  the same word's recordings in one language never span two folds. One speaker per language,
  so this is also a speaker task (said in the docs). 2 s.
* ``spoken_digit_voices`` (scene, multiclass): the ``espeak_digits`` probe set (12 espeak-ng
  English voices) plus the ten recorded digit prompts of ``asterisk-core-sounds-en-wav`` (a
  human voice); label the digit; folds grouped by voice, so every test voice is unseen. 1.5 s.
* ``nsynth_pitch`` (scene, multiclass, ``pitch_acc``/``chroma_acc``): the instrument notes of
  the ``synth`` probe set (General MIDI soundfont samples, rendered), label the MIDI note over
  the contiguous note range (as NSynth pitch); folds stratified by note. 2 s.
* ``free_sounds_events`` (event, DCASE 2016 task 2 style): isolated one-shot events of
  :data:`EVENT_CLASSES` from the free sounds, cut to their active part (at most 2 s), mixed at
  random non-overlapping onsets into 10-s excerpts of the real ambience recordings of
  :data:`BACKGROUNDS` at event-to-background ratios of -6, 0 and +6 dB; onset/offset labels in
  ms; scored with ``event_onset_200ms_fms`` (primary) and ``segment_1s_er``. Event recordings
  are dealt into folds grouped by sample pack; each scene takes its events from one fold only.

Each task records its sources, licences and fold rule in ``task_metadata.json``
(``dissect``). A task whose source cannot be had (no ``apt-get``, no espeak-ng) is skipped and
the reason written to ``<out>/suite.json``; the others are still written.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dissect.fields import COUNT, Range, check, option
from dissect.hear.tasks.folder import grouped_fold_items
from dissect.hear.tasks.reader import HearTask
from dissect.hear.tasks.writer import (
    SCENE_SCORES,
    TaskItem,
    stratified_folds,
    task_dir_name,
    write_task,
)

OFFLINE_TASKS = ("free_sounds_category", "ktuberling_language", "spoken_digit_voices",
                 "nsynth_pitch", "free_sounds_events")
#: One-shot classes of the event task (free-sounds ``category``).
EVENT_CLASSES = ("bass_drum", "snare_drum", "hi_hat", "cymbal", "tom_tom", "clapping",
                 "cowbell", "rimshot", "hand_drum", "tambourine")
#: Real ambience recordings of the free sounds the events are mixed into (file names).
BACKGROUNDS = ("sonic-pi-samples/vinyl_hiss.wav", "sonic-pi-samples/ambi_sauna.wav",
               "lmms-common/raving_crowd01.wav", "gcompris-qt-data/LRRain_in_garden_01_LA_cut.wav",
               "gcompris-qt-data/LRTrain_slowing_down_01_LA_cut.wav",
               "gcompris-qt-data/water_fill.wav", "gcompris-qt-data/water.wav")
EVENT_SCORES = ["event_onset_200ms_fms", "segment_1s_er"]
KTUBERLING = "ktuberling-data"
ASTERISK = "asterisk-core-sounds-en-wav"


@dataclass
class SuiteConfig:
    """The settings of ``dissect hear-tasks suite=offline`` (``key=value`` on the command line).
    """

    suite: str = option("offline", ("offline",))
    """Which suite: offline (the five tasks of :mod:`dissect.hear.tasks.suite`)."""
    out: str = "tasks"
    """Where the task directories (``<task_name>-v1-full``) and ``suite.json`` go."""
    tasks: list[str] = field(default_factory=lambda: list(OFFLINE_TASKS))
    """Which tasks to write (default: all five)."""
    data_dir: str = "data"
    """Where the sources are kept: ``free_sounds/`` (built when missing) and ``debs/``."""
    folds: int = option(5, Range(3, integer=True))
    """Folds per task."""
    seed: int = 0
    """Seed of the fold assignment and of the event mixtures."""
    sample_rate: int = option(16000, COUNT)
    """The sample rate the tasks' audio is written at, in Hz."""
    min_clips: int = option(10, COUNT)
    """Scene tasks: classes with fewer files are left out (and listed)."""
    min_groups: int = option(3, COUNT)
    """free_sounds_category: classes found in fewer sample packs are left out (and listed)."""
    event_scenes: int = option(250, COUNT)
    """free_sounds_events: number of 10-s scenes (spread evenly over the folds)."""
    event_ebr_db: list[float] = field(default_factory=lambda: [-6.0, 0.0, 6.0])
    """free_sounds_events: event-to-background ratios, in dB (DCASE 2016 task 2's)."""

    def __post_init__(self) -> None:
        check(type(self), self, "")
        unknown = sorted(set(self.tasks) - set(OFFLINE_TASKS))
        if unknown:
            raise ValueError(f"tasks: unknown {unknown}; known: {list(OFFLINE_TASKS)}")


class SourceMissing(RuntimeError):
    """A task's source cannot be had here (the message says which and how to get it)."""


# --------------------------------------------------------------------------- sources
def fetch_package(package: str, debs: Path) -> Path:
    """The unpacked root of ``package``: its ``.deb`` in ``debs`` (``apt-get download`` when
    missing), extracted once under ``debs/<package>/``."""
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        if shutil.which("apt-get") is None:
            raise SourceMissing(f"{package}: not in {debs} and no apt-get to download it")
        res = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True,
                             text=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if res.returncode or not found:
            raise SourceMissing(f"{package}: apt-get download failed: "
                                f"{(res.stderr or res.stdout).strip()[-300:]}")
    target = debs / package
    stamp = target / ".extracted"
    if not stamp.is_file() or stamp.read_text() != found[-1].name:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        res = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(target)],
                             capture_output=True, text=True)
        if res.returncode:
            raise SourceMissing(f"{found[-1]}: dpkg-deb -x failed: {res.stderr.strip()}")
        stamp.write_text(found[-1].name)
    return target


def free_sounds_rows(data_dir: Path, log: Callable[[str], None]) -> tuple[Path, list[dict]]:
    """``(root, metadata rows with group)`` of the free-sounds probe set under ``data_dir``,
    built (packages downloaded into ``data_dir/debs``) when missing."""
    from dissect.datasets import free_sounds as fs

    root = data_dir / "free_sounds"
    if not (root / "metadata.csv").is_file():
        log(f"[suite] building the free-sounds probe set in {root}")
        debs = data_dir / "debs"
        for pkg in fs.PACKAGES:
            if not sorted(debs.glob(f"{pkg}_*.deb")):
                fetch_package(pkg, debs)
        fs.build(root, debs, progress=False)
    with (root / "metadata.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if not r.get("group"):
            r["group"] = fs.source_group(r["package"], r["source"])
    return root, rows


# --------------------------------------------------------------------------- scene tasks
def _scene_meta(name: str, duration: float, sources: dict[str, Any],
                evaluation: Sequence[str] = SCENE_SCORES) -> dict[str, Any]:
    return {"task_name": name, "version": "v1", "embedding_type": "scene",
            "prediction_type": "multiclass", "split_mode": "new_split_kfold",
            "sample_duration": float(duration), "evaluation": list(evaluation),
            "dissect": {"suite": "offline", **sources}}


def free_sounds_category_task(cfg: SuiteConfig, log) -> tuple[dict, list[TaskItem], None]:
    root, rows = free_sounds_rows(Path(cfg.data_dir), log)
    items, left_out = grouped_fold_items(
        rows, root, label="category", group="group", folds=cfg.folds, min_clips=cfg.min_clips,
        min_groups=cfg.min_groups, seed=cfg.seed, where=str(root / "metadata.csv"))
    kept = {it.source.relative_to(root).as_posix() for it in items}
    lic = Counter(r["licence"] for r in rows if r["filename"] in kept)
    meta = _scene_meta("free_sounds_category", 4.0, {
        "source": "free_sounds (scripts/get_free_sounds.sh: five Debian packages)",
        "licences": dict(lic.most_common()),
        "split_rule": f"StratifiedGroupKFold by category, grouped by sample pack, seed "
                      f"{cfg.seed}; classes with >= {cfg.min_clips} files in >= "
                      f"{cfg.min_groups} packs", **left_out})
    return meta, items, None


def ktuberling_rows(root: Path) -> tuple[list[dict], dict]:
    """One row per distinct recording of ``ktuberling-data`` unpacked at ``root``:
    ``filename`` (relative to the sounds directory), ``language``, ``word`` (the picture's
    name from ``<lang>.soundtheme``); byte-identical duplicates kept once (counted)."""
    sounds = root / "usr/share/ktuberling/sounds"
    if not sounds.is_dir():
        raise SourceMissing(f"{sounds}: not found in the unpacked {KTUBERLING}")
    rows, seen, dup = [], {}, 0
    for theme in sorted(sounds.glob("*.soundtheme")):
        lang = theme.stem
        try:
            tree = ET.parse(theme).getroot()
        except ET.ParseError as exc:
            raise SourceMissing(f"{theme}: unreadable sound theme ({exc})") from exc
        for el in tree.iter("sound"):
            rel, word = el.get("file"), el.get("name")
            if not rel or not word or not (sounds / rel).is_file():
                continue
            digest = hashlib.sha256((sounds / rel).read_bytes()).hexdigest()
            if digest in seen:
                dup += 1
                continue
            seen[digest] = rel
            rows.append({"filename": rel, "language": lang, "word": f"{lang}:{word}"})
    return rows, {"duplicates_dropped": dup}


def ktuberling_language_task(cfg: SuiteConfig, log) -> tuple[dict, list[TaskItem], None]:
    root = fetch_package(KTUBERLING, Path(cfg.data_dir) / "debs")
    rows, info = ktuberling_rows(root)
    items, left_out = grouped_fold_items(
        rows, root / "usr/share/ktuberling/sounds", label="language", group="word",
        folds=cfg.folds, min_clips=cfg.min_clips, seed=cfg.seed,
        where=f"{KTUBERLING} sound themes")
    meta = _scene_meta("ktuberling_language", 2.0, {
        "source": f"Debian {KTUBERLING} (KDE KTuberling word recordings)",
        "licences": {"GPL-2+ (see the package's copyright file)": len(items)},
        "split_rule": f"StratifiedGroupKFold by language, grouped by picture name, seed "
                      f"{cfg.seed}; languages with >= {cfg.min_clips} distinct recordings",
        **info, **left_out})
    return meta, items, None


def spoken_digit_voices_task(cfg: SuiteConfig, log) -> tuple[dict, list[TaskItem], None]:
    from dissect.datasets.espeak_digits import EspeakDigitsConfig, load_espeak_digits

    try:
        ps = load_espeak_digits(EspeakDigitsConfig(), progress=False)
    except Exception as exc:  # noqa: BLE001 - espeak-ng missing: the task is skipped
        raise SourceMissing(f"espeak_digits: {exc}") from exc
    rows = [{"filename": str(c.path), "digit": str(c.labels["digit"]),
             "voice": str(c.labels["speaker"])} for c in ps]
    ast = fetch_package(ASTERISK, Path(cfg.data_dir) / "debs")
    # the package's voice directory (en_US_f_Allison); Debian links sounds/en to it
    voices = sorted(p.parent for p in (ast / "usr/share/asterisk/sounds").glob("*/digits"))
    if not voices:
        raise SourceMissing(f"{ast}: no usr/share/asterisk/sounds/*/digits directory")
    for d in range(10):
        f = voices[0] / "digits" / f"{d}.wav"
        if f.is_file():
            rows.append({"filename": str(f), "digit": str(d),
                         "voice": f"asterisk:{voices[0].name}"})
    # absolute paths: root "/" keeps them
    for r in rows:
        r["filename"] = r["filename"].lstrip("/")
    items, left_out = grouped_fold_items(rows, Path("/"), label="digit", group="voice",
                                         folds=cfg.folds, min_clips=cfg.min_clips,
                                         seed=cfg.seed, where="spoken digits")
    items = [TaskItem(name=_flat_name(it.source), split=it.split, labels=it.labels,
                      source=it.source) for it in items]
    meta = _scene_meta("spoken_digit_voices", 1.5, {
        "source": f"espeak_digits probe set (espeak-ng, 12 English voices; rendered) + the "
                  f"digit prompts of Debian {ASTERISK} (a recorded voice)",
        "licences": {"espeak-ng output (GPL-3+ program; rendered here)": len(ps),
                     f"{ASTERISK}: CC-BY-SA-3.0": sum(r["voice"].startswith("asterisk:")
                                                       for r in rows)},
        "split_rule": f"StratifiedGroupKFold by digit, grouped by voice, seed {cfg.seed}",
        **left_out})
    return meta, items, None


def _flat_name(path: Path) -> str:
    parts = Path(path).parts[-3:]
    return re.sub(r"[^0-9A-Za-z._-]+", "_", "__".join(parts))


def nsynth_pitch_task(cfg: SuiteConfig, log) -> tuple[dict, list[TaskItem], list[str]]:
    from dissect.datasets.synth import SynthConfig, load_synth

    ps = load_synth(SynthConfig(), progress=False)
    clips = [c for c in ps if c.concepts.get("kind") == "note"
             and c.concepts.get("midi_note") is not None]
    if len(clips) < cfg.folds:
        raise SourceMissing(f"synth: {len(clips)} instrument notes")
    labels = [str(int(c.concepts["midi_note"])) for c in clips]
    folds = stratified_folds([c.id for c in clips], labels, cfg.folds, cfg.seed)
    items = [TaskItem(name=f"{c.id}.wav", split=folds[c.id], labels=[lab], source=c.path)
             for c, lab in zip(clips, labels, strict=True)]
    notes = sorted(int(x) for x in labels)
    vocab = [str(m) for m in range(notes[0], notes[-1] + 1)]
    meta = _scene_meta("nsynth_pitch", 2.0, {
        "source": "synth probe set, instrument notes (General MIDI soundfont samples)",
        "licences": {"soundfont: see dissect.datasets.synth": len(items)},
        "split_rule": f"stratified by MIDI note, seed {cfg.seed}"},
        evaluation=["pitch_acc", "chroma_acc"])
    return meta, items, vocab


# --------------------------------------------------------------------------- event task
def active_part(x: np.ndarray, sr: int, floor_db: float = -40.0,
                max_seconds: float = 2.0) -> np.ndarray:
    """The span of ``x`` (mono) from the first to the last 10-ms frame whose RMS is within
    ``floor_db`` of the loudest frame, cut to ``max_seconds``; empty when silent."""
    hop = max(1, int(0.01 * sr))
    n = len(x) // hop
    if n == 0:
        return x[:0]
    rms = np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1))
    if rms.max() <= 0:
        return x[:0]
    on = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-12) / rms.max()) > floor_db)
    seg = x[on[0] * hop:(on[-1] + 1) * hop]
    return seg[: int(max_seconds * sr)]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def mix_scene(background: np.ndarray, events: Sequence[tuple[str, np.ndarray]], sr: int,
              ebr_db: float, rng: np.random.Generator, seconds: float = 10.0,
              ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A ``seconds``-long scene: a random excerpt of ``background`` (tiled when shorter) with
    ``events`` placed at random non-overlapping onsets, each scaled so that its RMS is
    ``ebr_db`` above the excerpt's. Returns ``(samples, labels)``; labels are
    ``{"label", "start", "end"}`` in ms. The scene is scaled down if it would clip (ratios
    kept)."""
    n = int(round(seconds * sr))
    if len(background) < n:
        background = np.tile(background, int(np.ceil(n / max(len(background), 1))))
    start = int(rng.integers(0, len(background) - n + 1))
    scene = np.array(background[start:start + n], dtype=np.float64)
    bg_rms = _rms(scene) or 1e-4
    total = sum(len(e) for _, e in events)
    if total > n:
        raise ValueError(f"events ({total} samples) do not fit a {seconds}-s scene")
    free = n - total
    cuts = np.sort(rng.integers(0, free + 1, size=len(events)))
    labels, pos = [], 0
    for (lab, ev), cut in zip(events, cuts, strict=True):
        onset = int(cut) + pos
        gain = bg_rms * 10 ** (ebr_db / 20) / (_rms(ev) or 1e-9)
        scene[onset:onset + len(ev)] += gain * ev
        labels.append({"label": lab, "start": round(1000 * onset / sr, 3),
                       "end": round(1000 * (onset + len(ev)) / sr, 3)})
        pos += len(ev)
    peak = float(np.abs(scene).max())
    if peak > 0.99:
        scene *= 0.99 / peak
    return scene.astype(np.float32), labels


def free_sounds_events_task(cfg: SuiteConfig, log) -> tuple[dict, list[TaskItem], None]:
    from dissect.audio import ClipPolicy, load_audio

    root, rows = free_sounds_rows(Path(cfg.data_dir), log)
    sr = int(cfg.sample_rate)
    pol = ClipPolicy(max_seconds=None)
    bgs = []
    for name in BACKGROUNDS:
        if (root / name).is_file():
            bgs.append((name, load_audio(root / name, sr, pol).waveform))
    if not bgs:
        raise SourceMissing(f"{root}: none of the ambience recordings {BACKGROUNDS}")
    ev_rows = [r for r in rows if r["category"] in EVENT_CLASSES]
    items, left_out = grouped_fold_items(
        ev_rows, root, label="category", group="group", folds=cfg.folds,
        min_clips=cfg.min_clips, min_groups=cfg.min_groups, seed=cfg.seed,
        where=str(root / "metadata.csv"))
    pools: dict[str, list[tuple[str, np.ndarray]]] = {}
    for it in items:
        seg = active_part(load_audio(it.source, sr, pol).waveform, sr)
        if len(seg) >= int(0.05 * sr):
            pools.setdefault(it.split, []).append((it.labels[0], seg))
    rng = np.random.default_rng(cfg.seed)
    splits = sorted(pools)
    if len(splits) < cfg.folds:
        raise SourceMissing(f"free sounds: events fill only {len(splits)} folds")
    out_items = []
    for i in range(int(cfg.event_scenes)):
        split = splits[i % len(splits)]
        pool = pools[split]
        k = int(rng.integers(1, 4))
        picks = [pool[j] for j in rng.choice(len(pool), size=min(k, len(pool)), replace=False)]
        bg_name, bg = bgs[int(rng.integers(len(bgs)))]
        ebr = float(cfg.event_ebr_db[i % len(cfg.event_ebr_db)])
        x, labels = mix_scene(bg, picks, sr, ebr, rng)
        out_items.append(TaskItem(name=f"scene{i:04d}.wav", split=split, labels=labels,
                                  waveform=x, source_rate=sr))
    classes = sorted({lab for _, p in pools.items() for lab, _ in p})
    meta = {"task_name": "free_sounds_events", "version": "v1", "embedding_type": "event",
            "prediction_type": "multilabel", "split_mode": "new_split_kfold",
            "sample_duration": 10.0, "evaluation": list(EVENT_SCORES),
            # hearpreprocess's own setting for DCASE 2016 task 2 (sed_eval is slow)
            "evaluation_params": {"task_specific_param_grid": {"check_val_every_n_epoch": [10]}},
            "dissect": {"suite": "offline", "source": "free_sounds events mixed into free_sounds "
                        "ambience (DCASE 2016 task 2 style)", "classes": classes,
                        "backgrounds": [b for b, _ in bgs], "ebr_db": list(cfg.event_ebr_db),
                        "events_per_scene": "1-3, non-overlapping",
                        "split_rule": "event recordings in StratifiedGroupKFold folds by "
                                      "category, grouped by sample pack; a scene's events "
                                      "all come from its fold; backgrounds shared",
                        **left_out}}
    return meta, out_items, None


BUILDERS: dict[str, Callable] = {
    "free_sounds_category": free_sounds_category_task,
    "ktuberling_language": ktuberling_language_task,
    "spoken_digit_voices": spoken_digit_voices_task,
    "nsynth_pitch": nsynth_pitch_task,
    "free_sounds_events": free_sounds_events_task,
}


def write_offline_suite(cfg: SuiteConfig, log: Callable[[str], None] = print
                        ) -> dict[str, HearTask]:
    """Write the tasks of ``cfg.tasks`` under ``cfg.out`` and ``<out>/suite.json`` (per task:
    its directory, files, classes, or the reason it was skipped). Returns the written tasks."""
    out = Path(cfg.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, HearTask] = {}
    summary_path = out / "suite.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():  # tasks written by an earlier call stay listed
        try:
            summary = json.loads(summary_path.read_text("utf-8"))
        except ValueError:
            summary = {}
    for name in cfg.tasks:
        log(f"[suite] {name}")
        try:
            meta, items, vocab = BUILDERS[name](cfg, log)
        except SourceMissing as exc:
            summary[name] = {"skipped": str(exc)}
            log(f"[suite] {name}: skipped ({exc})")
            continue
        task = write_task(out / task_dir_name(name), meta, items, sample_rate=cfg.sample_rate,
                          vocabulary=vocab, progress=log)
        written[name] = task
        summary[name] = {"dir": task.root.name, "files": len(items),
                         "classes": len(task.vocabulary), "folds": len(task.splits),
                         "sample_duration": meta["sample_duration"],
                         "embedding_type": meta["embedding_type"]}
    summary_path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", "utf-8")
    return written
