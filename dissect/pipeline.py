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
_NOT_HASHED_NESTED = (("record", "progress"), ("record", "backend"), ("record", "ray_address"),
                      ("record", "shards"))


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
    _need(manifest, "record", "probe")
    inputs = {
        "clips": manifest.output_hash("probe", artifacts.CLIPS),
        "audio_files": manifest.stages["probe"]["input_hashes"]["audio_files"],
    }
    section = {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        # backend, address and shard count change where it runs, not the results
        "record": {k: v for k, v in OmegaConf.to_container(cfg.record, resolve=True).items()
                   if k not in ("progress", "backend", "ray_address", "shards")},
        "audio": OmegaConf.to_container(cfg.audio, resolve=True),
    }
    return artifacts.run_stage(
        run_dir, "record", section, inputs, [artifacts.EXEMPLARS],
        lambda d: record_clips(d, cfg.model, cfg.record, cfg.audio),
        force=force,
    )


def _need(manifest: artifacts.Manifest, stage: str, upstream: str) -> None:
    if manifest.stages.get(upstream, {}).get("status") != "done":
        raise ValueError(f"{manifest.run_dir}: stage {stage!r} needs a finished {upstream!r} "
                         f"stage; include it in stages=[...]")


def _section(cfg: DictConfig, key: str, drop: tuple[str, ...] = ()) -> dict:
    return {k: v for k, v in OmegaConf.to_container(cfg[key], resolve=True).items()
            if k not in drop}


def _stage_caption(cfg: DictConfig, run_dir: Path, force: bool, progress: bool):
    from dissect.stages.caption import write_captions

    manifest = artifacts.Manifest(run_dir)
    _need(manifest, "caption", "probe")
    inputs = {
        "clips": manifest.output_hash("probe", artifacts.CLIPS),
        "audio_files": manifest.stages["probe"]["input_hashes"]["audio_files"],
    }
    section = {"caption": _section(cfg, "caption"), "audio": _section(cfg, "audio")}
    return artifacts.run_stage(
        run_dir, "caption", section, inputs, [artifacts.CAPTIONS],
        lambda d: write_captions(d, cfg.caption, cfg.audio, progress), force=force)


def _resolved_llm(cfg: DictConfig) -> dict:
    """The llm section as hashed: ``auto`` resolved (installing SmolLM2 later must rerun),
    and fields that do not change outputs (cache_dir, concurrency) left out."""
    llm = _section(cfg, "llm", drop=("cache_dir", "concurrency"))
    if llm["client"] == "auto":
        from dissect.describe.llm.local import smollm2_gguf_path

        try:
            smollm2_gguf_path()
            llm["client"] = "auto:transformers"
        except (FileNotFoundError, ModuleNotFoundError):
            llm["client"] = "auto:rules"
    return llm


def _stage_summarize(cfg: DictConfig, run_dir: Path, force: bool, progress: bool):
    from dissect.stages.describe import write_summaries

    manifest = artifacts.Manifest(run_dir)
    _need(manifest, "summarize", "record")
    _need(manifest, "summarize", "caption")
    inputs = {"exemplars": manifest.output_hash("record", artifacts.EXEMPLARS),
              "captions": manifest.output_hash("caption", artifacts.CAPTIONS)}
    head = manifest.stages["record"].get("info", {}).get("head_layer")
    d = cfg.describe
    section = {"k": d.k, "max_llm_neurons": d.max_llm_neurons,
               "calibration_threshold": d.calibration_threshold, "head_layer": head,
               "llm": _resolved_llm(cfg)}
    return artifacts.run_stage(
        run_dir, "summarize", section, inputs, [artifacts.SUMMARIES],
        lambda r: write_summaries(r, cfg.describe, cfg.llm, head), force=force)


def _stage_concepts(cfg: DictConfig, run_dir: Path, force: bool, progress: bool):
    from dissect.describe.concepts import concept_file
    from dissect.stages.describe import write_concepts

    manifest = artifacts.Manifest(run_dir)
    _need(manifest, "concepts", "summarize")
    record_outputs = manifest.stages["record"]["outputs"]
    inputs = {"summaries": manifest.output_hash("summarize", artifacts.SUMMARIES),
              "captions": manifest.output_hash("caption", artifacts.CAPTIONS),
              "clips": manifest.output_hash("probe", artifacts.CLIPS),
              "activations": artifacts.hash_config(
                  {k: v for k, v in record_outputs.items()
                   if k.startswith(artifacts.ACTIVATIONS_DIR)}),
              "concept_set": artifacts.hash_file(concept_file(cfg.describe.concept_set))}
    section = {"describe": _section(cfg, "describe", drop=("k", "max_llm_neurons",
                                                          "calibration_threshold")),
               "captioners": list(cfg.caption.captioners)}
    if "icl" in cfg.describe.closed_methods or cfg.describe.keyword_llm_filter:
        section["llm"] = _resolved_llm(cfg)
    return artifacts.run_stage(
        run_dir, "concepts", section, inputs, [artifacts.CONCEPTS, artifacts.DESCRIPTIONS],
        lambda r: write_concepts(r, cfg.describe, cfg.llm, cfg.caption), force=force)


def _stage_evaluate(cfg: DictConfig, run_dir: Path, force: bool, progress: bool):
    from dissect.evaluate.scores import evaluate_run

    manifest = artifacts.Manifest(run_dir)
    _need(manifest, "evaluate", "concepts")
    inputs = {s: h for s in ("summarize", "concepts", "caption", "record")
              for h in [artifacts.hash_config(manifest.stages[s]["outputs"])]}
    e = cfg.evaluate
    section = {"evaluate": _section(cfg, "evaluate"), "concept_set": cfg.describe.concept_set,
               "similarity": cfg.describe.similarity}
    return artifacts.run_stage(
        run_dir, "evaluate", section, inputs, [artifacts.SCORES],
        lambda r: _summary_of(evaluate_run(
            r, holdout=e.holdout, seed=e.seed, quantile=e.quantile, method=e.method,
            n_clusters=e.n_clusters, k=e.k, tau=e.tau, concept_set=cfg.describe.concept_set,
            similarity=cfg.describe.similarity)),
        force=force)


def _summary_of(scores: dict) -> dict:
    """A few headline numbers of ``scores.json`` for the manifest."""
    return {k: v for k, v in scores.items() if isinstance(v, (int, float, str))}


def _stage_report(cfg: DictConfig, run_dir: Path, force: bool, progress: bool):
    from dissect.stages.report import write_report

    manifest = artifacts.Manifest(run_dir)
    _need(manifest, "report", "record")
    inputs = {s: artifacts.hash_config(e.get("outputs", {}))
              for s, e in manifest.stages.items() if s != "report" and e.get("status") == "done"}
    for extra in ("prune", "hear"):
        d = run_dir / extra
        if d.is_dir():
            inputs[extra] = artifacts.hash_files(sorted(p for p in d.rglob("*") if p.is_file()))
    section = {"report": _section(cfg, "report")}
    return artifacts.run_stage(
        run_dir, "report", section, inputs, [f"{artifacts.REPORT_DIR}/index.html"],
        lambda r: write_report(r, cfg.report, progress),
        force=force)


# Stage name -> runner, in data-flow order.
STAGES: dict[str, Callable[..., Any]] = {
    "probe": _stage_probe,
    "record": _stage_record,
    "caption": _stage_caption,
    "summarize": _stage_summarize,
    "concepts": _stage_concepts,
    "evaluate": _stage_evaluate,
    "report": _stage_report,
}


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
