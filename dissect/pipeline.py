"""`dissect run`: resolve the run directory, write ``config.yaml``, run the stages in order."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dissect import artifacts

# Config keys that choose *what to run* or *where*, not what the results are: they do not enter
# the run-directory hash, so `stages=[probe]` now and the full pipeline later share a directory.
_NOT_HASHED = ("runs_dir", "run_dir", "stages", "force")
_NOT_HASHED_NESTED = (("record", "progress"),)


def _stage_probe(cfg: DictConfig, run_dir: Path, force: bool, progress: bool):
    from dissect.datasets import build_probe_set
    from dissect.stages.probe import input_hashes, write_clips

    probe = build_probe_set(cfg.probe, progress=progress)
    section = {"probe": OmegaConf.to_container(cfg.probe, resolve=True),
               "audio": OmegaConf.to_container(cfg.audio, resolve=True)}
    return artifacts.run_stage(
        run_dir,
        "probe",
        section,
        input_hashes(probe),
        [artifacts.CLIPS, artifacts.SKIPS],
        lambda d: write_clips(d, probe, cfg.audio, cfg.probe.max_skip_fraction, progress),
        force=force,
    )


def _stage_record(cfg: DictConfig, run_dir: Path, force: bool, progress: bool):
    from dissect.stages.record import record_clips

    manifest = artifacts.Manifest(run_dir)
    if manifest.stages.get("probe", {}).get("status") != "done":
        raise ValueError(f"{run_dir}: stage 'record' needs a finished 'probe' stage; "
                         "run with stages=[probe,record]")
    inputs = {
        "clips": manifest.output_hash("probe", artifacts.CLIPS),
        "audio_files": manifest.stages["probe"]["input_hashes"]["audio_files"],
    }
    section = {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "record": {k: v for k, v in OmegaConf.to_container(cfg.record, resolve=True).items()
                   if k != "progress"},
        "audio": OmegaConf.to_container(cfg.audio, resolve=True),
    }
    return artifacts.run_stage(
        run_dir, "record", section, inputs, [artifacts.EXEMPLARS],
        lambda d: record_clips(d, cfg.model, cfg.record, cfg.audio),
        force=force,
    )


# Stage name -> runner, in data-flow order. Later issues add describe, evaluate, report, ...
STAGES: dict[str, Callable[..., Any]] = {"probe": _stage_probe, "record": _stage_record}


def resolve_run_dir(cfg: DictConfig) -> Path:
    """``cfg.run_dir`` if given, else ``<runs_dir>/<recipe>-<hash of result-relevant config>``."""
    if cfg.run_dir:
        return Path(cfg.run_dir)
    plain = OmegaConf.to_container(cfg, resolve=True)
    for k in _NOT_HASHED:
        plain.pop(k, None)
    for outer, inner in _NOT_HASHED_NESTED:
        plain.get(outer, {}).pop(inner, None)
    return artifacts.run_dir_for(cfg.runs_dir, cfg.recipe, plain)


def run(cfg: DictConfig, progress: bool = True) -> Path:
    """Run the configured stages; return the run directory.

    Raises:
        ValueError: an unknown stage name (the message lists the available ones).
    """
    unknown = [s for s in list(cfg.stages) + list(cfg.force) if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; available: {', '.join(STAGES)}")
    run_dir = resolve_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    artifacts.write_text(run_dir / artifacts.CONFIG, OmegaConf.to_yaml(cfg, resolve=True))
    print(f"run directory: {run_dir}", file=sys.stderr)
    for name in STAGES:  # data-flow order, whatever order the user listed them in
        if name in cfg.stages:
            STAGES[name](cfg, run_dir, name in cfg.force, progress)
    return run_dir
