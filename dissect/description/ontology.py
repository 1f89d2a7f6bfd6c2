"""The AudioSet ontology, to name tags at the right level of generality.

YAMNet's 521 classes are nodes of the AudioSet ontology (``data/audioset_ontology.json``, CC BY-SA
4.0, Gemmeke et al. 2017). A clip tagged "Dog" also carries the tag's ancestors as evidence
terms ("Domestic animals, pets", "Animal"), so the explain step chooses the level with the same
held-out test as every other candidate: a unit that fires for Dog and Cat clips alike is best
described by their common parent (its evidence term covers both), one that fires for Dog only
by "Dog" (the parent's term also covers the cat clips it does not fire for).
"""

from __future__ import annotations

import json
from functools import lru_cache

ONTOLOGY_FILE = "audioset_ontology.json"


@lru_cache(maxsize=1)
def ontology() -> dict[str, dict]:
    """Class name -> its node (``id``, ``name``, ``child_ids``, ...), read once.

    Raises:
        FileNotFoundError: the data file is missing (named).
    """
    from dissect.description.concepts import data_dir

    path = data_dir() / ONTOLOGY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the AudioSet ontology is missing")
    nodes = json.loads(path.read_text(encoding="utf-8"))
    return {n["name"]: n for n in nodes}


@lru_cache(maxsize=1)
def _parents() -> dict[str, list[str]]:
    """Class name -> the names of its parents (a class may have several)."""
    by_id = {n["id"]: n["name"] for n in ontology().values()}
    out: dict[str, list[str]] = {}
    for n in ontology().values():
        for c in n.get("child_ids") or []:
            if c in by_id:
                out.setdefault(by_id[c], []).append(n["name"])
    return out


def ancestors(name: str, levels: int | None = None) -> list[str]:
    """The ontology ancestors of class ``name``, nearest first (breadth-first over every
    parent; each once), at most ``levels`` steps up (None: up to the roots). A name that is
    not in the ontology has none."""
    parents = _parents()
    out: list[str] = []
    frontier = [name]
    depth = 0
    while frontier and (levels is None or depth < levels):
        nxt = []
        for node in frontier:
            for p in parents.get(node, []):
                if p not in out and p != name:
                    out.append(p)
                    nxt.append(p)
        frontier = nxt
        depth += 1
    return out
