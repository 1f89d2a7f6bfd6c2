"""Neurons vs SAE features, side by side: one markdown table per finished run.

    python benchmarks/neurons_vs_features.py RUN_DIR [RUN_DIR ...] [--examples N]

Each run must hold a layer ``L`` and its SAE latents ``sae:L`` (a ``dissect run`` with
``model.features=[FILE] model.layers=[L,sae:L]``), so both are compared on the same clips, the
same explain split (one ``explain.split_seed``), the same captioners and the same terms. For each
layer of the run (neurons ``L`` and features ``sae:L`` next to each other) the table gives:

* ``units``: rows of ``explanations.jsonl`` for the layer;
* ``confirmed``: units whose status is ``confirmed`` (a description confirmed on the validation
  clips), count and percent of ``units``;
* ``test r median [IQR]``: the median and the 25th-75th percentiles of the shown description's
  test-split correlation (``test.correlation``) over the confirmed units;
* ``concepts``: distinct concepts covered - the number of distinct *first claims* of the shown
  descriptions of confirmed units (:func:`concept_key`: the first claim's first term, with
  synonymous attributes such as ``f0``/``pitch`` merged, see :func:`synonym_attributes`);
* ``top concept``: the concept most confirmed units share (ties alphabetically), with their
  count - how much of the layer repeats one concept;
* ``polysemantic``: confirmed units whose evidence holds two unrelated strong terms
  (:func:`is_polysemantic`).

Then the ten confirmed units of each ``sae:`` layer with the highest test correlation (ties by
unit id), with their descriptions verbatim and their test correlation, p and detection AUROC.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np

#: A polysemantic unit's terms: among the first TOP of its ranked evidence, AUROC >= MIN_AUROC.
TOP = 3
MIN_AUROC = 0.85
#: Attributes that are one graded scale: two of their terms (different values of one attribute,
#: or any two of a family, such as ``pitch=E4`` and ``register=middle``) are related.
SCALE_FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({"f0", "pitch", "register"}),
    frozenset({"loudness"}), frozenset({"brightness"}), frozenset({"tonality"}),
    frozenset({"bandwidth"}), frozenset({"rhythm"}), frozenset({"noise_colour"}),
    frozenset({"pitched"}),
)
#: Attribute pairs related whatever their values (a nucleus is a phone of the word).
ALWAYS_RELATED: frozenset[frozenset[str]] = frozenset({frozenset({"phone", "nucleus"})})
#: One term *implies* another when at least this fraction of the clips whose captions carry it
#: also carry the other (a word and its phones, an instrument and its family, a tag and its
#: AudioSet ancestor, ``noise_colour=pink`` and ``kind=noise``, ``word=no`` and ``kind=speech``).
IMPLIES = 0.9


#: Numerals spelled out, so the transcript's ``word=5`` and ``word=five`` (and a label
#: ``digit=5``) are one value.
NUMBER_WORDS = dict(enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven",
                               "eight", "nine")))


def canonical_value(value: str) -> str:
    """A term's value for comparison: a numeral 0-9 spelled out (``"5"`` -> ``"five"``);
    other values as they are."""
    v = value.strip()
    return NUMBER_WORDS[int(v)] if v.isdigit() and int(v) < 10 else v


def split_term(term: str) -> tuple[str, str]:
    """``"pitch=E4"`` -> ``("pitch", "E4")``.

    Raises:
        ValueError: no ``=`` in ``term``.
    """
    attr, sep, value = term.partition("=")
    if not sep:
        raise ValueError(f"evidence term {term!r} is not attribute=value")
    return attr, value


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (a clear error when it is missing or not JSON)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (is {path.parent} a finished dissect run?)")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: not JSON ({exc})") from exc
    return rows


def shown_candidate(row: dict) -> dict | None:
    """The candidate of an explanations row whose text is the shown description (or None)."""
    for cand in row.get("candidates") or []:
        if cand.get("text") == row.get("description"):
            return cand
    return None


def synonym_attributes(rows: Iterable[dict]) -> dict[str, str]:
    """Attribute -> canonical attribute, from the claims of every candidate: attributes that
    share a value inside one claim (``["f0=E4", "pitch=E4"]``) are synonyms; the canonical name
    is the alphabetically first of each group (``f0`` for f0/pitch, ``nucleus`` for
    nucleus/phone)."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    for row in rows:
        for cand in row.get("candidates") or []:
            for claim in cand.get("claims") or []:
                terms = [split_term(t) for t in claim]
                for (a1, v1), (a2, v2) in combinations(terms, 2):
                    if v1 == v2:
                        r1, r2 = sorted((find(a1), find(a2)))
                        parent[r2] = r1
    return {a: find(a) for a in parent}


def concept_key(row: dict, synonyms: dict[str, str]) -> str | None:
    """A confirmed unit's concept: its shown description's first claim's first term, the
    attribute mapped to its canonical synonym (``pitch=E4`` -> ``f0=E4``) and the value by
    :func:`canonical_value` (``word=5`` -> ``word=five``); None without one."""
    cand = shown_candidate(row)
    claims = (cand or {}).get("claims") or []
    if not claims or not claims[0]:
        return None
    attr, value = split_term(claims[0][0])
    return f"{synonyms.get(attr, attr)}={canonical_value(value)}"


def term_clips(captions: Iterable[dict]) -> dict[str, set[str]]:
    """Term -> the clips whose caption rows (all captioners pooled) carry it."""
    out: dict[str, set[str]] = {}
    for cap in captions:
        for t in cap.get("terms") or []:
            out.setdefault(t, set()).add(str(cap.get("clip")))
    return out


def implied(t1: str, t2: str, clips: dict[str, set[str]]) -> bool:
    """Whether one term implies the other in the run's captions: of the clips carrying the
    rarer one, at least :data:`IMPLIES` carry the other (False for a term no caption has)."""
    a, b = clips.get(t1, set()), clips.get(t2, set())
    if not a or not b:
        return False
    return len(a & b) >= IMPLIES * min(len(a), len(b))


def related(t1: str, t2: str, clips: dict[str, set[str]] | None = None) -> bool:
    """Whether two evidence terms name one concept (not a sign of polysemanticity):

    1. the same value (:func:`canonical_value`) under two attributes (``f0=E4``/``pitch=E4``,
       ``phone=/i/``/``nucleus=/i/``) or spelled two ways (``word=5``/``word=five``);
    2. both attributes in one graded scale family (:data:`SCALE_FAMILIES`: ``pitch=E4`` and
       ``pitch=F4``, ``pitch=E4`` and ``register=middle``, ``noise_colour=pink`` and
       ``noise_colour=brown``);
    3. a pair of :data:`ALWAYS_RELATED` attributes (``phone``/``nucleus``);
    4. one term implies the other in the run's captions (``clips``, :func:`term_clips`;
       :func:`implied`): ``word=zero``/``phone=/z/``, ``instrument=Tuba``/``family=Brass``,
       ``audioset_tag=Dog``/``audioset_tag=Animal`` (ancestors are terms too),
       ``word=no``/``kind=speech``.

    Anything else is unrelated: two values of one label attribute (``word=one``/``word=two``,
    ``instrument=Tuba``/``instrument=Flute``) or two attributes of different families
    (``instrument=Trombone``/``pitch=B4``) that do not imply each other.
    """
    a1, v1 = split_term(t1)
    a2, v2 = split_term(t2)
    if canonical_value(v1) == canonical_value(v2):
        return True
    if any(a1 in fam and a2 in fam for fam in SCALE_FAMILIES):
        return True
    if frozenset({a1, a2}) in ALWAYS_RELATED:
        return True
    return clips is not None and implied(t1, t2, clips)


def strong_terms(evidence: Sequence[dict], top: int = TOP, min_auroc: float = MIN_AUROC
                 ) -> list[str]:
    """The terms among the first ``top`` of a unit's ranked (BH-passed) evidence whose AUROC is
    at least ``min_auroc``."""
    return [e["term"] for e in list(evidence)[:top] if float(e.get("auroc", 0.0)) >= min_auroc]


def is_polysemantic(evidence: Sequence[dict], clips: dict[str, set[str]] | None = None,
                    top: int = TOP, min_auroc: float = MIN_AUROC) -> bool:
    """True when two of :func:`strong_terms` are not :func:`related`."""
    terms = strong_terms(evidence, top, min_auroc)
    return any(not related(a, b, clips) for a, b in combinations(terms, 2))


def _q(vals: Sequence[float]) -> str:
    if not len(vals):
        return "-"
    q25, q50, q75 = np.quantile(np.asarray(vals, float), [0.25, 0.5, 0.75])
    return f"{q50:.3f} [{q25:.3f}, {q75:.3f}]"


def layer_stats(explanations: Sequence[dict], evidence: Sequence[dict],
                captions: Sequence[dict] = ()) -> dict[str, dict]:
    """Per layer (in first-seen order): ``units``, ``confirmed``, ``test_r`` (the confirmed
    units' test correlations, a list), ``concepts`` (distinct :func:`concept_key` of confirmed
    units; ``concept_counts`` counts the units of each), ``polysemantic`` (confirmed units,
    :func:`is_polysemantic`)."""
    synonyms = synonym_attributes(explanations)
    clips = term_clips(captions)
    ev = {(r["layer"], int(r["unit"])): r.get("evidence") or [] for r in evidence}
    out: dict[str, dict] = {}
    for row in explanations:
        s = out.setdefault(row["layer"], {"units": 0, "confirmed": 0, "test_r": [],
                                          "concepts": set(), "concept_counts": Counter(),
                                          "polysemantic": 0, "rows": []})
        s["units"] += 1
        if row.get("status") != "confirmed":
            continue
        s["confirmed"] += 1
        s["rows"].append(row)
        r = (row.get("test") or {}).get("correlation")
        if r is not None:
            s["test_r"].append(float(r))
        key = concept_key(row, synonyms)
        if key is not None:
            s["concepts"].add(key)
            s["concept_counts"][key] += 1
        if is_polysemantic(ev.get((row["layer"], int(row["unit"])), []), clips):
            s["polysemantic"] += 1
    return out


def top_rows(rows: Sequence[dict], n: int = 10) -> list[dict]:
    """The ``n`` rows with the highest test correlation, ties by unit id (rows without a test
    correlation last)."""
    def key(r):
        c = (r.get("test") or {}).get("correlation")
        return (c is None, -(c or 0.0), int(r["unit"]))
    return sorted(rows, key=key)[:n]


def ordered_layers(layers: Iterable[str]) -> list[str]:
    """Each base layer followed by its ``sae:`` layer; layers without a pair keep their order."""
    layers = list(layers)
    out: list[str] = []
    for name in layers:
        if name.startswith("sae:") and name[4:] in layers:
            continue
        out.append(name)
        if f"sae:{name}" in layers:
            out.append(f"sae:{name}")
    return out


def run_table(run_dir: Path, examples: int = 10, only_paired: bool = True) -> str:
    """The markdown of one run: the per-layer table and the top ``examples`` feature rows."""
    run_dir = Path(run_dir)
    expl = read_jsonl(run_dir / "explanations.jsonl")
    evid = read_jsonl(run_dir / "evidence.jsonl")
    caps_path = run_dir / "captions.jsonl"
    caps = read_jsonl(caps_path) if caps_path.is_file() else []
    stats = layer_stats(expl, evid, caps)
    layers = ordered_layers(stats)
    if only_paired:
        paired = [n for n in layers if n.startswith("sae:") and n[4:] in stats]
        if not paired:
            raise ValueError(f"{run_dir}: no layer with its sae: latents (layers: "
                             f"{sorted(stats)}); record model.layers=[L,sae:L]")
        keep = {n for p in paired for n in (p, p[4:])}
        layers = [n for n in layers if n in keep]
    lines = [f"### {run_dir}", "",
             "| layer | units | confirmed | test r median [IQR] | concepts | top concept | "
             "polysemantic |",
             "|---|---:|---:|---|---:|---|---:|"]
    for name in layers:
        s = stats[name]
        pct = 100.0 * s["confirmed"] / s["units"] if s["units"] else 0.0
        poly = (f"{s['polysemantic']} ({100.0 * s['polysemantic'] / s['confirmed']:.0f}%)"
                if s["confirmed"] else "0")
        top = min(s["concept_counts"].items(), key=lambda kv: (-kv[1], kv[0]), default=None)
        top_txt = f"{top[0]} ({top[1]})" if top else "-"
        lines.append(f"| {name} | {s['units']} | {s['confirmed']} ({pct:.0f}%) | "
                     f"{_q(s['test_r'])} | {len(s['concepts'])} | {top_txt} | {poly} |")
    for name in layers:
        if not name.startswith("sae:") or not examples:
            continue
        lines += ["", f"Top {examples} confirmed units of {name} by test correlation "
                  "(ties by unit id):", "", "| unit | description | test r | p | AUROC |",
                  "|---:|---|---:|---:|---:|"]
        for r in top_rows(stats[name]["rows"], examples):
            t = r.get("test") or {}
            desc = str(r.get("description", "")).replace("|", "\\|")
            lines.append(f"| {r['unit']} | {desc} | {t.get('correlation', '')} | "
                         f"{t.get('p', '')} | {t.get('detection', '')} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished dissect run directories")
    ap.add_argument("--examples", type=int, default=10,
                    help="top confirmed latents listed per sae: layer (default 10)")
    ap.add_argument("--all-layers", action="store_true",
                    help="also list layers without sae: latents")
    args = ap.parse_args(argv)
    for i, run in enumerate(args.runs):
        if i:
            print()
        print(run_table(run, args.examples, only_paired=not args.all_layers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
