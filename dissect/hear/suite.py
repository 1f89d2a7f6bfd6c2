"""A suite of HEAR modules on the same tasks, and one table that answers GURA's question: does an
ensemble beat each of its members, per task and in the mean of normalised scores?

:func:`run_suite` runs :func:`~dissect.hear.evaluate.run_hear` for each entry into
``<out_dir>/<entry dir>/`` (its own embedding cache, predictions, ``scores.json``), with a
progress bar over modules x tasks, then writes into ``out_dir``:

* ``suite.csv``: one row per module x task: the task's primary score (``mean``, sample ``std``,
  ``n``, ``n_nan`` over folds x seeds, exactly as in that module's ``scores.json``), its
  ``normalised`` score, and for ensembles whether it beats its members and its margin over the
  best member;
* ``suite.md``: a markdown table (rows modules, columns tasks, ``mean ± std``, a last column
  with the mean normalised score); ensemble cells carry the verdict against the members;
* ``suite.json``: all of it, per-member comparisons included;
* ``suite.png``: grouped bars, one group per task, one bar per module (error bar: std);
  ensembles hatched.

Entries (:func:`parse_entry`): ``MODULE`` or ``MODULE(KEY=VALUE;KEY=VALUE...)``. ``MODULE`` is a
short name of :data:`dissect.hear.modules.MODULES` (``logmel``) or an import name. Options are
the module's ``load_model`` keyword arguments (``VALUE`` read as an int, float, bool or null
when it is one, else text), plus ``label=NAME`` (the row and folder name) and
``model_file_path=PATH``. ``members=crepe_tiny+logmel`` lists an ensemble's members (``+``
separates them; they are ``module[:layer][@source]`` as
:func:`dissect.hear.modules._build.parse_members` reads). The syntax survives an unquoted YAML
list on the command line: ``modules=[logmel,gura_cat(members=crepe_tiny+logmel)]``. The default
label is the short module name, followed by its options in brackets when it has any:
``gura_cat[crepe_tiny+logmel]``, ``logmel[n_mels=64]``.

Resume: a module whose ``scores.json`` was written with the same module, options, tasks, grid,
grid points, seeds and deviations is not run again (its rows are read back), so a killed suite
keeps every finished module; delete ``<out_dir>/<label>/scores.json`` to run one again. An
unfinished module restarts but reuses its embedding cache (:mod:`dissect.hear.embed`).

Ensembles from the members' caches (:func:`combinable`): a ``gura_cat`` or ``gura_avg`` entry
whose every member is also an entry of the suite (and that sets no option but ``members``, and
``seed`` for ``gura_avg``) runs after the single models, and its embeddings are computed from the
members' embedding caches (:func:`dissect.hear.combine.combine_embedded`, equal to what the
ensemble module embeds) instead of running every member again; ``suite.json`` lists these under
``combined``. ``gura_fusion`` has its own fusion layers and always runs as a module.

Normalisation (:data:`NORMALISATION`): per task, min-max over the modules of this suite,
``(score - worst) / (best - worst)``: 1 is the best module of the suite on that task, 0 the
worst (direction taken from the score: lower is better for error rates); every module gets 1
when all tie. The mean normalised score averages a module's tasks that have a score. It
depends on which modules are in the suite: adding a weaker or a stronger module moves it.

An ensemble *beats* a member on a task when its mean primary score is better than the member's
(strictly); it beats its members when it beats every member that is in the suite. A member is
in the suite when an entry runs the same module with the same layer and ``model_file_path`` and
no other option; else the comparison says ``member not in suite``.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dissect.hear.combine import combine_embedded
from dissect.hear.embed import EmbeddedTask, LoadedModule, embed_task, load_module
from dissect.hear.evaluate import _jsonable, _log, run_hear, select_tasks
from dissect.hear.metrics import get_score
from dissect.hear.modules import ENSEMBLES, ensemble_members, import_name, short_name
from dissect.util import atomic_path, csv_text, write_json, write_text

NORMALISATION = ("min-max per task over the modules of this suite: (score - worst) / "
                 "(best - worst), 1 = best, 0 = worst (flipped for lower-is-better scores; "
                 "all 1 when every module ties); it changes when modules are added or removed")

CSV_COLUMNS = ["module", "task", "score", "mean", "std", "n", "n_nan", "normalised",
               "ensemble", "beats_members", "margin_vs_best_member"]

#: Settings a finished module's ``scores.json`` must match to be reused (besides module,
#: ``model_file_path``, ``model_options`` and the task list).
RESUME_SETTINGS = ("grid", "grid_points", "seeds", "per_fold_search", "shuffle", "standardize")

#: :func:`~dissect.hear.evaluate.run_hear` arguments that each entry gives, or that cannot be
#: shared by a suite's modules.
PER_MODULE = ("model_file_path", "model_options", "loaded", "embeddings_dir", "on_task")
RUN_HEAR_PARAMETERS = inspect.signature(run_hear).parameters

#: Verdict of an ensemble against its members -> its mark in ``suite.md``.
MARKS = {"yes": "✓", "partial": "✓*", "no": "✗"}

_ENTRY = re.compile(r"\s*([A-Za-z_][\w.]*)\s*(?:\((.*)\))?\s*", re.S)
_UNSAFE = re.compile(r"[^\w.+=;,\[\]()-]")


@dataclass(frozen=True)
class Member:
    """One member of an ensemble: ``module`` (short or import name), ``layer``, ``source`` (its
    ``model_file_path``)."""

    module: str
    layer: str = "last"
    source: str = ""

    @property
    def spec(self) -> str:
        """``module[:layer][@source]`` (the layer left out when it is ``last``)."""
        layer = "" if self.layer == "last" else f":{self.layer}"
        return f"{self.module}{layer}" + (f"@{self.source}" if self.source else "")


@dataclass
class SuiteEntry:
    """One module of a suite (:func:`parse_entry`).

    Attributes:
        text: the entry as given.
        label: row name in the tables, and (made file-name safe) its folder: :attr:`dir_name`.
        module: import name.
        model_file_path: ``load_model``'s path (``""``: none).
        options: the other ``load_model`` keyword arguments (``members`` joined by ``,``).
        members: an ensemble's members (None: a single model, or an ensemble whose members are
            not HEAR modules, such as ``guided``).
    """

    text: str
    label: str
    module: str
    model_file_path: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    members: tuple[Member, ...] | None = None

    @property
    def ensemble(self) -> bool:
        """One of :data:`dissect.hear.modules.ENSEMBLES`."""
        return short_name(self.module) in ENSEMBLES

    @property
    def dir_name(self) -> str:
        """The folder under the suite's ``out_dir``: the label with every character other than
        letters, digits and ``._+=;,[]()-`` replaced by ``_``."""
        return _UNSAFE.sub("_", self.label)

    def matches(self, member: Member) -> bool:
        """True when this entry runs exactly ``member``: same module, layer and source, and no
        other option."""
        return (self.module == import_name(member.module)
                and self.model_file_path == member.source
                and str(self.options.get("layer", "last")) == member.layer
                and set(self.options) <= {"layer"})


def _scalar(text: str) -> Any:
    """An option value: ``"64"`` -> 64, ``"1e-3"`` -> 0.001, ``"true"`` -> True, ``"null"`` ->
    None, anything else the text itself."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_entry(text: str) -> SuiteEntry:
    """One suite entry (see the module doc): ``"gura_cat(members=crepe_tiny+logmel)"`` ->
    label ``gura_cat[crepe_tiny+logmel]``, module ``dissect.hear.modules.gura_cat``, options
    ``{"members": "crepe_tiny,logmel"}``, members ``crepe_tiny``, ``logmel``.

    Raises:
        ValueError: not ``MODULE`` or ``MODULE(KEY=VALUE;...)``, an option that is not
            ``KEY=VALUE`` or is given twice, an unknown short name, an empty label.
    """
    text = str(text)
    m = _ENTRY.fullmatch(text)
    if m is None:
        hint = ""
        if "(" in text and ")" not in text or ")" in text and "(" not in text:
            hint = ("; its options look cut at a comma: separate options with ';' and members "
                    "with '+'")
        raise ValueError(f"modules: bad entry {text!r}: expected MODULE or "
                         f"MODULE(KEY=VALUE;KEY=VALUE...){hint}")
    name, body = m.groups()
    raw: dict[str, str] = {}
    for part in (body or "").split(";"):
        if not part.strip():
            continue
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not key.isidentifier():
            raise ValueError(f"modules: entry {text!r}: option {part.strip()!r} is not "
                             "KEY=VALUE")
        if key in raw:
            raise ValueError(f"modules: entry {text!r}: option {key!r} given twice")
        raw[key] = value
    label = raw.pop("label", None)
    path = raw.pop("model_file_path", "")
    options = {k: (v.replace("+", ",") if k == "members" else _scalar(v)) for k, v in raw.items()}
    try:
        module = import_name(name)
        members = ensemble_members(module, path, options.get("members"))
        for member in members or ():  # an unknown member fails here, not at load time
            import_name(member[0])
    except (ValueError, ImportError) as exc:
        raise ValueError(f"modules: entry {text!r}: {exc}") from exc
    if label is None:
        shown = [v if k == "members" else f"{k}={v}" for k, v in raw.items()]
        shown += [f"model_file_path={path}"] if path else []
        label = short_name(module) + (f"[{';'.join(shown)}]" if shown else "")
    if not label or _UNSAFE.sub("_", label) in (".", ".."):
        raise ValueError(f"modules: entry {text!r}: label {label!r} cannot name a folder")
    return SuiteEntry(text, label, module, path, options,
                      None if members is None else tuple(Member(*x) for x in members))


def parse_entries(texts: Sequence[str | SuiteEntry]) -> list[SuiteEntry]:
    """Every entry (:func:`parse_entry`; a :class:`SuiteEntry` passes as it is), checked for
    distinct labels and folders.

    Raises:
        ValueError: no entry; two entries with the same label or folder.
    """
    entries = [t if isinstance(t, SuiteEntry) else parse_entry(t) for t in texts]
    if not entries:
        raise ValueError("modules: no module given")
    for attr, what in (("label", "label"), ("dir_name", "folder")):
        seen: dict[str, str] = {}
        for e in entries:
            key = getattr(e, attr)
            if key in seen:
                raise ValueError(f"modules: {seen[key]!r} and {e.text!r} have the same {what} "
                                 f"{key!r}; give one a label=NAME")
            seen[key] = e.text
    return entries


# --------------------------------------------------------------------------- the table


def normalise(means: Mapping[str, float | None], maximize: bool = True
              ) -> dict[str, float | None]:
    """Min-max normalised scores of one task (:data:`NORMALISATION`): label -> value in [0, 1]
    (None where the mean is None). ``{"a": .5, "b": .7, "c": .6}`` -> ``{"a": 0, "b": 1,
    "c": .5}``; with ``maximize=False`` -> ``{"a": 1, "b": 0, "c": .5}``."""
    finite = [v for v in means.values() if v is not None and math.isfinite(v)]
    if not finite:
        return dict.fromkeys(means)
    lo, hi = min(finite), max(finite)
    out: dict[str, float | None] = {}
    for k, v in means.items():
        if v is None or not math.isfinite(v):
            out[k] = None
        elif hi == lo:
            out[k] = 1.0
        else:
            out[k] = (v - lo) / (hi - lo) if maximize else (hi - v) / (hi - lo)
    return out


def compare(value: float | None, members: Sequence[tuple[str, str | None, float | None]],
            maximize: bool = True) -> dict[str, Any]:
    """An ensemble's ``value`` against its members ``[(member spec, suite label or None,
    value), ...]``.

    Returns:
        ``{"members": [{"member", "entry", "mean", "margin", "beats"} or {"member", "entry":
        None, "note": "member not in suite"}], "best_member": label, "margin_vs_best": float,
        "verdict": "yes" | "partial" | "no" | None}``. ``margin`` is how much better the
        ensemble is (``value - member`` when higher is better, else ``member - value``);
        ``beats`` is ``margin > 0``. ``verdict``: ``no`` when a member in the suite is not
        beaten, ``yes`` when every member is in the suite and beaten, ``partial`` when every
        member in the suite is beaten but some are not in it (or have no score), None when
        nothing could be compared.
    """
    rows: list[dict[str, Any]] = []
    best: tuple[float, str] | None = None
    for spec, entry, mv in members:
        if entry is None:
            rows.append({"member": spec, "entry": None, "note": "member not in suite"})
            continue
        margin = None
        if value is not None and mv is not None:
            margin = value - mv if maximize else mv - value
            if best is None or margin < best[0]:
                best = (margin, entry)
        rows.append({"member": spec, "entry": entry, "mean": mv, "margin": margin,
                     "beats": None if margin is None else margin > 0})
    beats = [r["beats"] for r in rows if r.get("beats") is not None]
    if not beats:
        verdict = None
    elif not all(beats):
        verdict = "no"
    else:
        verdict = "yes" if len(beats) == len(rows) else "partial"
    return {"members": rows, "best_member": None if best is None else best[1],
            "margin_vs_best": None if best is None else best[0], "verdict": verdict}


def suite_table(entries: Sequence[SuiteEntry], rows: Mapping[str, Sequence[Mapping[str, Any]]],
                tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """The comparison of a suite (the content of ``suite.json``).

    Args:
        entries: the suite's modules (:func:`parse_entries`).
        rows: label -> that module's score rows (:func:`~dissect.hear.evaluate.summarize`; only
            the ``primary`` rows are read).
        tasks: task order (default: as the rows first name them).

    Returns:
        ``{"normalisation", "tasks": [{"task", "score", "maximize"}], "modules": [{"label",
        "module", "model_file_path", "options", "dir", "ensemble", "members"}], "rows":
        [{"module", "task", "score", "mean", "std", "n", "n_nan", "normalised"}],
        "mean_normalised": {label: {"mean", "n_tasks"}}, "comparisons": {ensemble label:
        {"tasks": {task: compare(...)}, "mean_normalised": compare(...)}}}``.
    """
    primary = {(label, r["task"]): r for label, rs in rows.items() for r in rs if r["primary"]}
    order = list(tasks) if tasks is not None else list(dict.fromkeys(t for _, t in primary))
    task_info = []
    for t in order:
        names = {r["score"] for (_, task), r in primary.items() if task == t}
        if len(names) > 1:
            raise ValueError(f"task {t!r}: modules disagree on its primary score {sorted(names)}")
        score = names.pop() if names else None
        task_info.append({"task": t, "score": score,
                          "maximize": True if score is None else get_score(score).maximize})
    labels = [e.label for e in entries]
    out_rows, norm = [], {lab: [] for lab in labels}
    by_task: dict[str, dict[str, Any]] = {}
    for info in task_info:
        t = info["task"]
        cell = {lab: primary.get((lab, t)) for lab in labels}
        means = {lab: None if r is None else r["mean"] for lab, r in cell.items()}
        normed = normalise(means, info["maximize"])
        by_task[t] = {"means": means, "normalised": normed}
        for lab in labels:
            r = cell[lab]
            if r is None:
                continue
            out_rows.append({"module": lab, "task": t, "score": r["score"], "mean": r["mean"],
                             "std": r["std"], "n": r["n"], "n_nan": r.get("n_nan", 0),
                             "normalised": normed[lab]})
            if normed[lab] is not None:
                norm[lab].append(normed[lab])
    mean_norm = {lab: {"mean": sum(v) / len(v) if v else None, "n_tasks": len(v)}
                 for lab, v in norm.items()}
    comparisons = {}
    for e in entries:
        if e.members is None:
            continue
        found = [(m.spec, next((x.label for x in entries if x is not e and x.matches(m)), None))
                 for m in e.members]

        def against(values: Mapping[str, float | None], own: float | None, maximize: bool,
                    found=found) -> dict[str, Any]:
            return compare(own, [(s, lab, None if lab is None else values.get(lab))
                                 for s, lab in found], maximize)

        comparisons[e.label] = {
            "tasks": {i["task"]: against(by_task[i["task"]]["means"],
                                         by_task[i["task"]]["means"][e.label], i["maximize"])
                      for i in task_info},
            "mean_normalised": against({k: v["mean"] for k, v in mean_norm.items()},
                                       mean_norm[e.label]["mean"], True),
        }
    modules = [{"label": e.label, "module": e.module, "model_file_path": e.model_file_path,
                "options": _jsonable(e.options), "dir": e.dir_name, "ensemble": e.ensemble,
                "members": None if e.members is None else [m.spec for m in e.members]}
               for e in entries]
    return {"normalisation": NORMALISATION, "tasks": task_info, "modules": modules,
            "rows": out_rows, "mean_normalised": mean_norm, "comparisons": comparisons}


def _num(v: float | None, digits: int | None = None) -> str:
    """A CSV number: the exact float (``repr``), or rounded to ``digits``; ``nan`` for None."""
    if v is None:
        return "nan"
    return repr(float(v) if digits is None else round(float(v), digits))


def suite_csv(table: Mapping[str, Any]) -> str:
    """``suite.csv`` (:data:`CSV_COLUMNS`) of a :func:`suite_table`: ``mean`` and ``std``
    written exactly (``repr``), so they read back equal to the modules' ``scores.json``;
    ``normalised`` and the margin rounded to 6 decimals."""
    ensemble = {m["label"]: m["ensemble"] for m in table["modules"]}
    lines = []
    for r in table["rows"]:
        cmp = table["comparisons"].get(r["module"], {}).get("tasks", {}).get(r["task"], {})
        margin = cmp.get("margin_vs_best")
        lines.append([r["module"], r["task"], r["score"], _num(r["mean"]), _num(r["std"]),
                      r["n"], r["n_nan"], _num(r["normalised"], 6), ensemble[r["module"]],
                      cmp.get("verdict") or "", "" if margin is None else _num(margin, 6)])
    return csv_text(CSV_COLUMNS, lines)


def _mark(cmp: Mapping[str, Any] | None) -> str:
    if not cmp or cmp.get("verdict") is None:
        return ""
    return f" {MARKS[cmp['verdict']]} {cmp['margin_vs_best']:+.3f}"


def suite_markdown(table: Mapping[str, Any]) -> str:
    """``suite.md``: rows modules, columns tasks (``task (score)``, cells ``mean ± std`` of the
    primary score), a last column with the mean normalised score; each ensemble cell ends with
    its verdict (``✓`` beats every member, ``✓*`` beats the members in the suite, ``✗`` does
    not) and its margin over the best member; notes below name the members."""
    tasks = table["tasks"]
    cells = {(r["module"], r["task"]): r for r in table["rows"]}
    head = ["module"] + [f"{t['task']} ({t['score']})" for t in tasks] + ["mean normalised"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in table["modules"]:
        lab = m["label"]
        cmp = table["comparisons"].get(lab)
        row = [f"{lab} (ensemble)" if m["ensemble"] else lab]
        for t in tasks:
            r = cells.get((lab, t["task"]))
            if r is None:
                row.append("–")
                continue
            ms = "nan" if r["mean"] is None else f"{r['mean']:.3f}"
            sd = "nan" if r["std"] is None else f"{r['std']:.3f}"
            row.append(f"{ms} ± {sd}" + _mark(cmp and cmp["tasks"][t["task"]]))
        mn = table["mean_normalised"][lab]
        text = "nan" if mn["mean"] is None else f"{mn['mean']:.3f}"
        if mn["n_tasks"] < len(tasks):
            text += f" ({mn['n_tasks']}/{len(tasks)} tasks)"
        row.append(text + _mark(cmp and cmp["mean_normalised"]))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Cells: the task's primary score, mean ± sample std over folds x seeds. "
              f"Normalised: {table['normalisation']}."]
    if table["comparisons"]:
        lines.append("Ensembles: ✓ beats every member (its mean better than each member's), "
                     "✓* beats the members that are in the suite, ✗ does not beat them all; "
                     "the number is its margin over the best member (positive: better).")
    for lab, cmp in table["comparisons"].items():
        members = next(iter(cmp["tasks"].values()), cmp["mean_normalised"])["members"]
        named = [m["member"] + ("" if m["entry"] == m["member"] else f" (= {m['entry']})")
                 for m in members if m["entry"] is not None]
        missing = [m["member"] for m in members if m["entry"] is None]
        wins = [sum(c["verdict"] == v for c in cmp["tasks"].values()) for v in MARKS]
        lines.append(f"- {lab}: members in the suite: {', '.join(named) or 'none'}"
                     + (f"; member not in suite: {', '.join(missing)}" if missing else "")
                     + f"; beats every member on {wins[0]} of {len(cmp['tasks'])} tasks"
                     + (f", the members in the suite on {wins[1]} more" if wins[1] else "")
                     + ".")
    return "\n".join(lines) + "\n"


def suite_plot(table: Mapping[str, Any], path: str | Path) -> Path:
    """``suite.png`` (matplotlib, Agg): one group of bars per task, one bar per module (the
    mean primary score, error bar its std), ensembles hatched, a legend of modules; a task
    whose score is lower-is-better says so under its name."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    tasks, modules = table["tasks"], table["modules"]
    cells = {(r["module"], r["task"]): r for r in table["rows"]}
    width = 0.8 / max(1, len(modules))
    fig, ax = plt.subplots(figsize=(3.0 + len(tasks) * (0.35 * len(modules) + 0.6), 3.6),
                           layout="constrained")  # 3 inches for the legend
    colours = plt.get_cmap("tab10" if len(modules) <= 10 else "tab20")
    for i, m in enumerate(modules):
        xs, ys, errs = [], [], []
        for j, t in enumerate(tasks):
            r = cells.get((m["label"], t["task"]))
            if r is None or r["mean"] is None:
                continue
            xs.append(j + (i - (len(modules) - 1) / 2) * width)
            ys.append(r["mean"])
            errs.append(r["std"] or 0.0)
        ax.bar(xs, ys, width, yerr=errs, capsize=2, color=colours(i % colours.N),
               hatch="//" if m["ensemble"] else None, edgecolor="black" if m["ensemble"] else None,
               linewidth=0.5, label=m["label"] + (" (ensemble)" if m["ensemble"] else ""))
    ax.set_xticks(range(len(tasks)), [f"{t['task']}\n{t['score']}" + (
        "" if t["maximize"] else "\n(lower is better)") for t in tasks], fontsize=8)
    ax.set_ylabel("primary score (mean ± std)")
    ax.set_title("HEAR suite: primary score per task", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- the runner

#: Ensembles :func:`combinable` from cached member embeddings, and their operator.
COMBINED_OPS = {"gura_cat": "cat", "gura_avg": "avg"}


def combinable(entry: SuiteEntry, entries: Sequence[SuiteEntry]) -> list[SuiteEntry] | None:
    """The entries that run ``entry``'s members, in member order, when ``entry`` is a
    ``gura_cat``/``gura_avg`` ensemble that can be combined from their caches: no
    ``model_file_path``, no option but ``members`` (and ``seed`` for ``gura_avg``), every member
    run by a single-model entry (:meth:`SuiteEntry.matches`); else None."""
    op = COMBINED_OPS.get(short_name(entry.module))
    if op is None or entry.members is None or entry.model_file_path:
        return None
    allowed = {"members"} | ({"seed"} if op == "avg" else set())
    if set(entry.options) - allowed:
        return None
    found = []
    for member in entry.members:
        match = next((e for e in entries if not e.ensemble and e.matches(member)), None)
        if match is None:
            return None
        found.append(match)
    return found


def _combined_embedder(entry: SuiteEntry, members: Sequence[SuiteEntry], out_dir: Path,
                       options: Mapping[str, Any], log: Callable[[str], None]
                       ) -> Callable[[Any, Path], EmbeddedTask]:
    """``run_hear``'s ``embedded`` callback for a :func:`combinable` ensemble: each member's
    embeddings of the task from its own cache (embedded first when missing or stale, as its own
    run would), then combined into the ensemble's cache directory."""
    loaded: dict[str, LoadedModule] = {}
    device = options.get("device", "auto")
    batch_size = options.get("batch_size")

    def embedded(task: Any, cache_dir: Path) -> EmbeddedTask:
        parts = []
        for m in members:
            if m.label not in loaded:
                loaded[m.label] = load_module(m.module, m.model_file_path, device=device,
                                              model_options=dict(m.options))
            parts.append(embed_task(loaded[m.label], task,
                                    out_dir / m.dir_name / "embeddings" / task.name,
                                    batch_size=batch_size, log=log))
        op = COMBINED_OPS[short_name(entry.module)]
        log(f"[hear suite] {entry.label}: {task.name}: {op} of the cached embeddings of "
            + ", ".join(m.label for m in members))
        return combine_embedded(parts, op, cache_dir, name=entry.module,
                                seed=int(entry.options.get("seed", 0)))

    return embedded


def finished_rows(entry: SuiteEntry, out: Path, settings: Mapping[str, Any],
                  tasks: Sequence[str]) -> list[dict[str, Any]] | None:
    """The score rows of ``out/scores.json`` when it was written for this entry with these
    ``settings`` (:data:`RESUME_SETTINGS`) and exactly these ``tasks``; else None."""
    try:
        payload = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    want = {"module": entry.module, "model_file_path": entry.model_file_path,
            "model_options": _jsonable(entry.options), **settings}
    if any(payload.get(k) != v for k, v in want.items()):
        return None
    if sorted(payload.get("tasks") or {}) != sorted(tasks):
        return None
    return list(payload["rows"])


def run_suite(
    entries: Sequence[str | SuiteEntry],
    tasks_dir: str | Path,
    out_dir: str | Path,
    *,
    progress: bool = True,
    log: Callable[[str], None] = _log,
    **options: Any,
) -> dict[str, Any]:
    """Run :func:`~dissect.hear.evaluate.run_hear` for each entry and write the comparison
    (see the module doc).

    Args:
        entries: suite entries (``"logmel"``, ``"gura_cat(members=crepe_tiny+logmel)"``) or
            parsed :class:`SuiteEntry`.
        tasks_dir: one task directory, or a directory of task directories.
        out_dir: ``<out_dir>/<entry dir>/`` per module; ``suite.csv/md/json/png`` at the top.
        progress: show a progress bar (tqdm, stderr) over modules x tasks.
        options: :func:`~dissect.hear.evaluate.run_hear`'s keyword arguments, the same for
            every module (``grid`` a grid name, ``seeds``, ``grid_points``, ``tasks``,
            ``device``, ...); not those an entry gives (``model_file_path``,
            ``model_options``) nor ``loaded``, ``embeddings_dir`` and ``on_task``.

    Returns:
        ``suite.json``'s content (:func:`suite_table` plus ``tasks_dir``, ``settings``,
        ``reused``: labels read back from a finished ``scores.json``, and ``markdown``).
    """
    from tqdm.auto import tqdm

    parsed = parse_entries(entries)
    params = RUN_HEAR_PARAMETERS
    refused = sorted(set(options) & {"module", *PER_MODULE} | set(options) - set(params))
    if refused:
        raise ValueError(f"run_suite: {', '.join(refused)} cannot be set for a whole suite")
    settings = {k: options.pop(k, params[k].default) for k in RESUME_SETTINGS}
    if not isinstance(settings["grid"], str):
        raise ValueError("run_suite: grid must be a grid name (default, fast, faster)")
    settings["seeds"] = [int(s) for s in settings["seeds"]]
    out_dir = Path(out_dir)
    names = [t.name for t in select_tasks(tasks_dir, options.pop("tasks", None))]
    rows: dict[str, list[dict[str, Any]]] = {}
    reused = []
    combined = {e.label: combinable(e, parsed) for e in parsed}
    combined = {k: v for k, v in combined.items() if v is not None}
    order = ([e for e in parsed if e.label not in combined]
             + [e for e in parsed if e.label in combined])  # members embedded first
    bar = tqdm(total=len(parsed) * len(names), desc="hear suite", unit="task",
               disable=not progress, file=sys.stderr)
    try:
        for e in order:
            where = out_dir / e.dir_name
            done = finished_rows(e, where, settings, names)
            if done is not None:
                log(f"[hear suite] {e.label}: reusing {where / 'scores.json'}")
                rows[e.label] = done
                reused.append(e.label)
                bar.update(len(names))
                continue
            bar.set_postfix_str(e.label)
            extra = {}
            if e.label in combined:
                extra["embedded"] = _combined_embedder(e, combined[e.label], out_dir, options,
                                                       log)
            rows[e.label] = run_hear(
                e.module, tasks_dir, where, e.model_file_path, tasks=names,
                model_options=e.options, log=log, on_task=lambda _name: bar.update(1),
                **settings, **options, **extra)
    finally:
        bar.close()
    table = suite_table(parsed, rows, names)
    markdown = suite_markdown(table)
    payload = {**table, "tasks_dir": str(tasks_dir), "settings": settings, "reused": reused,
               "combined": {k: [m.label for m in v] for k, v in combined.items()}}
    write_json(out_dir / "suite.json", payload)
    write_text(out_dir / "suite.csv", suite_csv(table))
    write_text(out_dir / "suite.md", markdown)
    suite_plot(table, out_dir / "suite.png")
    return {**payload, "markdown": markdown}
