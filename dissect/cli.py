"""The one ``dissect`` command.

Usage::

    dissect run [recipe=NAME] [key=value ...]   # run a recipe; prints the run directory last
    dissect --help

Configs are composed by hydra from ``recipes/<NAME>.yaml`` on top of the structured schema in
:mod:`dissect.config`; any field can be overridden, e.g. ``probe.synth.n_clips=100``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from dissect.config import compose, list_recipes, recipes_dir  # noqa: F401  (recipes_dir: the API)

USAGE = """usage: dissect COMMAND [recipe=NAME] [key=value ...]

commands:
  run       run a recipe (default: the embedded offline default); prints the run directory
  recipes   list the recipes, one line each
  report    rebuild the HTML report of a finished run:      dissect report run_dir=DIR
  evaluate  (re)score a finished run -> scores.json:        dissect evaluate run_dir=DIR
  prune     Table 4: forget concepts, keep the rest:  dissect prune run_dir=DIR concept=[X,Y=CL]
  hear      HEAR protocol on a HEAR module:    dissect hear module=M tasks_dir=T [out_dir=O]
            or on a suite, one comparison table (suite.md/csv/json/png in O):
              dissect hear 'modules=[logmel,crepe_tiny,gura_cat(members=crepe_tiny+logmel)]'
                tasks_dir=T out_dir=O [grid=fast]
  fit-head  fit a linear head on a folder probe set's classes (ONNX classifiers); prints the
            head file (FILE, and FILE.json with the fit's figures):
              dissect fit-head out=FILE [model=yamnet source=null root=data/free_sounds
                metadata=metadata.csv label_column=audioset holdout=0.3 holdout_seed=0
                min_clips=5 C=1.0 kind=ovr|softmax]
  show-descriptions  a markdown table of shown descriptions, per layer the neuron with the best
            test AUROC whose first term has min_support fit clips:
              dissect show-descriptions run_dir=DIR [n=10 min_support=15 layers=[A,B]]
  features  train a TopK sparse autoencoder on a recorded layer; its latents are then the
            layer sae:<layer> (model.features=[FILE]); prints the SAE file:
              dissect features train run_dir=DIR layer=conv6 [expansion=4 k=32 seed=0
                epochs=20 out=FILE ...]
  hear-tasks  a labelled folder as a HEAR scene task (folds stratified by label, grouped by
            source), or the offline suite of real-recording tasks built from registry
            packages; prints the task directory (directories):
              dissect hear-tasks folder root=DIR label=COLUMN [metadata=metadata.csv
                group=COLUMN folds=5 out=tasks ...]
              dissect hear-tasks suite=offline [out=tasks data_dir=data tasks=[...]]
  config    every config section, or each field of some: dissect config [SECTION ...]

`dissect COMMAND --help` prints the fields COMMAND reads (run: every section of a run), each
with its meaning, type, default and valid values.

Expected failures print one line and exit with 1 (2: a usage error); set DISSECT_DEBUG=1 to
see the traceback.

examples:
  dissect run
  dissect run probe.synth.n_clips=100 stages=[probe,record]
  dissect run model=whisper_tiny llm=rules
  dissect run recipe=ast_esc50 probe.root=/data/ESC-50-master
"""


def load_run_config(overrides: list[str]):
    """The config of a finished run (``run_dir=DIR``, required) plus ``key=value`` overrides."""
    from omegaconf import OmegaConf

    from dissect.config import RunConfig, upgrade

    run_dir = next((o.split("=", 1)[1] for o in overrides if o.startswith("run_dir=")), None)
    if not run_dir:
        raise ValueError("needs run_dir=<a run directory>")
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no config.yaml)")
    saved = upgrade(OmegaConf.to_container(OmegaConf.load(path)))  # runs of older versions
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.create(saved),
                          OmegaConf.from_dotlist([o for o in overrides
                                                  if not o.startswith("run_dir=")]))
    cfg.run_dir = str(run_dir)
    return cfg


def command_config(schema, overrides: list[str], optional: tuple[str, ...] = ()):
    """A structured command config (PruneConfig, HearConfig) from ``key=value`` overrides;
    missing required fields raise naming the field (``optional`` ones may stay missing: the
    command checks them itself)."""
    from omegaconf import OmegaConf

    from dissect.fields import check

    cfg = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.from_dotlist(overrides))
    missing = sorted(set(OmegaConf.missing_keys(cfg)) - set(optional))
    if missing:
        raise ValueError(f"missing required setting(s): {', '.join(m + '=...' for m in missing)}")
    if dataclasses.is_dataclass(schema):  # valid values, e.g. points=0 is refused naming it
        check(schema, cfg)
    return cfg


def _rerun_stage(stage: str, overrides: list[str]) -> Path:
    from dissect import pipeline

    cfg = load_run_config(overrides)
    cfg.stages = [stage]
    cfg.force = [stage]
    return pipeline.run(cfg)


def prune_specs(c) -> list:
    """The concepts of a PruneConfig as ConceptSpecs: ``concept`` is one NAME[=CLASS,...] or a
    list of them; ``concepts``, ``target`` and ``terms`` refine a single NAME."""
    from dissect.pruning.table4 import parse_concept

    raw = c.concept
    items = [raw] if isinstance(raw, str) else list(raw)
    specs = [parse_concept(str(x)) for x in items]
    if not specs:
        raise ValueError("concept=... names no concept")
    for s in specs:
        s.terms = list(c.terms)
    if len(specs) == 1:
        if c.concepts and not specs[0].classes:
            specs[0].classes = list(c.concepts)
        specs[0].target = c.target
    elif c.target or c.concepts:
        raise ValueError("target= and concepts= refine a single concept; with several, give "
                         "each as NAME=CLASS[,CLASS...]")
    return specs


def _prune(overrides: list[str]) -> Path:
    from omegaconf import OmegaConf

    from dissect.config import PruneConfig
    from dissect.pruning.table4 import prune_table

    c = command_config(PruneConfig, overrides)
    if c.crop is not None and len(c.crop) != 2:
        raise ValueError(f"crop must be [start_s, seconds], got {list(c.crop)}")
    table = prune_table(c.run_dir, prune_specs(c), list(c.methods) or [c.method],
                        top_k=c.top_k, evidence_top_k=c.evidence_top_k, threshold=c.threshold,
                        layers=list(c.layers) or None, max_neurons=c.max_neurons,
                        target_label=c.target_label, eval_on=c.eval, holdout=c.holdout,
                        seed=c.seed, seeds=list(c.seeds), points=c.points, spacing=c.spacing,
                        max_rest_acc_drop=c.max_rest_acc_drop,
                        select_fraction=c.select_fraction, split_seed=c.split_seed,
                        fixed_size=c.fixed_size, bootstrap=c.bootstrap,
                        bootstrap_seed=c.bootstrap_seed, name=c.name,
                        crop=tuple(c.crop) if c.crop else None,
                        model_options=OmegaConf.to_container(c.model_options, resolve=True))
    print(table["markdown"], file=sys.stderr)
    return Path(c.run_dir) / "prune" / f"{c.name}.json"


def _hear(overrides: list[str]) -> Path:
    from dissect.config import HearConfig, hear_is_suite
    from dissect.hear.evaluate import run_hear

    c = command_config(HearConfig, overrides, optional=("module",))
    if hear_is_suite(c):
        return _hear_suite(c)
    from omegaconf import OmegaConf

    rows = run_hear(c.module, c.tasks_dir, c.out_dir, c.model_file_path, c.grid, list(c.seeds),
                    tasks=list(c.tasks) or None, device=c.device, grid_points=c.grid_points,
                    standardize=c.standardize, per_fold_search=c.per_fold_search,
                    shuffle=c.shuffle, threads=c.threads, probe_device=c.probe_device,
                    model_options=OmegaConf.to_container(c.model_options, resolve=True))
    for r in rows:
        mean = "nan" if r["mean"] is None else f"{r['mean']:.4f}"
        std = "nan" if r["std"] is None else f"{r['std']:.4f}"
        nan = f", {r['n_nan']} nan" if r["n_nan"] else ""
        print(f"{r['task']:<24} {r['score']:<12} {mean} +- {std} "
              f"(n={r['n']}{nan}, over {r['over']}; grid {c.grid})", file=sys.stderr)
    return Path(c.out_dir)


def _hear_suite(c) -> Path:
    """``dissect hear modules=[...]``: every module, then the comparison table (printed)."""
    from dissect.hear.suite import run_suite

    suite = run_suite(list(c.modules), c.tasks_dir, c.out_dir, grid=c.grid, seeds=list(c.seeds),
                      grid_points=c.grid_points, tasks=list(c.tasks) or None,
                      per_fold_search=c.per_fold_search, shuffle=c.shuffle,
                      standardize=c.standardize, device=c.device, probe_device=c.probe_device,
                      threads=c.threads)
    print(suite["markdown"], file=sys.stderr)
    return Path(c.out_dir)


def _fit_head(overrides: list[str]) -> Path:
    from omegaconf import OmegaConf

    from dissect.recording.head_fit import FitHeadConfig, fit_probe_head

    c = OmegaConf.to_object(command_config(FitHeadConfig, overrides))
    head, out = fit_probe_head(c)
    i = head.info
    print(f"[fit-head] {c.kind}: {len(head.classes)} classes, {i['clips']} clips, train "
          f"accuracy {i['train_accuracy']:.3f}, held-out accuracy {i['heldout_accuracy']:.3f} "
          f"on {i['heldout_clips']} clips -> {out}", file=sys.stderr)
    return out


def _features(overrides: list[str]) -> Path:
    """``dissect features train key=value ...``."""
    from omegaconf import OmegaConf

    if not overrides or overrides[0] != "train":
        raise ValueError("usage: dissect features train run_dir=DIR layer=LAYER [key=value ...] "
                         "(dissect features --help lists the keys)")
    from dissect.features.train import FeaturesTrainConfig, summary_line, train_run

    c = OmegaConf.to_object(command_config(FeaturesTrainConfig, overrides[1:]))
    trained = train_run(c)
    print(summary_line(trained), file=sys.stderr)
    return trained.path


def _hear_tasks(overrides: list[str]) -> Path:
    """``dissect hear-tasks folder key=value ...`` and ``dissect hear-tasks suite=offline``."""
    from omegaconf import OmegaConf

    if overrides and overrides[0].startswith("suite="):
        from dissect.hear.tasks.suite import SuiteConfig, write_offline_suite

        s = OmegaConf.to_object(command_config(SuiteConfig, overrides))
        tasks = write_offline_suite(s, log=lambda line: print(line, file=sys.stderr))
        for name, task in tasks.items():
            print(f"[hear-tasks] {name}: {len(task.vocabulary)} classes, "
                  f"{sum(len(task.labels(x)) for x in task.splits)} files in "
                  f"{len(task.splits)} folds -> {task.root}", file=sys.stderr)
        return Path(s.out)
    if not overrides or overrides[0] != "folder":
        raise ValueError("usage: dissect hear-tasks folder root=DIR label=COLUMN [key=value ...] "
                         "| dissect hear-tasks suite=offline [key=value ...] "
                         "(dissect hear-tasks --help lists the keys)")
    from dissect.hear.tasks.folder import FolderTaskConfig, write_folder_task

    c = OmegaConf.to_object(command_config(FolderTaskConfig, overrides[1:]))
    task = write_folder_task(c, progress=lambda line: print(line, file=sys.stderr))
    extra = task.metadata.get("dissect", {})
    print(f"[hear-tasks] {task.root.name}: {len(task.vocabulary)} classes, "
          f"{sum(len(task.labels(s)) for s in task.splits)} files in {len(task.splits)} folds; "
          f"left out: classes {extra.get('dropped_classes')}, "
          f"{len(extra.get('missing_files') or [])} missing files, "
          f"{extra.get('unlabelled')} unlabelled rows", file=sys.stderr)
    return task.root


def _show_descriptions(overrides: list[str]) -> None:
    from omegaconf import OmegaConf

    from dissect.report.shown import ShowDescriptionsConfig, shown_descriptions_table

    print(shown_descriptions_table(
        OmegaConf.to_object(command_config(ShowDescriptionsConfig, overrides))))


def _error_text(exc: BaseException) -> str:
    """The message, with its cause's first line when hydra wraps it ("Error merging override
    record.k=abc: Value 'abc' of type 'str' could not be converted to Integer"), on one line."""
    text = str(exc)
    cause = exc.__cause__
    if cause is not None and str(cause).strip():
        first = str(cause).strip().splitlines()[0]
        if first not in text:
            text = f"{text}: {first}"
    return _one_line(text)


def _one_line(text: object) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _failure(exc: Exception) -> tuple[int, str] | None:
    """``(exit code, one line for stderr)`` of an expected failure, None for a bug (which keeps
    its traceback). 2: a usage error (bad config, unknown recipe, a missing input); 1: the work
    failed (the run directory refused, a disk full or not writable, a corrupt file, too many
    skipped clips). An OSError's line names its path(s) and the system's reason, e.g.
    ``[Errno 28] No space left on device: 'runs/x/stats/conv1.safetensors'``."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from safetensors import SafetensorError

    from dissect.artifacts import RunDirRefused

    if isinstance(exc, RunDirRefused):
        return 1, f"dissect: refused: {_error_text(exc)}"
    if isinstance(exc, (HydraException, OmegaConfBaseException, ValueError,
                        FileNotFoundError)):
        return 2, f"dissect: error: {_error_text(exc)}"
    if isinstance(exc, OSError):  # disk full, permission denied, a file where a folder goes
        return 1, f"dissect: failed: {_one_line(exc)}"
    if isinstance(exc, SafetensorError):  # one that no reader or writer turned into OSError
        return 1, f"dissect: failed: safetensors: {_one_line(exc)}"
    if isinstance(exc, RuntimeError):  # e.g. TooManySkipsError: a clear message
        return 1, f"dissect: failed: {_one_line(exc)}"
    return None


#: The config sections each command reads (``dissect COMMAND --help``).
COMMAND_SECTIONS = {"run": None, "report": ("report",), "evaluate": ("evaluate",),
                    "prune": ("prune",), "hear": ("hear",), "fit-head": ("fit_head",),
                    "show-descriptions": ("show_descriptions",),
                    "features": ("features_train",),
                    "hear-tasks": ("hear_tasks_folder", "hear_tasks_suite")}


def _config_help(cmd: str, names: list[str]) -> int:
    """``dissect config [SECTION ...]`` and ``dissect COMMAND --help [SECTION ...]``: each
    field's meaning, type, default and valid values (from the config classes themselves)."""
    from dissect.config import section_help, sections
    from dissect.fields import summary

    known = sections()
    if cmd == "config" and not names:
        width = max(map(len, known))
        print("config sections (dissect config SECTION prints its fields):")
        for name, cls in known.items():
            print(f"  {name:<{width}}  {summary(cls)}")
        return 0
    if cmd != "config" and cmd not in COMMAND_SECTIONS:
        print(f"dissect: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    if not names:
        commands = {s for v in COMMAND_SECTIONS.values() for s in v or ()} - {"report", "evaluate"}
        names = list(COMMAND_SECTIONS[cmd] or [n for n in known if n not in commands])
        if cmd == "run":
            print("usage: dissect run [recipe=NAME] [SECTION.FIELD=VALUE ...]\n")
    for i, name in enumerate(names):
        try:
            print(("\n" if i else "") + section_help(name))
        except KeyError as exc:
            print(f"dissect: error: {exc.args[0]}", file=sys.stderr)
            return 2
    return 0


#: Set to 1 to see the full traceback of an expected failure instead of its one line.
DEBUG_ENV = "DISSECT_DEBUG"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if ((cmd, rest[:1]) in (("features", ["train"]), ("hear-tasks", ["folder"]))
            and rest[1:2] in (["-h"], ["--help"])):
        rest = rest[1:]  # dissect features train --help, dissect hear-tasks folder --help
    if cmd == "config" or (rest and rest[0] in ("-h", "--help")):
        return _config_help(cmd, rest if cmd == "config" else rest[1:])
    if cmd == "recipes":
        rows = list_recipes()
        width = max(len(n) for n, _ in rows)
        for name, desc in rows:
            print(f"{name:<{width}}  {desc}")
        return 0
    commands = {
        "run": lambda: pipeline.run(compose(rest)),
        "report": lambda: _rerun_stage("report", rest),
        "evaluate": lambda: _rerun_stage("evaluate", rest),
        "prune": lambda: _prune(rest),
        "hear": lambda: _hear(rest),
        "fit-head": lambda: _fit_head(rest),
        "show-descriptions": lambda: _show_descriptions(rest),
        "features": lambda: _features(rest),
        "hear-tasks": lambda: _hear_tasks(rest),
    }
    if cmd not in commands:
        print(f"dissect: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from dissect import pipeline

    try:
        run_dir = commands[cmd]()
    except Exception as exc:
        failure = _failure(exc)
        if failure is None or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print(failure[1], file=sys.stderr)
        return failure[0]
    if run_dir is not None:  # show-descriptions prints its table instead
        print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
