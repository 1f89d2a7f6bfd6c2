"""Run-directory layout, artifact names, the stage manifest and :func:`run_stage`.

A run directory holds one artifact per stage plus ``manifest.json``. A stage is skipped only when
the manifest says it finished with the same config hash and the same input hashes, *and* every
output file it recorded still has the sha256 recorded for it. A file merely existing never counts.

Every write goes through :func:`~dissect.util.atomic_path` (atomic writes, hashing and JSONL
reading live in :mod:`dissect.util` and are re-exported here, so ``artifacts.write_json`` and the
like keep working): the data is written to a temporary file in the same directory, flushed and
fsynced, then moved into place with ``os.replace``. A run killed mid-write therefore leaves the
previous artifact (or none) intact, never a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from dissect.util import (  # noqa: F401  (re-exported: artifacts.write_json and the like)
    atomic_open,
    atomic_path,
    canonical_json,
    hash_config,
    hash_file,
    hash_files,
    read_jsonl,
    write_bytes,
    write_json,
    write_jsonl,
    write_text,
)

# Artifact file names (relative to the run directory). Later stages add theirs here.
CONFIG = "config.yaml"
MANIFEST = "manifest.json"
CLIPS = "clips.jsonl"
SKIPS = "skips.jsonl"
HELDOUT = "heldout.jsonl"
STATS_DIR = "stats"
ACTIVATIONS_DIR = "activations"
EXEMPLARS = "exemplars.jsonl"
CAPTIONS = "captions.jsonl"
SUMMARIES = "summaries.jsonl"
CONCEPTS = "concepts.jsonl"
DESCRIPTIONS = "descriptions.csv"
EVIDENCE = "evidence.jsonl"
EXPLANATIONS = "explanations.jsonl"
SCORES = "scores.json"
REPORT_DIR = "report"

# Packages whose versions are recorded per stage.
TRACKED_PACKAGES = (
    "dissect",
    "torch",
    "torchaudio",
    "numpy",
    "soundfile",
    "librosa",
    "transformers",
    "hydra-core",
    "safetensors",
    "pretty_midi",
    "tinysoundfont",
)


class Journal:
    """An append-only JSONL journal of finished work items inside a stage.

    A long stage appends one row per finished item (flushed, fsynced every ``sync_every`` rows),
    writes its real artifact atomically at the end, then deletes the journal. If the run is
    killed, the next run reads the journal back (:meth:`rows`) and skips the finished items, so
    finished work is never lost. A torn last line (killed mid-append) is ignored.
    """

    def __init__(self, path: str | Path, sync_every: int = 16):
        self.path = Path(path)
        self.sync_every = sync_every
        self._fh = None
        self._n = 0

    def rows(self) -> list[dict[str, Any]]:
        """Rows of an earlier, interrupted run (empty when there is none)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line from a kill mid-append
        return out

    def append(self, row: Mapping[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = self.path.exists() and self.path.stat().st_size > 0 and \
                not self.path.read_bytes().endswith(b"\n")
            self._fh = open(self.path, "a", encoding="utf-8")
            if torn:  # start on a fresh line after a torn one
                self._fh.write("\n")
        self._fh.write(json.dumps(row, sort_keys=True, allow_nan=False) + "\n")
        self._n += 1
        if self._n % self.sync_every == 0:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None

    def discard(self) -> None:
        """Close and delete the journal (after the final artifact is safely written)."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"not installed"`` when absent), plus Python's."""
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = importlib_metadata.version(n)
        except importlib_metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


# --------------------------------------------------------------------------- manifest


#: Fields of a manifest stage entry that must be mappings (when present).
_MAPPING_FIELDS = ("outputs", "input_hashes", "info", "versions")


def _manifest_stages(path: Path, data: Any) -> dict[str, dict[str, Any]]:
    """The ``stages`` of a parsed manifest, its shape checked: a clear error naming the file
    and the bad entry instead of an AttributeError deep in a stage."""
    def bad(what: str) -> ValueError:
        return ValueError(f"{path}: malformed manifest ({what}); delete it to rerun")

    if not isinstance(data, dict):
        raise bad(f"top level is {type(data).__name__}, not an object")
    stages = data.get("stages", {})
    if not isinstance(stages, dict):
        raise bad(f"'stages' is {type(stages).__name__}, not an object")
    for name, entry in stages.items():
        if not isinstance(entry, dict):
            raise bad(f"stage {name!r} is {type(entry).__name__}, not an object")
        for key in _MAPPING_FIELDS:
            if key in entry and not isinstance(entry[key], dict):
                raise bad(f"stage {name!r}: {key!r} is {type(entry[key]).__name__}, "
                          "not an object")
        if "status" in entry and not isinstance(entry["status"], str):
            raise bad(f"stage {name!r}: 'status' is not a string")
    return dict(stages)


class Manifest:
    """``manifest.json``: per stage, its config hash, input hashes, output hashes, status, timings
    and package versions. Saved atomically after every change of status."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / MANIFEST
        self.stages: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(
                    f"{self.path}: corrupt manifest ({exc}); delete it to rerun"
                ) from exc
            self.stages = _manifest_stages(self.path, data)

    def save(self) -> None:
        write_json(self.path, {"format": 1, "stages": self.stages})

    def is_current(self, name: str, config_hash: str, input_hashes: Mapping[str, str]) -> bool:
        """True when stage ``name`` finished, with no failed work items, with these hashes, and
        its outputs are unchanged."""
        entry = self.stages.get(name)
        if not entry or entry.get("status") != "done":
            return False
        if entry.get("failed_items"):  # finished with failed work items: retry them
            return False
        if entry.get("config_hash") != config_hash:
            return False
        if entry.get("input_hashes") != dict(input_hashes):
            return False
        for rel, digest in entry.get("outputs", {}).items():
            p = self.run_dir / rel
            if not p.is_file() or hash_file(p) != digest:
                return False
        return True

    def output_hash(self, stage: str, rel: str) -> str:
        """Recorded sha256 of output ``rel`` of a finished ``stage`` (inputs of later stages)."""
        try:
            return self.stages[stage]["outputs"][rel]
        except KeyError as exc:
            raise KeyError(f"{self.path}: stage {stage!r} has no recorded output {rel!r}") from exc


#: The lock file of a run directory (held while ``dissect run`` works in it).
LOCK = ".dissect.lock"


class RunDirBusy(RuntimeError):
    """Another process is running stages in this run directory."""


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``run_dir/.dissect.lock`` (an exclusive ``flock``) while the body runs, so two
    ``dissect run`` into one directory do not both redo (and overwrite) the same work.

    Raises:
        RunDirBusy: the lock is held; the message names the holder's pid and start time.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = Path(run_dir) / LOCK
    fh = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise RunDirBusy(f"{run_dir} is in use by {holder}; wait for it to finish, or "
                             "give another run_dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} (since {time.strftime('%Y-%m-%dT%H:%M:%S%z')})")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


@dataclass
class StageResult:
    """What :func:`run_stage` did: ``skipped`` is True when the recorded results were reused."""

    name: str
    skipped: bool
    seconds: float
    info: dict[str, Any]


#: Key of a stage's returned info: how many of its work items failed (e.g. LLM calls after their
#: retries) although the stage finished. Recorded as the entry's ``failed_items``; such a stage is
#: never current, so the next run repeats it (finished work comes from caches and journals).
FAILED_ITEMS = "_failed_items"


def run_stage(
    run_dir: str | Path,
    name: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, str],
    outputs: Iterable[str],
    fn: Callable[[Path], Mapping[str, Any] | None],
    force: bool = False,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> StageResult:
    """Run one stage unless its recorded results are current.

    Args:
        run_dir: the run directory.
        name: stage name (key in the manifest).
        config: the stage's own config section (plain JSON-able mapping); hashed.
        inputs: name -> content hash of everything the stage reads (files, upstream artifacts).
        outputs: artifact paths relative to ``run_dir`` that ``fn`` must write (atomically).
        fn: ``fn(run_dir) -> info`` does the work; ``info`` (JSON-able) goes into the manifest.
            Outputs known only once the work is done (e.g. one file per layer) are listed by
            ``fn`` under the key ``"_outputs"`` and are hashed like the declared ones. A count of
            failed work items goes under :data:`FAILED_ITEMS`.
        force: run even when current.
        log: where one status line per stage goes.

    Returns:
        A :class:`StageResult`.

    Raises:
        Whatever ``fn`` raises (the manifest then records ``status: failed`` and the error), or
        ``RuntimeError`` when ``fn`` returns without writing a declared output.
    """
    run_dir = Path(run_dir)
    outputs = list(outputs)
    manifest = Manifest(run_dir)
    chash = hash_config(dict(config))
    if not force and manifest.is_current(name, chash, inputs):
        log(f"[{name}] up to date, skipped")
        return StageResult(name, True, 0.0, manifest.stages[name].get("info", {}))

    previous = manifest.stages.get(name) or {}
    if not force and previous.get("status") == "done" and previous.get("failed_items"):
        log(f"[{name}] {previous['failed_items']} item(s) failed last time: running it again")
    entry = {
        "status": "running",
        "config_hash": chash,
        "input_hashes": dict(inputs),
        "outputs": {},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": package_versions(),
    }
    manifest.stages[name] = entry
    manifest.save()
    t0 = time.perf_counter()
    try:
        info = dict(fn(run_dir) or {})
        outputs += [o for o in info.pop("_outputs", []) if o not in outputs]
        failed_items = int(info.pop(FAILED_ITEMS, 0) or 0)
        missing = [o for o in outputs if not (run_dir / o).is_file()]
        if missing:
            raise RuntimeError(f"stage {name!r} did not write its outputs: {missing}")
    except BaseException as exc:
        entry.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}"[:2000],
            seconds=round(time.perf_counter() - t0, 3),
        )
        manifest.save()
        raise
    entry.update(
        status="done",
        outputs={o: hash_file(run_dir / o) for o in outputs},
        seconds=round(time.perf_counter() - t0, 3),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        info=info,
    )
    entry.pop("error", None)
    if failed_items:
        entry["failed_items"] = failed_items
    manifest.save()
    tail = (f"; {failed_items} failed item(s), kept marked failed and retried on the next run"
            if failed_items else "")
    log(f"[{name}] done in {entry['seconds']:.1f} s{tail}")
    return StageResult(name, False, entry["seconds"], info)


def run_dir_for(runs_dir: str | Path, recipe: str, config: Mapping[str, Any]) -> Path:
    """``<runs_dir>/<recipe>-<first 10 hex of the config hash>``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in recipe) or "run"
    return Path(runs_dir) / f"{safe}-{hash_config(dict(config))[:10]}"
