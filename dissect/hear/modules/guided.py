"""HEAR module: a description-guided ensemble (:mod:`dissect.ensemble.guided`).

``load_model(model_file_path, terms="pitch,note,tone", fields=None, top_k=1, min_score=0.0,
size=None, op="cat", hop_ms=None, device="cpu")``

* ``model_file_path`` (required): one or more finished dissect run directories, separated by
  ``os.pathsep`` (``:``) or ``;``. Each run's model (its ``config.yaml``) is rebuilt and only the
  units whose descriptions / keywords / closed-set concepts match ``terms`` are kept, e.g. a
  CREPE run with ``terms="pitch"`` plus a speech-model run with ``terms="speech,vowel"``.
* ``terms``: comma-separated terms for every run, or one ``|``-separated group per run
  (``"pitch,note|speech,vowel"``).
* ``size``: keep at most this many units per run; the terms take turns, each offering its
  best-matching unit by description similarity (:func:`dissect.ensemble.guided.select_units`,
  ``balance=True``); an int, or ``|``-separated per run (``"48|16"``).
* ``hop_ms``: overrides the run's CREPE hop (HEAR wants <= 50 ms).
* The kept units of all runs are concatenated (``op="cat"``); time alignment as in
  :mod:`dissect.ensemble.model`. Scene: the members' scene embeddings concatenated.
"""

import os
import re

from dissect.ensemble.guided import select_units
from dissect.ensemble.model import EnsembleModel
from dissect.hear.api import get_scene_embeddings, get_timestamp_embeddings
from dissect.hear.guided import guided_member

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]


def load_model(model_file_path: str = "", terms: str = "pitch,note,tone", fields=None,
               top_k: int = 1, min_score: float = 0.0, size=None, op: str = "cat",
               hop_ms=None, device: str = "cpu") -> EnsembleModel:
    runs = [r for r in re.split(f"[;{re.escape(os.pathsep)}]", model_file_path or "") if r]
    if not runs:
        raise ValueError("guided: model_file_path must name at least one dissect run directory")
    groups = terms.split("|")
    if len(groups) not in (1, len(runs)):
        raise ValueError(f"guided: {len(groups)} term groups for {len(runs)} runs")
    sizes = [None if x in ("", "None", "none") else int(x)
             for x in str(size if size is not None else "").split("|")]
    if len(sizes) not in (1, len(runs)):
        raise ValueError(f"guided: {len(sizes)} sizes for {len(runs)} runs")
    members = []
    for i, run in enumerate(runs):
        kw = {"fields": fields} if fields else {}
        sel = select_units(run, groups[i if len(groups) > 1 else 0], top_k=top_k,
                           min_score=min_score, size=sizes[i if len(sizes) > 1 else 0], **kw)
        opts = {"hop_ms": float(hop_ms)} if hop_ms and sel.model.get("name") == "crepe" else {}
        members.append(guided_member(sel, device=device, adapter_options=opts))
    return EnsembleModel(members, op, name="guided")
