"""Layers point down only: no module of ``dissect`` imports a module of a higher layer, and the
packages of one layer import one another without a cycle.

Every ``dissect/**/*.py`` is parsed with :mod:`ast`; every import counts, at module level and
inside functions (a lazy import is still a dependency), ``import x`` and ``from x import y``
alike, relative ones resolved against the importing module. A module's layer is that of its first
package component under ``dissect`` (``dissect.hear.tasks.reader`` -> ``hear``).

The one exception is the package's front door, ``dissect/__init__.py``: it re-exports the
public Python API from ``dissect.api``. That is the package root pointing at its own top layer by
design, not a lower module borrowing from a higher one, so it alone is allowed (and only that
import). The top five layers are ranked one by one: config (the schema) < stages (one stage's
work on a run directory) < pipeline (the stages in order, hashing) < api (the notebook API,
which may start a pipeline run but never imports a stage or the CLI) < cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "dissect"

# Lowest first. A module may import its own layer's packages (without a package-level cycle)
# and any lower layer's, never a higher one's.
LAYERS: list[tuple[str, ...]] = [
    # "" is dissect/__init__.py itself
    ("", "util", "fields", "limits", "artifacts", "rows", "registry"),
    ("audio",),
    ("datasets", "models"),
    ("recording",),
    ("description",),
    ("evaluation", "explain", "pruning", "ensemble", "hear", "features"),
    ("report",),
    ("config",),
    ("stages",),
    ("pipeline",),
    ("api",),
    ("cli",),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}

# (importing module, imported module) pairs allowed despite pointing up; see the docstring.
ALLOWED = {("dissect", "dissect.api")}


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of ``path`` (a file below ``root``, the directory holding ``dissect``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every import of a ``dissect`` module in ``path``.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``.
    """
    mod = module_name(path, root)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "dissect"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "dissect":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((node.lineno, sub if _is_module(sub, root) else target))
    return out


def layer_of(module: str) -> str:
    """The layer key of a dotted ``dissect`` module name (``""`` for ``dissect`` itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def check(root: Path) -> tuple[list[str], list[list[str]]]:
    """Back-arrows (``file:line importer -> imported``) and same-layer package cycles under
    ``root/dissect``. Raises KeyError naming a module whose package has no layer."""
    back: list[str] = []
    edges: dict[str, set[str]] = {}
    for path in sorted((root / "dissect").rglob("*.py")):
        importer = module_name(path, root)
        src = layer_of(importer)
        if src not in RANK:
            raise KeyError(f"{path.relative_to(root)}: package {src!r} has no layer in LAYERS")
        for line, imported in imports_of(path, root):
            dst = layer_of(imported)
            if dst not in RANK:
                raise KeyError(f"{path.relative_to(root)}:{line}: {imported} has no layer")
            if RANK[dst] > RANK[src] and (importer, imported) not in ALLOWED:
                back.append(f"{path.relative_to(root)}:{line} {importer} -> {imported}")
            elif RANK[dst] == RANK[src] and dst != src:
                edges.setdefault(src, set()).add(dst)
    return back, find_cycles(edges)


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's node list (each found once, starting at its smallest node)."""
    cycles: list[list[str]] = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                cycles.append([*path, start])
            elif nxt > start and nxt not in path:
                walk(start, nxt, [*path, nxt])

    for start in sorted(edges):
        walk(start, start, [start])
    return cycles


def test_layers_point_down():
    back, cycles = check(ROOT)
    msg = []
    if back:
        msg.append("imports of a higher layer:\n  " + "\n  ".join(back))
    if cycles:
        lines = "\n  ".join(" -> ".join(c) for c in cycles)
        msg.append("package cycles within a layer:\n  " + lines)
    assert not msg, "\n".join(msg)


#: (layer, lower layer) pairs that must not import each other although the ranks allow it: the
#: notebook API reaches the stages only through the pipeline.
FORBIDDEN = {("api", "stages")}


def test_api_never_imports_a_stage_or_the_cli():
    bad = [f"{imported} (line {line})" for line, imported in imports_of(PKG / "api.py", ROOT)
           if (layer_of("dissect.api"), layer_of(imported)) in FORBIDDEN
           or layer_of(imported) == "cli"]
    assert not bad, f"dissect/api.py imports {bad}"
    assert RANK["config"] < RANK["stages"] < RANK["pipeline"] < RANK["api"] < RANK["cli"]


def test_checker_flags_back_arrows_and_cycles(tmp_path):
    pkg = tmp_path / "dissect"
    for sub, text in {
        "__init__.py": "",
        "util.py": "",
        "audio/__init__.py": "def f():\n    from dissect.stages import probe\n",
        "stages/__init__.py": "",
        "stages/probe.py": "from ..audio import load\n",
        "audio/load.py": "",
        "hear/__init__.py": "",
        "hear/api.py": "from dissect.ensemble import ops\n",
        "ensemble/__init__.py": "",
        "ensemble/ops.py": "",
        "ensemble/guided.py": "import dissect.hear.api\n",
        "report/x.py": "from dissect import util, artifacts_gone\n",
    }.items():
        (pkg / sub).parent.mkdir(parents=True, exist_ok=True)
        (pkg / sub).write_text(text)
    (pkg / "report/__init__.py").write_text("")
    back, cycles = check(tmp_path)
    assert back == ["dissect/audio/__init__.py:2 dissect.audio -> dissect.stages.probe"]
    assert cycles == [["ensemble", "hear", "ensemble"]]
    assert imports_of(pkg / "stages/probe.py", tmp_path) == [(1, "dissect.audio.load")]
    assert imports_of(pkg / "report/x.py", tmp_path) == [(1, "dissect.util"), (1, "dissect")]
