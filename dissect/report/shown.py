"""Shown neuron descriptions of a run as a markdown table, picked by a fixed rule
(``dissect show-descriptions``).

Per listed layer (default: ``n`` evenly spaced layers from the first to the head), the neuron
with the highest test detection AUROC (on the clips the description was neither fitted nor
chosen on) among those whose shown description's first term is carried by at least
``min_support`` of the dissected clips, ties by unit. No hand-picking: the rule and the run
decide.

    dissect show-descriptions run_dir=runs/yamnet_free3 n=10 min_support=15
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dissect import artifacts
from dissect.fields import COUNT, SOME, check, option
from dissect.rows import NeuronRow, read_rows


@dataclass
class ShowDescriptionsConfig:
    """The settings of ``dissect show-descriptions`` (``key=value`` on the command line)."""

    run_dir: str
    """A finished run directory (with explanations.jsonl). Required."""
    n: int = option(10, COUNT)
    """How many layers to show, evenly spaced from the first to the head."""
    min_support: int = option(15, SOME)
    """Fit clips that must carry a neuron's first shown term for it to be picked."""
    layers: list[str] = field(default_factory=list)
    """These layers instead of n evenly spaced ones (empty: n)."""

    def __post_init__(self) -> None:
        check(type(self), self)


def first_term_support(row: NeuronRow) -> int:
    """Fit clips carrying the shown description's first term (0 without terms)."""
    return int(row.shown_terms[0].get("support") or 0) if row.shown_terms else 0


def pick_shown(rows: Sequence[NeuronRow], layers: Sequence[str], min_support: int
               ) -> list[NeuronRow]:
    """One row per layer: max test detection with first-term support >= ``min_support``;
    ties by unit. A layer without such a row is left out."""
    out = []
    for layer in layers:
        ok = [r for r in rows if r.layer == layer and r.kind != "none"
              and first_term_support(r) >= min_support and r.test.get("detection") is not None]
        if ok:
            out.append(max(ok, key=lambda r: (r.test["detection"], -r.unit)))
    return out


def spaced_layers(order: Sequence[str], n: int) -> list[str]:
    """``n`` layers of ``order`` evenly spaced from the first to the last (fewer when it has
    fewer)."""
    step = (len(order) - 1) / max(1, n - 1)
    return list(dict.fromkeys(order[round(i * step)] for i in range(n)))


def shown_descriptions_table(cfg: ShowDescriptionsConfig) -> str:
    """The markdown table (header, separator, one line per picked neuron) of ``cfg.run_dir``.

    Raises:
        FileNotFoundError: no explanations.jsonl (the explain stage has not run).
        ValueError: it holds no neuron.
    """
    path = Path(cfg.run_dir) / artifacts.EXPLANATIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (run the explain stage first)")
    rows = [r for r in read_rows(cfg.run_dir) if r.explained]
    if not rows:
        raise ValueError(f"{path}: no neurons")
    layers = list(cfg.layers) or spaced_layers(list(dict.fromkeys(r.layer for r in rows)), cfg.n)
    lines = ["| layer | unit | description | kind | test AUROC | test clips "
             "| fit clips with its first term |",
             "|---|---|---|---|---|---|---|"]
    for r in pick_shown(rows, layers, cfg.min_support):
        t = r.test
        text = r.text.replace("|", "\\|")
        lines.append(f"| {r.layer} | {r.unit} | {text} | {r.kind} | "
                     f"{t['detection']:.2f} | {t['n_pos'] + t['n_neg']} | "
                     f"{first_term_support(r)} |")
    return "\n".join(lines)
