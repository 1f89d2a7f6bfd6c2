"""Description-guided ensembling: keep only the units whose descriptions match chosen concepts.

A finished dissect run directory describes every recorded neuron (``layer``, ``unit``):

* ``descriptions.csv``: ``description``, ``top_concepts`` (``"db:pitch=0.532; db:noise=0.100"``)
  and ``keywords`` (``"bright, pitch, piano"``);
* ``concepts.jsonl``: ``closed`` (``{method: [[concept, score], ...]}``, best first) and
  ``keywords`` (``{"adjectives": [...], "nouns": [...], ...}``);
* ``summaries.jsonl``: ``calibrated`` (or ``high``) summaries, used as the description when
  ``descriptions.csv`` is absent.

:func:`select_units` keeps the units for which any chosen term matches in any chosen field:

* ``description`` / ``keywords``: the term occurs as a whole word or phrase, case-insensitive,
  optionally followed by a plural ``s``/``es`` (``pitch`` matches "Pitch", "pitches" and
  "high-pitch", not "pitched" or "stone" for ``tone``). Only the *high* side of a description
  counts: a contrastive rule-based description ``"Responds most to ...; least to: ..."`` is cut
  at ``least to`` (:func:`high_side`), so a unit that is *silent* for noise is not a noise unit;
* ``concepts``: the same test on the names of the unit's ``top_k`` closed-set concepts per
  method whose score is at least ``min_score``.

With ``size``, at most ``size`` units are kept, ranked by how well their texts fit the terms
(:func:`term_similarity`: cosine similarity, under all-MiniLM-L6-v2, between a term and the
unit's high-side description + keywords + concepts). By default the terms take turns
(:func:`pick_balanced`), so a budget covers every chosen concept; ties keep run order. The
comparison at equal and smaller dimension in ``docs/hear.md`` uses this.

The result (:class:`UnitSelection`) maps each layer to its kept units and carries the run's model
config, so :func:`dissect.hear.guided.guided_member` rebuilds the model and wraps it as a
HEAR :class:`~dissect.hear.api.EmbeddingModel` with ``layer={layer: units}``. Several
selections (e.g. CREPE's pitch units + a speech model's phonetic units) make a compact ensemble
with :func:`dissect.hear.guided.guided_ensemble` (``cat`` of the kept units).
:func:`random_units` draws the same number of units at random from the same layers: the
equal-dimension control for the comparison with full concatenation.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dissect.rows import and_summary
from dissect.util import csv_uncell

FIELDS = ("description", "keywords", "concepts")
Key = tuple[str, int]


@dataclass
class UnitSelection:
    """Units kept from one run.

    Attributes:
        run_dir: the dissect run directory.
        model: the run's ``model`` config (``name``, ``source``, ``site``, ``options``), or {}.
        units: layer -> kept unit indices (sorted), layers in run order.
        terms: the terms that were matched.
        matched: ``"layer:unit"`` -> the terms that matched it.
        population: layer -> every described unit (what a random control draws from).
        scores: ``"layer:unit"`` -> ranking score of each matched unit (only with ``size``).
    """

    run_dir: str
    model: dict[str, Any]
    units: dict[str, list[int]]
    terms: list[str]
    matched: dict[str, list[str]] = field(default_factory=dict)
    population: dict[str, list[int]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of kept units (the member's embedding width)."""
        return sum(len(u) for u in self.units.values())


# --------------------------------------------------------------------------- reading a run
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _split_concepts(cell: str) -> list[tuple[str, str, float]]:
    """``"db:pitch=0.532; db:noise=0.100"`` -> ``[(method, concept, score), ...]``."""
    out = []
    for item in filter(None, (x.strip() for x in (cell or "").split(";"))):
        method, _, rest = item.partition(":") if ":" in item else ("", "", item)
        name, _, score = rest.rpartition("=")
        try:
            out.append((method, name.strip(), float(score)))
        except ValueError:
            out.append((method, rest.strip(), float("inf")))
    return out


def read_unit_texts(run_dir: str | Path, top_k: int = 1, min_score: float = 0.0
                    ) -> dict[Key, dict[str, list[str]]]:
    """Per ``(layer, unit)``, the texts of each field (see the module docstring), in run order.

    Raises:
        FileNotFoundError: none of descriptions.csv, concepts.jsonl, summaries.jsonl exists.
    """
    run = Path(run_dir)
    texts: dict[Key, dict[str, list[str]]] = {}

    def slot(layer: Any, unit: Any) -> dict[str, list[str]]:
        return texts.setdefault((str(layer), int(unit)), {f: [] for f in FIELDS})

    def concepts(entries: Iterable[tuple[str, str, float]]) -> list[str]:
        per_method: dict[str, list[tuple[str, float]]] = {}
        for method, name, score in entries:
            per_method.setdefault(method, []).append((name, score))
        return [n for lst in per_method.values() for n, s in lst[:top_k] if s >= min_score]

    found = False
    if (run / "descriptions.csv").exists():
        found = True
        with open(run / "descriptions.csv", encoding="utf-8", newline="") as fh:
            for raw in csv.DictReader(fh):
                row = {k: csv_uncell(v or "") for k, v in raw.items()}
                t = slot(row["layer"], row["unit"])
                t["description"].append(row.get("description") or "")
                t["keywords"] += [k.strip() for k in (row.get("keywords") or "").split(",")]
                t["concepts"] += concepts(_split_concepts(row.get("top_concepts") or ""))
    if (run / "concepts.jsonl").exists():
        found = True
        for row in _read_jsonl(run / "concepts.jsonl"):
            t = slot(row["layer"], row["unit"])
            for values in (row.get("keywords") or {}).values():
                t["keywords"] += [str(v) for v in values]
            closed = row.get("closed") or {}
            t["concepts"] += concepts((m, str(c), float(s))
                                      for m, lst in closed.items() for c, s in lst)
    if (run / "summaries.jsonl").exists():
        found = True
        for row in _read_jsonl(run / "summaries.jsonl"):
            t = slot(row["layer"], row["unit"])
            if not any(t["description"]):
                t["description"].append(and_summary(row))
    if not found:
        raise FileNotFoundError(f"{run}: no descriptions.csv, concepts.jsonl or summaries.jsonl "
                                "(run the describe stages first)")
    return texts


def run_model_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``model`` section of the run's ``config.yaml`` ({} when there is none)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        return {}
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return dict(cfg.get("model") or {}) if isinstance(cfg, dict) else {}


# --------------------------------------------------------------------------- matching
_LOW_SIDE = re.compile(r"[;,.]?\s*\bleast to:.*$", re.IGNORECASE | re.DOTALL)


def high_side(description: str) -> str:
    """The part of a description about the unit's *top* clips: a contrastive rule-based
    description (``"Responds most to sounds described as: a, b; least to: c, d."``) is cut
    before ``least to:``; other texts are returned unchanged."""
    return _LOW_SIDE.sub("", description or "").strip()


def term_similarity(texts: Mapping[Key, Mapping[str, Sequence[str]]], terms: Sequence[str],
                    fields: Sequence[str] = FIELDS, embedder: Any = None):
    """``[n_units, n_terms]`` cosine similarities (units in ``texts`` order) between each term
    and each unit's text (its ``fields`` joined: high-side description, keywords, concepts),
    all-MiniLM-L6-v2 by default.

    Args:
        texts: ``(layer, unit)`` -> field -> texts (:func:`read_unit_texts`).
        embedder: anything with ``encode(list[str]) -> [n, d]`` L2-normalised rows.
    """
    import numpy as np

    if not texts:
        return np.zeros((0, len(terms)), dtype=np.float32)
    if embedder is None:
        from dissect.description.embed import default_embedder

        embedder = default_embedder()
    docs = []
    for k in texts:
        parts = [high_side(x) if f == "description" else x
                 for f in fields for x in texts[k].get(f, []) if x]
        docs.append("; ".join(p for p in parts if p) or "(none)")
    return np.asarray(embedder.encode(docs)) @ np.asarray(embedder.encode(list(terms))).T


def rank_scores(texts: Mapping[Key, Mapping[str, Sequence[str]]], terms: Sequence[str],
                fields: Sequence[str] = FIELDS, embedder: Any = None) -> dict[Key, float]:
    """Per unit, the largest :func:`term_similarity` over the terms."""
    sim = term_similarity(texts, terms, fields, embedder)
    return {k: float(v) for k, v in zip(texts, sim.max(axis=1) if len(sim) else [],
                                        strict=True)}


def pick_balanced(candidates: Sequence[Sequence[int]], sim, size: int) -> list[tuple[int, int]]:
    """Take turns between terms. Term ``j`` offers its candidates (unit indices) best
    ``sim[:, j]`` first (ties: lower index). Each round, every term that still has a unit not
    taken yet gives its next one, the terms ordered by that unit's similarity (best first; ties:
    term order), until ``size`` units are taken.

    Returns:
        ``[(unit index, term index), ...]`` in pick order, at most ``size`` long.
    """
    queues = [sorted(c, key=lambda i, j=j: (-float(sim[i, j]), i))
              for j, c in enumerate(candidates)]
    taken: set[int] = set()
    out: list[tuple[int, int]] = []
    pos = [0] * len(queues)
    while len(out) < size:
        offers = []
        for j, q in enumerate(queues):
            while pos[j] < len(q) and q[pos[j]] in taken:
                pos[j] += 1
            if pos[j] < len(q):
                offers.append((-float(sim[q[pos[j]], j]), j))
        if not offers:
            break
        for _, j in sorted(offers):
            q = queues[j]
            while pos[j] < len(q) and q[pos[j]] in taken:  # taken earlier this round
                pos[j] += 1
            if pos[j] < len(q) and len(out) < size:
                taken.add(q[pos[j]])
                out.append((q[pos[j]], j))
                pos[j] += 1
    return out


def term_pattern(term: str) -> re.Pattern[str]:
    """Whole-word / whole-phrase, case-insensitive, optional plural ``s``/``es``."""
    words = [re.escape(w) for w in term.strip().split()]
    if not words:
        raise ValueError("empty term")
    return re.compile(r"\b" + r"[\s_-]+".join(words) + r"(?:e?s)?\b", re.IGNORECASE)


def select_units(run_dir: str | Path, terms: Sequence[str] | str, *,
                 fields: Sequence[str] = FIELDS, layers: Sequence[str] | None = None,
                 top_k: int = 1, min_score: float = 0.0, size: int | None = None,
                 balance: bool = True, embedder: Any = None) -> UnitSelection:
    """Keep the units of ``run_dir`` whose descriptions match any of ``terms``.

    Args:
        terms: concepts / keywords (a list, or one comma-separated string).
        fields: which texts to search (``description``, ``keywords``, ``concepts``).
        layers: only these layers (default: all).
        top_k, min_score: which closed-set concepts count (per method).
        size: keep at most this many matched units (:func:`term_similarity` ranks them).
        balance: with ``size``, take turns between the terms (:func:`pick_balanced`: each
            term's best-matching unit, then each term's second, ...), so that one frequent
            or well-embedded term cannot fill the budget; False keeps the units with the
            largest similarity to any term. When the budget is smaller than the number of
            terms, the terms whose best unit fits best are served first.
        embedder: the text embedder for the ranking (default all-MiniLM-L6-v2).
    """
    if isinstance(terms, str):
        terms = [t for t in (x.strip() for x in terms.split(",")) if t]
    if not terms:
        raise ValueError("select_units: no terms")
    bad = set(fields) - set(FIELDS)
    if bad:
        raise ValueError(f"select_units: unknown fields {sorted(bad)}; choose from {FIELDS}")
    patterns = [(t, term_pattern(t)) for t in terms]
    texts = read_unit_texts(run_dir, top_k, min_score)
    units: dict[str, list[int]] = {}
    population: dict[str, list[int]] = {}
    matched: dict[str, list[str]] = {}
    for (layer, unit), by_field in texts.items():
        if layers is not None and layer not in layers:
            continue
        population.setdefault(layer, []).append(unit)
        hits = [t for t, p in patterns
                if any(p.search(high_side(x) if f == "description" else x)
                       for f in fields for x in by_field[f] if x)]
        if hits:
            units.setdefault(layer, []).append(unit)
            matched[f"{layer}:{unit}"] = hits
    scores: dict[str, float] = {}
    if size is not None:
        if size < 1:
            raise ValueError(f"select_units: size must be >= 1, got {size}")
        keys = [(layer, u) for layer, us in units.items() for u in us]
        sim = term_similarity({k: texts[k] for k in keys}, terms, fields, embedder)
        if balance:
            cands = [[i for i, (layer, u) in enumerate(keys) if t in matched[f"{layer}:{u}"]]
                     for t in terms]
            picks = pick_balanced(cands, sim, size)
        else:
            best = sim.max(axis=1) if len(keys) else []
            order = sorted(range(len(keys)), key=lambda i: (-float(best[i]), i))[:size]
            picks = [(i, int(sim[i].argmax())) for i in order]
        units, scores = {}, {}
        for i, j in sorted(picks):
            layer, u = keys[i]
            units.setdefault(layer, []).append(u)
            scores[f"{layer}:{u}"] = float(sim[i, j])
        matched = {k: v for k, v in matched.items() if k in scores}
    return UnitSelection(str(run_dir), run_model_config(run_dir),
                         {k: sorted(v) for k, v in units.items()}, list(terms), matched,
                         {k: sorted(v) for k, v in population.items()}, scores)


def random_units(selection: UnitSelection, seed: int = 0, size: int | None = None,
                 pool: str = "selected") -> UnitSelection:
    """The control: ``size`` (default: the selection's size) units drawn at random from the
    selection's layers, as many per layer as the selection keeps when ``size`` is not given.

    ``pool="all"`` draws ``size`` units from every described layer of the run instead (the
    control for "does the description choose better than chance among all units").
    """
    rng = random.Random(seed)
    if pool not in ("selected", "all"):
        raise ValueError(f"random_units: pool must be 'selected' or 'all', got {pool!r}")
    if pool == "all":
        everything = [(layer, u) for layer, us in selection.population.items() for u in us]
        n = selection.size if size is None else size
        if n > len(everything):
            raise ValueError(f"random_units: {n} units asked, {len(everything)} available")
        order = list(selection.population)
        units = {}
        for layer, u in sorted(rng.sample(everything, n), key=lambda x: (order.index(x[0]), x[1])):
            units.setdefault(layer, []).append(u)
        return replace(selection, units=units, terms=[f"random(seed={seed}, pool=all)"],
                       matched={}, scores={})
    if size is None:
        units = {layer: sorted(rng.sample(selection.population[layer], len(kept)))
                 for layer, kept in selection.units.items()}
    else:
        pool = [(layer, u) for layer in selection.units for u in selection.population[layer]]
        if size > len(pool):
            raise ValueError(f"random_units: {size} units asked, {len(pool)} available")
        units = {}
        for layer, u in sorted(rng.sample(pool, size), key=lambda x: (list(selection.units)
                                                                      .index(x[0]), x[1])):
            units.setdefault(layer, []).append(u)
    return replace(selection, units=units, terms=[f"random(seed={seed})"], matched={},
                   scores={})


def unit_columns(selection: UnitSelection, layout: Mapping[str, Sequence[int]]) -> list[int]:
    """Column indices of ``selection``'s units in an embedding that concatenates ``layout``
    (layer -> units, in that order, e.g. ``selection.population`` for "every unit"), so a unit
    subset can be read from one cached embedding of all units
    (:meth:`dissect.hear.embed.EmbeddedTask.select`).

    Raises:
        KeyError: a selected unit is not in ``layout``.
    """
    offset, where = 0, {}
    for layer, units in layout.items():
        for i, u in enumerate(units):
            where[(layer, int(u))] = offset + i
        offset += len(units)
    missing = [f"{layer}:{u}" for layer, us in selection.units.items() for u in us
               if (layer, int(u)) not in where]
    if missing:
        raise KeyError(f"unit_columns: {missing[:5]} not in the layout")
    return [where[(layer, int(u))] for layer, us in selection.units.items() for u in us]


# --------------------------------------------------------------------------- trusted guidance
def _float(cell: str | None) -> float | None:
    try:
        v = float(cell) if cell not in (None, "") else None
    except ValueError:
        return None
    return v if v is None or v == v else None


def confirmed_units(run_dir: str | Path) -> dict[Key, dict[str, Any]]:
    """The units of ``run_dir`` whose shown description was confirmed on held-out clips
    (``descriptions.csv`` ``status == "confirmed"``), with what guidance may use:
    ``description`` (its high side), ``evidence`` (the evidence terms, ``evidence.jsonl``) and
    ``test_correlation`` (the description's correlation with the activation on the test
    clips, the held-out score).

    Raises:
        FileNotFoundError: the run has no ``descriptions.csv`` (run the explain stage).
    """
    from dissect.explain.choice import CONFIRMED

    run = Path(run_dir)
    if not (run / "descriptions.csv").exists():
        raise FileNotFoundError(f"{run}/descriptions.csv: missing (run the explain stage)")
    evidence: dict[Key, list[str]] = {}
    if (run / "evidence.jsonl").exists():
        for row in _read_jsonl(run / "evidence.jsonl"):
            evidence[(str(row["layer"]), int(row["unit"]))] = [
                str(e["term"]) for e in row.get("evidence") or [] if e.get("term")]
    out: dict[Key, dict[str, Any]] = {}
    with open(run / "descriptions.csv", encoding="utf-8", newline="") as fh:
        for raw in csv.DictReader(fh):
            row = {k: csv_uncell(v or "") for k, v in raw.items()}
            if row.get("status") != CONFIRMED:
                continue
            key = (str(row["layer"]), int(row["unit"]))
            out[key] = {"description": high_side(row.get("description") or ""),
                        "evidence": evidence.get(key, []),
                        "test_correlation": _float(row.get("test_correlation"))}
    return out


def select_for_labels(run_dirs: Sequence[str | Path], terms: Sequence[str], size: int
                      ) -> tuple[list[tuple[int, str, int]], dict[str, Any]]:
    """Description-guided units for a task: across ``run_dirs``, the units whose
    *confirmed* description or evidence names one of the task's label ``terms``
    (:func:`term_pattern`), ranked by their held-out test correlation (best first; units
    without one last), at most ``size``.

    Returns:
        ``(picked, info)``: ``picked`` is ``[(run index, layer, unit), ...]`` best first;
        ``info`` has ``matched`` (how many units matched at all), ``per_run`` (matched per
        run) and ``units`` (``"run:layer:unit"`` -> matched terms and test correlation).
        Fewer than ``size`` units come back when fewer matched: guidance never pads with
        units it has no reason to keep.
    """
    if size < 1:
        raise ValueError(f"select_for_labels: size must be >= 1, got {size}")
    patterns = [(t, term_pattern(t)) for t in terms if t.strip()]
    if not patterns:
        raise ValueError("select_for_labels: no terms")
    found = []
    for i, run in enumerate(run_dirs):
        for (layer, unit), u in confirmed_units(run).items():
            texts = [u["description"], *u["evidence"]]
            hits = [t for t, p in patterns if any(p.search(x) for x in texts if x)]
            if hits:
                score = u["test_correlation"]
                found.append((-(score if score is not None else float("-inf")), i, layer,
                              unit, hits, score))
    found.sort(key=lambda x: x[:4])
    picked = [(i, layer, unit) for _, i, layer, unit, _, _ in found[:size]]
    info = {"matched": len(found),
            "per_run": [sum(1 for f in found if f[1] == i) for i in range(len(run_dirs))],
            "units": {f"{i}:{layer}:{unit}": {"terms": hits, "test_correlation": score}
                      for _, i, layer, unit, hits, score in found[:size]}}
    return picked, info


def top_variance_units(run_dir: str | Path, layers: Sequence[str]) -> list[tuple[str, int, float]]:
    """Every unit of ``layers`` ranked by the variance of its pooled activation over the
    run's own probe clips (largest first): ``[(layer, unit, variance), ...]``. Label-free and
    task-free, the usual unsupervised baseline for picking units; needs ``record.dense``.
    """
    from dissect.recording.store import load_activations

    out = []
    for layer in layers:
        a = load_activations(Path(run_dir), layer).double()
        var = a.var(dim=0, unbiased=True) if a.shape[0] > 1 else a.new_zeros(a.shape[1])
        out += [(layer, u, float(v)) for u, v in enumerate(var.tolist())]
    out.sort(key=lambda x: (-x[2], layers.index(x[0]), x[1]))
    return out
