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
import re
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


def config_setting(config: Mapping[str, Any], section: str, key: str, default: Any = None
                   ) -> Any:
    """``config[section][key]`` of a run's ``config.yaml`` (read as a plain mapping), else
    ``default``. Runs written before the describe section was split into ``summarize``,
    ``concepts`` and ``explain`` keep those fields under ``describe``: read there too."""
    for name in (section, "describe"):
        value = (config.get(name) or {}).get(key)
        if value is not None:
            return value
    return default


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
_MAPPING_FIELDS = ("outputs", "previous_outputs", "input_hashes", "info", "versions")


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


# --------------------------------------------------------------------------- claiming a directory


class RunDirRefused(ValueError):
    """A directory dissect will not write into (the message names it and says why): the
    filesystem root, the home directory, a file, or a non-empty directory dissect did not make.
    """


def is_dissect_manifest(path: str | Path) -> bool:
    """True when ``path`` is a readable ``manifest.json`` in dissect's format (an object with
    ``format: 1`` and a ``stages`` object), the mark of a directory dissect made."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == 1 \
        and isinstance(data.get("stages"), dict)


def claim_dir(path: str | Path, is_ours: Callable[[Path], bool], what: str,
              ignore: Iterable[str] = ()) -> Path:
    """Check that dissect may write into directory ``path``, and create it (with parents).

    Dissect deletes and overwrites files in the directories it writes, so it writes only into
    a new or empty directory, or one it recognises as its own (``is_ours``). Nothing is written
    before the check passes.

    Args:
        path: the directory.
        is_ours: ``is_ours(path)`` is True for an existing directory dissect made.
        what: how the messages call it (``run directory``, ``report directory``).
        ignore: entry names that do not make a directory non-empty (dissect's lock file).

    Returns:
        ``path`` (as a :class:`~pathlib.Path`), now an existing directory.

    Raises:
        RunDirRefused: ``path`` is the filesystem root or the home directory (even when empty:
            dissect would scatter its files there), an existing file, or a non-empty
            directory that ``is_ours`` does not recognise. Nothing in it was touched.
        OSError: it cannot be created (permission denied, a file in the way of a parent).
    """
    p = Path(path)
    resolved = p.resolve()
    if resolved == Path(resolved.anchor):
        raise RunDirRefused(f"{p}: refusing to use the filesystem root as a {what}; give a "
                            "new or empty directory")
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError):  # no home directory known
        home = None
    if resolved == home:
        raise RunDirRefused(f"{p}: refusing to use your home directory as a {what}; give a "
                            "new or empty directory")
    if p.exists() and not p.is_dir():
        raise RunDirRefused(f"{p}: exists and is not a directory; give a new or empty "
                            f"directory as the {what}")
    if p.is_dir() and not is_ours(p):
        skip = set(ignore)
        if any(e.name not in skip for e in p.iterdir()):
            raise RunDirRefused(f"{p}: not empty and not a {what} dissect made; refusing to "
                                "write there (its files would be overwritten or deleted); "
                                "give a new or empty directory")
    p.mkdir(parents=True, exist_ok=True)
    return p


def claim_run_dir(run_dir: str | Path) -> Path:
    """:func:`claim_dir` for a run directory: ours when it holds a dissect ``manifest.json``
    (:func:`is_dissect_manifest`); a directory holding only dissect's lock file counts as
    empty. Call :func:`mark_run_dir` once it is locked, so the next run recognises it.

    Raises:
        RunDirRefused: see :func:`claim_dir` (also a ``manifest.json`` that is not dissect's).
    """
    return claim_dir(run_dir, lambda p: is_dissect_manifest(p / MANIFEST), "run directory",
                     ignore=(LOCK,))


def mark_run_dir(run_dir: str | Path) -> None:
    """Write an empty dissect ``manifest.json`` into a claimed ``run_dir`` that has none, so it
    is recognised as dissect's even if the run stops before its first stage."""
    if not (Path(run_dir) / MANIFEST).exists():
        Manifest(run_dir).save()


def remove_stale_outputs(run_dir: str | Path, stage: str, keep: Iterable[str],
                         under: Iterable[str]) -> list[str]:
    """Delete the files an earlier run of ``stage`` wrote (its manifest ``previous_outputs``,
    see :func:`run_stage`) under the folders ``under`` that this run did not write (``keep``).

    Only files the manifest lists as dissect's outputs are deleted, so a file a user put into
    ``stats/`` (say) survives. A listed path that is absolute, climbs out of ``run_dir`` or is
    not a plain file is left alone.

    Returns:
        The deleted paths, relative to ``run_dir``.
    """
    run_dir = Path(run_dir)
    entry = Manifest(run_dir).stages.get(stage) or {}
    keep_set = {Path(k).as_posix() for k in keep}
    roots = tuple(Path(u).as_posix() for u in under)
    base = run_dir.resolve()
    removed = []
    for rel in entry.get("previous_outputs") or {}:
        rp = Path(rel)
        if rp.is_absolute() or ".." in rp.parts or rp.as_posix() in keep_set:
            continue
        if not rp.parts or rp.parts[0] not in roots:
            continue
        p = run_dir / rp
        if p.is_symlink() or not p.is_file() or not p.resolve().is_relative_to(base):
            continue
        p.unlink()
        removed.append(rp.as_posix())
    return removed


def safetensors_error(exc: Exception, path: str | Path) -> Exception:
    """The error to raise for a safetensors failure ``exc`` on ``path``, naming the path (the
    library's own message does not): an :class:`OSError` with the errno and message of an I/O
    error it wraps (``IoError(Os { code: 28, ..., message: "No space left on device" })``),
    else a :class:`ValueError` (a corrupt or foreign file)."""
    text = str(exc)
    code = re.search(r"\bcode: (\d+)", text)
    if code:
        errno_ = int(code.group(1))
        msg = re.search(r'message: "([^"]*)"', text)
        return OSError(errno_, msg.group(1) if msg else os.strerror(errno_), str(path))
    return ValueError(f"{path}: not a readable safetensors file ({text})")


#: Characters of a layer name: letters, digits, ``_``, ``.``, ``-`` and ``:``.
_LAYER_NAME = re.compile(r"[\w][\w.:-]*")


def check_layer_name(layer: str) -> str:
    """``layer`` if it is a plain layer name (a dotted module name such as
    ``encoder.layers.3.fc1``: letters, digits, ``_``, ``.``, ``-``, ``:``; no path separator,
    no ``..``, no NUL), since layer names become file names (``stats/<layer>.safetensors``).

    Raises:
        ValueError: any other name (e.g. ``../../etc/passwd`` from an edited manifest).
    """
    if not isinstance(layer, str) or not _LAYER_NAME.fullmatch(layer) or ".." in layer:
        raise ValueError(f"{layer!r} is not a plain layer name (letters, digits and _ . - : "
                         "only; no path separators or '..')")
    return layer


def layer_file(run_dir: str | Path, folder: str, layer: str) -> Path:
    """``<run_dir>/<folder>/<layer>.safetensors`` for a plain layer name
    (:func:`check_layer_name`)."""
    return Path(run_dir) / folder / f"{check_layer_name(layer)}.safetensors"


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
    # the files earlier runs of this stage wrote (kept across failed runs), so the stage may
    # delete its own stale files and never anyone else's (remove_stale_outputs)
    carried = {} if previous.get("status") == "done" else \
        dict(previous.get("previous_outputs") or {})
    carried.update(previous.get("outputs") or {})
    entry = {
        "status": "running",
        "config_hash": chash,
        "input_hashes": dict(inputs),
        "outputs": {},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": package_versions(),
    }
    if carried:
        entry["previous_outputs"] = carried
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
    entry.pop("previous_outputs", None)
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
