"""Table 2 for any head in the report: the head classes mapped onto the probe set's labels.

Reads ``scores.json``'s ``last_layer.<method>.mapped`` blocks
(:class:`~dissect.evaluation.scorers.LastLayer`) and renders one summary table (per method:
top-1 / top-5 over the scored units, the denominator, chance) and the mapping itself (per
mapped head unit: its class, the probe label, how it matched, the cosine, the label's clips,
and per method whether the unit's description names that label). Every value is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dissect.report.html import esc, fmt_num, table


def _pct(x: Any) -> str:
    return "" if x is None else f"{fmt_num(float(x))} %"


def mapped_section(scores: Mapping[str, Any]) -> str:
    """The HTML of the mapped Table 2 ('' when ``scores`` has no ``mapped`` block).

    Args:
        scores: the parsed ``scores.json``.

    Returns:
        An ``<h3>`` with a note (columns, threshold, denominator rule), the per-method summary
        table and the mapping table, or ''.
    """
    last = scores.get("last_layer") if isinstance(scores, Mapping) else None
    if not isinstance(last, Mapping):
        return ""
    blocks = {str(m): b["mapped"] for m, b in last.items()
              if isinstance(b, Mapping) and isinstance(b.get("mapped"), Mapping)}
    if not blocks:
        return ""
    first = next(iter(blocks.values()))
    cols = esc(", ".join(str(c) for c in first.get("columns") or []) or "none")
    note = (f"Head classes mapped onto the probe set's labels (columns: {cols}; "
            f"{esc(first.get('n_labels', 0))} labels) by exact name, normalised name, else the "
            f"MiniLM-nearest label at cosine &ge; {esc(first.get('threshold'))}. A unit is "
            f"scored when its label has at least {esc(first.get('min_clips'))} clips, and right "
            "when its description, as a probe label, is that label.")
    summary = table(
        ["method", "top-1", "top-5", "right / scored units", "mapped units", "head units",
         "chance top-1"],
        [[m, _pct(b.get("top1")), _pct(b.get("top5")),
          f"{b.get('right', 0)} / {b.get('n_units', 0)}", b.get("n_mapped", 0),
          b.get("n_classes", 0), _pct(b.get("chance_top1"))] for m, b in blocks.items()])
    units: dict[str, dict[str, Any]] = {}  # by unit, in the order scores.json lists them
    for m, b in blocks.items():
        for r in b.get("mapping") or []:
            if not isinstance(r, Mapping):
                continue
            row = units.setdefault(str(r.get("unit")), {
                "unit": r.get("unit"), "class": r.get("class"), "label": r.get("label"),
                "how": r.get("how"),
                "cos": "" if r.get("cos") is None else fmt_num(float(r["cos"])),
                "clips": r.get("clips"), "scored": "yes" if r.get("scored") else "no"})
            row[m] = (f"{'right' if r.get('right') else 'wrong'}"
                      f" ({r.get('predicted') if r.get('predicted') is not None else 'nothing'})")
    header = ["unit", "class", "label", "how", "cos", "clips", "scored", *blocks]
    mapping = table(header, [[u.get(h, "") for h in header] for u in units.values()]) \
        if units else \
        '<p class="note">No head class maps onto a probe label.</p>'
    return (f'<h3>Table 2 over the head classes that map onto the probe labels</h3>'
            f'<p class="note">{note}</p>{summary}'
            f'<details><summary>The mapping ({len(units)} head units)</summary>{mapping}'
            "</details>")
