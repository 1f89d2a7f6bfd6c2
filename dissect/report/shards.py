"""The report's data files: ``report/data/clips.js``, ``report/data/top.js`` and one
``report/data/<i>-<layer>.js`` per layer, which ``report.js`` loads to fill the neuron table and
to render cards on demand.

Chromium blocks ``fetch()``/XHR of local files on ``file://``, so the data travel as scripts,
which the page's CSP (``script-src 'self'``) allows when ``report.js`` adds them as
``<script src>`` elements. Each file is one statement::

    (window.DISSECT_SHARDS = window.DISSECT_SHARDS || []).push(<JSON>);

The payload is plain JSON with ``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\\uXXXX``, so
no artifact string can end the statement or read as markup anywhere; ``report.js`` inserts every
value with ``textContent``/``setAttribute`` only.

Payloads (``kind`` tells them apart):

- ``{"kind": "clips", "fields": CLIP_FIELDS, "rows": [[id, audio, image, caption], ...]}``: each
  exemplar clip some card shows, once; ``audio``/``image`` are report-relative paths or None;
  card rows refer to clips by their index here.
- ``{"kind": "layer", "layer": name, "slug": card-id slug, "fields": cards.FIELDS,
  "strings": [text, ...], "rows": [card row, ...]}``: the layer's cards, in unit order
  (see :mod:`dissect.report.cards` for a row).
- ``{"kind": "top", "shards": [layer payload, ...]}`` (``data/top.js``): the layer payloads cut
  to the rows of the cards open on load, so the page shows them while the rest loads.

Size: the clip table grows with the clips, a layer shard with its neurons times k (about 0.6 kB
per neuron with k=5 on YAMNet), and the page itself with neither.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dissect import artifacts
from dissect.report.cards import slug

SHARD_DIR = "data"
CLIPS_FILE = f"{SHARD_DIR}/clips.js"
TOP_FILE = f"{SHARD_DIR}/top.js"
CLIP_FIELDS = ("id", "audio", "image", "caption")

PREFIX = "(window.DISSECT_SHARDS = window.DISSECT_SHARDS || []).push("
SUFFIX = ");\n"
_JS_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}


def layer_file(index: int, layer: str) -> str:
    """Report-relative path of the shard of the ``index``-th layer (unique by the index)."""
    return f"{SHARD_DIR}/{index:03d}-{slug(layer, 40)}.js"


def to_js(payload: dict[str, Any]) -> str:
    """The shard statement for ``payload`` (compact JSON, markup characters escaped).

    Raises:
        ValueError: a non-finite float (encode those as strings first, see cards.round_sig).
    """
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, repl in _JS_ESCAPES.items():
        text = text.replace(ch, repl)
    return PREFIX + text + SUFFIX


def parse_js(text: str) -> dict[str, Any]:
    """The payload of a shard statement (inverse of :func:`to_js`).

    Raises:
        ValueError: not a shard statement.
    """
    if not (text.startswith(PREFIX) and text.endswith(SUFFIX)):
        raise ValueError("not a dissect report shard")
    return json.loads(text[len(PREFIX):-len(SUFFIX)])


def read_shard(path: str | Path) -> dict[str, Any]:
    """Read one ``data/*.js`` file back into its payload."""
    return parse_js(Path(path).read_text(encoding="utf-8"))


def write_shard(out: Path, rel: str, payload: dict[str, Any]) -> str:
    """Write ``payload`` to ``out/rel`` atomically; returns ``rel``."""
    with artifacts.atomic_path(out / rel) as tmp:
        tmp.write_text(to_js(payload), encoding="utf-8")
    return rel
