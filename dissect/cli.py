"""The one ``dissect`` command.

Usage::

    dissect run [recipe=NAME] [key=value ...]   # run a recipe; prints the run directory last
    dissect --help

Configs are composed by hydra from ``recipes/<NAME>.yaml`` on top of the structured schema in
:mod:`dissect.config`; any field can be overridden, e.g. ``probe.synth.n_clips=100``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

USAGE = """usage: dissect COMMAND [recipe=NAME] [key=value ...]

commands:
  run       run a recipe (default: the embedded offline default); prints the run directory
  recipes   list the recipes, one line each

examples:
  dissect run
  dissect run probe.synth.n_clips=100 stages=[probe,record]
  dissect run model=whisper_tiny llm=rules
  dissect run recipe=ast_esc50 probe.root=/data/ESC-50-master
"""


def recipes_dir() -> Path:
    """Where recipes live: $DISSECT_RECIPES, the installed copy, or the source tree's recipes/."""
    env = os.environ.get("DISSECT_RECIPES")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / "_recipes", here.parent / "recipes"]
    for c in candidates:
        if c.is_dir():
            return c
    looked = [str(c) for c in candidates]
    raise FileNotFoundError(f"no recipes directory found (looked in {looked})")


def compose(overrides: list[str]):
    """Compose the run config from ``recipe=NAME`` (default ``default``) and overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dissect.config import register_configs

    recipe = "default"
    rest = []
    for o in overrides:
        if o.startswith("recipe="):
            recipe = o.split("=", 1)[1]
        else:
            rest.append(o)
    rdir = recipes_dir()
    if not (rdir / f"{recipe}.yaml").is_file():
        names = sorted(p.stem for p in rdir.glob("*.yaml"))
        raise ValueError(f"unknown recipe {recipe!r}; available in {rdir}: {', '.join(names)}")
    register_configs()
    with initialize_config_dir(config_dir=str(rdir), version_base="1.3"):
        cfg = hydra_compose(config_name=recipe, overrides=rest)
    cfg.recipe = recipe
    return cfg


def list_recipes() -> list[tuple[str, str]]:
    """``(name, first comment line)`` of every top-level recipe, sorted by name."""
    out = []
    for p in sorted(recipes_dir().glob("*.yaml")):
        first = next((ln[1:].strip() for ln in p.read_text(encoding="utf-8").splitlines()
                      if ln.startswith("#")), "")
        out.append((p.stem, first))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "recipes":
        rows = list_recipes()
        width = max(len(n) for n, _ in rows)
        for name, desc in rows:
            print(f"{name:<{width}}  {desc}")
        return 0
    if cmd != "run":
        print(f"dissect: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from dissect import pipeline

    try:
        cfg = compose(rest)
        run_dir = pipeline.run(cfg)
    except (HydraException, OmegaConfBaseException, ValueError, FileNotFoundError) as exc:
        print(f"dissect: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. TooManySkipsError: a clear message, not a traceback
        print(f"dissect: failed: {exc}", file=sys.stderr)
        return 1
    print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
