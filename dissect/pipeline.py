"""`dissect run`: resolve the run directory, write ``config.yaml``, run the stages in order.

Every stage is declared as data (:class:`Stage`): the stages it needs, what it reads (upstream
outputs, input hashes, or a function of the run), which config sections and fields enter its
hash (fields declared ``option(hashed=False)`` are left out everywhere), what it writes, and the
function that does the work. :meth:`Stage.__call__` derives the input hashes and the hashed config
section from the declaration and hands them to :func:`dissect.artifacts.run_stage`, which skips a
stage whose hashes and outputs are unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dissect import artifacts

# Config keys that choose *what to run* or *where*, not what the results are: they do not enter
# the run-directory hash nor any stage's hash, so `stages=[probe]` now and the full pipeline
# later share a directory. Fields inside sections say so themselves (``option(hashed=False)``).
_NOT_HASHED = ("runs_dir", "run_dir", "stages", "force")


def hashed_value(path: str, value: Any) -> Any:
    """The plain value of config section ``path`` (a dotted section of
    :func:`dissect.config.sections`) with only its hashed fields, nested sections likewise."""
    from dissect.config import sections
    from dissect.fields import hashed

    known = sections()
    if path not in known or not isinstance(value, dict):
        return value
    keep = set(hashed(known[path]))
    return {k: hashed_value(f"{path}.{k}", v) for k, v in value.items() if k in keep}


# --------------------------------------------------------------------------- declarations


@dataclass
class StageContext:
    """What a stage's declaration functions see: the config, the run directory, the manifest
    (read once, when first asked for), and ``state`` shared between its inputs and its run."""

    cfg: DictConfig
    run_dir: Path
    progress: bool = True
    state: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def manifest(self) -> artifacts.Manifest:
        return artifacts.Manifest(self.run_dir)


@dataclass(frozen=True)
class Output:
    """An input: the recorded hash of ``artifact``, an output of the finished stage ``stage``."""

    stage: str
    artifact: str


@dataclass(frozen=True)
class InputOf:
    """An input: the input hash ``key`` recorded by the finished stage ``stage``."""

    stage: str
    key: str


@dataclass(frozen=True)
class Section:
    """A config value: the whole section ``name`` (resolved), with the fields its config class
    declares as hashed (:func:`dissect.fields.option`), nested sections likewise."""

    name: str

    def value(self, cfg: DictConfig) -> dict[str, Any]:
        return hashed_value(self.name, _plain(OmegaConf.select(cfg, self.name,
                                                               throw_on_missing=True)))


#: A config value: a dotted config path (``"summarize.k"``), a :class:`Section`, or a function of
#: the context (returning :data:`OMIT` leaves the key out).
ConfigValue = str | Section | Callable[[StageContext], Any]
#: An input: an :class:`Output`, an :class:`InputOf`, or a function of the context.
InputValue = Output | InputOf | Callable[[StageContext], str]
OMIT = object()


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def config_value(ctx: StageContext, spec: ConfigValue) -> Any:
    """The value a :data:`ConfigValue` stands for."""
    if isinstance(spec, Section):
        return spec.value(ctx.cfg)
    if isinstance(spec, str):
        return _plain(OmegaConf.select(ctx.cfg, spec, throw_on_missing=True))
    return spec(ctx)


def input_value(ctx: StageContext, spec: InputValue) -> str:
    """The hash an :data:`InputValue` stands for."""
    if isinstance(spec, Output):
        return ctx.manifest.output_hash(spec.stage, spec.artifact)
    if isinstance(spec, InputOf):
        return ctx.manifest.stages[spec.stage]["input_hashes"][spec.key]
    return spec(ctx)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage, declared.

    Attributes:
        name: the stage (manifest key, ``stages=[...]`` entry).
        needs: upstream stages that must have finished (checked before anything else).
        inputs: input name -> :data:`InputValue`, or one function of the context returning the
            whole input-hash dict (when the names depend on the run).
        config: hashed key -> :data:`ConfigValue`, in the order they are hashed.
        outputs: artifacts (relative to the run directory) the stage must write.
        run: ``run(ctx) -> info`` does the work (``info`` goes into the manifest).
    """

    name: str
    needs: tuple[str, ...]
    inputs: Mapping[str, InputValue] | Callable[[StageContext], dict[str, str]]
    config: Mapping[str, ConfigValue]
    outputs: tuple[str, ...]
    run: Callable[[StageContext], Mapping[str, Any] | None]

    def input_hashes(self, ctx: StageContext) -> dict[str, str]:
        if callable(self.inputs):
            return self.inputs(ctx)
        return {k: input_value(ctx, v) for k, v in self.inputs.items()}

    def section(self, ctx: StageContext) -> dict[str, Any]:
        """The stage's hashed config section."""
        out = {k: config_value(ctx, v) for k, v in self.config.items()}
        return {k: v for k, v in out.items() if v is not OMIT}

    def __call__(self, cfg: DictConfig, run_dir: Path, force: bool = False,
                 progress: bool = True) -> artifacts.StageResult:
        ctx = StageContext(cfg, Path(run_dir), progress)
        for upstream in self.needs:
            _need(ctx.manifest, self.name, upstream)
        inputs = self.input_hashes(ctx)
        return artifacts.run_stage(run_dir, self.name, self.section(ctx), inputs,
                                   list(self.outputs), lambda _: self.run(ctx), force=force)


def _need(manifest: artifacts.Manifest, stage: str, upstream: str) -> None:
    if manifest.stages.get(upstream, {}).get("status") != "done":
        raise ValueError(f"{manifest.run_dir}: stage {stage!r} needs a finished {upstream!r} "
                         f"stage; include it in stages=[...]")


# --------------------------------------------------------------------------- the stages


def _probe_inputs(ctx: StageContext) -> dict[str, str]:
    from dissect.datasets import build_probe_set
    from dissect.stages.probe import input_hashes

    probe = build_probe_set(ctx.cfg.probe, progress=ctx.progress)
    ctx.state["heldout"] = None
    if ctx.cfg.probe.holdout:  # probe.holdout: these clips are never dissected
        probe, ctx.state["heldout"] = probe.split_holdout(
            float(ctx.cfg.probe.holdout), int(ctx.cfg.probe.holdout_seed))
    ctx.state["probe"] = probe
    return input_hashes(ctx.state["probe"])


def _probe_run(ctx: StageContext):
    from dissect.stages.probe import write_clips

    cfg = ctx.cfg
    return write_clips(ctx.run_dir, ctx.state["probe"], cfg.audio, cfg.probe.max_skip_fraction,
                       ctx.progress, heldout=ctx.state["heldout"])


def _record_run(ctx: StageContext):
    from dissect.stages.record import record_clips

    return record_clips(ctx.run_dir, ctx.cfg.model, ctx.cfg.record, ctx.cfg.audio)


def _captioner_versions(ctx: StageContext) -> dict[str, int]:
    """Each captioner's ``VERSION`` (a change to what it writes must re-caption)."""
    import importlib

    out = {}
    for name in ctx.cfg.caption.captioners:
        try:
            mod = importlib.import_module(f"dissect.description.captioners.{name}")
        except ImportError:  # not a built-in captioner module: the config decides
            continue
        out[str(name)] = int(getattr(mod, "VERSION", 0))
    return out


def _caption_run(ctx: StageContext):
    from dissect.stages.caption import write_captions

    return write_captions(ctx.run_dir, ctx.cfg.caption, ctx.cfg.audio, ctx.progress)


def resolved_llm(cfg: DictConfig) -> dict:
    """The llm section as hashed: ``auto`` resolved (installing SmolLM2 later must rerun) as
    ``auto:<kind>`` by :func:`dissect.description.llm.resolve_kind`, and fields that do not change
    outputs (cache_dir, concurrency, ...) left out."""
    from dissect.description.llm import resolve_kind

    llm = Section("llm").value(cfg)
    if llm["client"] == "auto":
        llm["client"] = "auto:" + resolve_kind("auto")
    return llm


def _head_layer(ctx: StageContext) -> str | None:
    return ctx.manifest.stages["record"].get("info", {}).get("head_layer")


def _summarize_run(ctx: StageContext):
    from dissect.stages.describe import write_summaries

    cfg = ctx.cfg
    return write_summaries(ctx.run_dir, cfg.summarize, cfg.llm, _head_layer(ctx),
                           cfg.explain.method)


def _summarize_llm(ctx: StageContext) -> Any:
    """The LLM writes AND's summaries only under ``explain.method=and``
    (:func:`dissect.description.neurons.summary_client`)."""
    return resolved_llm(ctx.cfg) if ctx.cfg.explain.method == "and" else OMIT


def _activations(ctx: StageContext) -> str:
    outputs = ctx.manifest.stages["record"]["outputs"]
    return artifacts.hash_config({k: v for k, v in outputs.items()
                                  if k.startswith(artifacts.ACTIVATIONS_DIR)})


def _model_files(ctx: StageContext) -> Any:
    """sha256 of every file a ``model.options`` value names (a fitted head, a class map) and
    of each SAE file of ``model.features``, so
    a file edited in place records again; :data:`OMIT` when there is none. ``model.source`` is
    hashed by its name only (checkpoints are large, Hugging Face ids are not files)."""
    opts = _plain(ctx.cfg.model.get("options") or {})
    out = {}
    for key, value in sorted(opts.items()):
        if isinstance(value, str) and value and Path(value).expanduser().is_file():
            out[key] = artifacts.hash_file(Path(value).expanduser())
    for path in _plain(ctx.cfg.model.get("features") or []):  # SAE files (sae:<layer> sites)
        p = Path(str(path)).expanduser()
        if p.is_file():
            out[f"features:{path}"] = artifacts.hash_file(p)
    return out or OMIT


def _concept_set(ctx: StageContext) -> str:
    from dissect.description.concepts import concept_file

    return artifacts.hash_file(concept_file(ctx.cfg.concepts.concept_set))


def _concepts_llm(ctx: StageContext) -> Any:
    c = ctx.cfg.concepts
    return resolved_llm(ctx.cfg) if "icl" in c.closed_methods or c.keyword_llm_filter else OMIT


def _concepts_run(ctx: StageContext):
    from dissect.stages.describe import write_concepts

    cfg = ctx.cfg
    return write_concepts(ctx.run_dir, cfg.concepts, cfg.explain, cfg.llm, cfg.caption)


def _explain_llm(ctx: StageContext) -> Any:
    return resolved_llm(ctx.cfg) if ctx.cfg.explain.method == "evidence" else OMIT


def _explain_version() -> int:
    from dissect.stages.explain import VERSION

    return VERSION


def _explain_run(ctx: StageContext):
    from dissect.stages.explain import write_explanations

    cfg = ctx.cfg
    return write_explanations(ctx.run_dir, cfg.explain, cfg.llm, cfg.caption, ctx.progress,
                              max_llm_neurons=int(cfg.summarize.max_llm_neurons),
                              negation_window=int(cfg.concepts.negation_window))


def _stage_outputs(*stages: str) -> Callable[[StageContext], dict[str, str]]:
    """Inputs: per stage, the hash of all its recorded outputs."""
    return lambda ctx: {s: artifacts.hash_config(ctx.manifest.stages[s]["outputs"])
                        for s in stages}


def _evaluate_run(ctx: StageContext):
    from dissect.evaluation.scores import evaluate_run

    e, d = ctx.cfg.evaluate, ctx.cfg.concepts
    return _summary_of(evaluate_run(
        ctx.run_dir, holdout=e.holdout, seed=e.seed, quantile=e.quantile, method=e.method,
        n_clusters=e.n_clusters, k=e.k, tau=e.tau, concept_set=d.concept_set,
        similarity=d.similarity,
        label_columns=list(e.head_label_columns) if e.head_label_columns else None,
        map_threshold=e.head_map_threshold))


def _summary_of(scores: dict) -> dict:
    """A few headline numbers of ``scores.json`` for the manifest."""
    return {k: v for k, v in scores.items() if isinstance(v, (int, float, str))}


def _report_inputs(ctx: StageContext) -> dict[str, str]:
    """Every finished stage's outputs, and the files of ``prune/`` and ``hear/`` when present."""
    inputs = {s: artifacts.hash_config(e.get("outputs", {}))
              for s, e in ctx.manifest.stages.items()
              if s != "report" and e.get("status") == "done"}
    for extra in ("prune", "hear"):
        d = ctx.run_dir / extra
        if d.is_dir():
            inputs[extra] = artifacts.hash_files(sorted(p for p in d.rglob("*") if p.is_file()))
    return inputs


def _report_run(ctx: StageContext):
    from dissect.stages.report import write_report

    return write_report(ctx.run_dir, ctx.cfg.report, ctx.progress)


_PROBE_AUDIO = {"clips": Output("probe", artifacts.CLIPS),
                "audio_files": InputOf("probe", "audio_files")}

#: The stages, in data-flow order.
STAGE_LIST: tuple[Stage, ...] = (
    Stage("probe", needs=(), inputs=_probe_inputs,
          config={"probe": Section("probe"), "audio": Section("audio")},
          outputs=(artifacts.CLIPS, artifacts.SKIPS, artifacts.HELDOUT), run=_probe_run),
    Stage("record", needs=("probe",), inputs=_PROBE_AUDIO,
          config={"model": Section("model"), "record": Section("record"),
                  "audio": Section("audio"), "model_files": _model_files},
          outputs=(artifacts.EXEMPLARS,), run=_record_run),
    Stage("caption", needs=("probe",), inputs=_PROBE_AUDIO,
          config={"caption": Section("caption"), "audio": Section("audio"),
                  "captioner_versions": _captioner_versions},
          outputs=(artifacts.CAPTIONS,), run=_caption_run),
    Stage("summarize", needs=("record", "caption"),
          inputs={"exemplars": Output("record", artifacts.EXEMPLARS),
                  "captions": Output("caption", artifacts.CAPTIONS)},
          config={"summarize": Section("summarize"), "head_layer": _head_layer,
                  "method": "explain.method", "llm": _summarize_llm},
          outputs=(artifacts.SUMMARIES,), run=_summarize_run),
    Stage("concepts", needs=("summarize",),
          inputs={"summaries": Output("summarize", artifacts.SUMMARIES),
                  "captions": Output("caption", artifacts.CAPTIONS),
                  "clips": Output("probe", artifacts.CLIPS),
                  "activations": _activations, "concept_set": _concept_set},
          # the closed-set label is chosen on the fit clips of the explain split
          config={"concepts": Section("concepts"), "splits": "explain.splits",
                  "split_seed": "explain.split_seed", "captioners": "caption.captioners",
                  "llm": _concepts_llm},
          outputs=(artifacts.CONCEPTS,), run=_concepts_run),
    Stage("explain", needs=("concepts",),
          inputs=_stage_outputs("summarize", "concepts", "caption", "record"),
          config={"explain": Section("explain"),
                  "max_llm_neurons": "summarize.max_llm_neurons",
                  "negation_window": "concepts.negation_window",
                  "captioners": "caption.captioners", "llm": _explain_llm,
                  "version": lambda ctx: _explain_version()},
          outputs=(artifacts.EVIDENCE, artifacts.EXPLANATIONS, artifacts.DESCRIPTIONS),
          run=_explain_run),
    Stage("evaluate", needs=("explain",),
          inputs=_stage_outputs("summarize", "concepts", "caption", "record", "explain"),
          config={"evaluate": Section("evaluate"), "concept_set": "concepts.concept_set",
                  "similarity": "concepts.similarity"},
          outputs=(artifacts.SCORES,), run=_evaluate_run),
    Stage("report", needs=("record",), inputs=_report_inputs,
          config={"report": Section("report")},
          outputs=(f"{artifacts.REPORT_DIR}/index.html",), run=_report_run),
)

#: Stage name -> stage (callable as ``STAGES[name](cfg, run_dir, force, progress)``).
STAGES: dict[str, Stage] = {s.name: s for s in STAGE_LIST}


# --------------------------------------------------------------------------- validation


def _choices(cfg: DictConfig) -> list[tuple[str, str, Any, Any]]:
    """``(stage, config key, value, registry)`` of every registry-backed config choice."""
    from dissect.datasets import PROBE_LAYOUTS
    from dissect.description.captioners.combine import CAPTIONERS
    from dissect.description.concepts import CLOSED_METHODS
    from dissect.description.llm import LLM_CLIENTS
    from dissect.description.similarity import SIMILARITIES
    from dissect.models.registry import ADAPTERS

    out = [("probe", "probe.layout", cfg.probe.layout, PROBE_LAYOUTS),
           ("record", "model.name", cfg.model.name, ADAPTERS)]
    out += [("caption", "caption.captioners", c, CAPTIONERS) for c in cfg.caption.captioners]
    if cfg.llm.client != "auto":
        out += [(s, "llm.client", cfg.llm.client, LLM_CLIENTS) for s in ("summarize", "concepts")]
    out += [("concepts", "concepts.closed_methods", m, CLOSED_METHODS)
            for m in cfg.concepts.closed_methods]
    out += [(s, "concepts.similarity", cfg.concepts.similarity, SIMILARITIES)
            for s in ("concepts", "evaluate")]
    out += [("evaluate", "evaluate.method", cfg.evaluate.method, CLOSED_METHODS)]
    return out


def validate(cfg: DictConfig) -> None:
    """Check, before any stage runs, the stage names and every registry-backed choice that a
    stage in ``cfg.stages`` uses.

    Also checks every numeric field against its valid range
    (:func:`dissect.config.check_run_config`: ``record.k`` >= 1, ...).

    Raises:
        ValueError: the first bad value, e.g. ``concepts.similarity=bogus: unknown similarity
            'bogus'; valid: cos, cos_cubed, ...`` (:class:`~dissect.registry.UnknownNameError`
            messages list the valid names), or ``record.k=0: must be an integer >= 1``.
    """
    from dissect.config import check_run_config

    check_run_config(cfg)
    unknown = [s for s in list(cfg.stages) + list(cfg.force) if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; available: {', '.join(STAGES)}")
    for stage, key, value, registry in _choices(cfg):
        if stage in cfg.stages and value not in registry:
            extra = "auto, " if key == "llm.client" else ""
            msg = str(registry.unknown(value)).replace("; valid: ", "; valid: " + extra, 1)
            raise ValueError(f"{key}={value}: {msg}")


# --------------------------------------------------------------------------- running


def resolve_run_dir(cfg: DictConfig) -> Path:
    """``cfg.run_dir`` if given, else ``<runs_dir>/<recipe>-<hash of result-relevant config>``."""
    if cfg.run_dir:
        return Path(cfg.run_dir)
    plain = OmegaConf.to_container(cfg, resolve=True)
    for k in _NOT_HASHED:
        plain.pop(k, None)
    plain = {k: hashed_value(k, v) for k, v in plain.items()}
    return artifacts.run_dir_for(cfg.runs_dir, cfg.recipe, plain)


def run(cfg: DictConfig, progress: bool = True) -> Path:
    """Run the configured stages; return the run directory.

    The run directory must be new, empty, or one dissect made (its ``manifest.json``):
    dissect overwrites and deletes files in it, so any other directory is refused before
    anything is written (:func:`~dissect.artifacts.claim_run_dir`).

    Raises:
        ValueError: an unknown stage name or registry choice (the message lists the valid
            ones), or a bad value (:class:`~dissect.config.ConfigValueError`).
        RunDirRefused: the run directory is the filesystem root, the home directory, a file,
            or a non-empty directory dissect did not make.
    """
    validate(cfg)
    run_dir = artifacts.claim_run_dir(resolve_run_dir(cfg))
    print(f"run directory: {run_dir}", file=sys.stderr)
    with artifacts.run_lock(run_dir):
        artifacts.mark_run_dir(run_dir)
        # unresolved: an ${oc.env:...} interpolation (a key, a token) is never written to disk
        artifacts.write_text(run_dir / artifacts.CONFIG, OmegaConf.to_yaml(cfg, resolve=False))
        for stage in STAGE_LIST:  # data-flow order, whatever order the user listed them in
            if stage.name in cfg.stages:
                stage(cfg, run_dir, stage.name in cfg.force, progress)
    return run_dir
