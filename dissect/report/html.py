"""HTML building blocks. Every value from an artifact passes through :func:`esc`.

Captions, LLM output, clip ids and file contents are untrusted: :func:`esc` escapes ``& < > " '``
so a value is safe both as element text and inside a double- or single-quoted attribute.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Rows shown per generic table before it is cut (the cut is stated under the table).
MAX_ROWS = 500
#: Nesting depth rendered by :func:`render_value` before falling back to JSON text.
MAX_DEPTH = 6


def esc(value: Any) -> str:
    """Escape any value for HTML text and quoted attributes (``None`` -> empty string)."""
    if value is None:
        return ""
    if isinstance(value, float):
        value = fmt_num(value)
    return html.escape(str(value), quote=True)


def fmt_num(x: float) -> str:
    """A compact float: 4 significant digits, ``nan``/``inf`` spelled out."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    """A table of escaped cells; cells that are mappings or lists render as nested tables."""
    rows = list(rows)
    shown = rows[:MAX_ROWS]
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{render_value(c, 1)}</td>" for c in r) + "</tr>" for r in shown)
    cut = (f'<p class="note">showing {len(shown)} of {len(rows)} rows</p>'
           if len(rows) > len(shown) else "")
    cls_attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{cut}"


def kv_table(mapping: Mapping[str, Any], depth: int = 0) -> str:
    """A two-column key/value table; nested values render recursively."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{render_value(v, depth + 1)}</td></tr>"
                   for k, v in mapping.items())
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def render_value(value: Any, depth: int = 0) -> str:
    """Render JSON-like data generically: dicts as key/value tables, lists of dicts with shared
    keys as tables, other lists inline, scalars as escaped text."""
    if depth > MAX_DEPTH:
        return f"<code>{esc(json.dumps(value, default=str)[:2000])}</code>"
    if isinstance(value, Mapping):
        return kv_table(value, depth) if value else "<em>{}</em>"
    if isinstance(value, (list, tuple)):
        if not value:
            return "<em>[]</em>"
        if all(isinstance(v, Mapping) for v in value):
            cols = list(dict.fromkeys(k for v in value for k in v))
            if len(cols) <= 20:
                return table(cols, ([v.get(c) for c in cols] for v in value))
        if all(not isinstance(v, (Mapping, list, tuple)) for v in value):
            return esc(", ".join(esc_raw(v) for v in value))
        return "<ol>" + "".join(f"<li>{render_value(v, depth + 1)}</li>" for v in value) + "</ol>"
    if isinstance(value, bool) or value is None:
        return esc(json.dumps(value))
    return esc(value)


def esc_raw(value: Any) -> str:
    """``str`` of a scalar with floats formatted (not escaped: the caller escapes)."""
    return fmt_num(value) if isinstance(value, float) else str(value)


def csv_table(path: Path) -> str:
    """A CSV file (first row = header) as an escaped table."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return '<p class="note">(empty)</p>'
    return table(rows[0], rows[1:])


def json_file(path: Path) -> str:
    """A JSON file rendered generically; a malformed one is shown as a named error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f'<p class="error">{esc(path.name)}: cannot parse ({esc(exc)})</p>'
    return render_value(data)
