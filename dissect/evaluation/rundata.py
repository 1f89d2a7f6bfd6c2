"""Read a finished run directory for scoring and pruning: clips, dense activations, captions and
one merged record per neuron (description, keywords, closed-set concepts, top clips)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dissect import artifacts
from dissect.rows import read_rows


def read_clips(run_dir: str | Path) -> list[dict[str, Any]]:
    """``clips.jsonl`` rows, in activation-row order."""
    return artifacts.read_jsonl(Path(run_dir) / artifacts.CLIPS)


def read_heldout(run_dir: str | Path) -> list[dict[str, Any]]:
    """``heldout.jsonl`` rows (clips ``probe.holdout`` kept out of the dissection); empty when
    the run held none out or predates the file."""
    path = Path(run_dir) / artifacts.HELDOUT
    return artifacts.read_jsonl(path) if path.is_file() else []


def layer_names(run_dir: str | Path) -> list[str]:
    """Layers in recording order (from ``exemplars.jsonl``)."""
    rows = artifacts.read_jsonl(Path(run_dir) / artifacts.EXEMPLARS)
    return list(dict.fromkeys(r["layer"] for r in rows))


def load_activations(run_dir: str | Path, layer: str) -> np.ndarray:
    """Dense activations ``[N clips, U units]`` as float32 (needs ``record.dense=true``)."""
    from dissect.recording.store import load_activations as load

    try:
        return load(Path(run_dir), layer).numpy()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} (scoring needs them)") from None


def caption_parts(run_dir: str | Path) -> dict[str, list[str]]:
    """clip id -> its captions, one string per captioner (failed captions left out)."""
    out: dict[str, list[str]] = {}
    for r in artifacts.read_jsonl(Path(run_dir) / artifacts.CAPTIONS):
        if r.get("error") is None and r.get("text"):
            out.setdefault(r["clip"], []).append(str(r["text"]))
    return out


def combined_captions(run_dir: str | Path, named: bool = True) -> dict[str, str]:
    """clip id -> the combined caption (as the describe stages use it; ``named=False``: the
    DB text, without captioner names)."""
    from dissect.description.captions import captions_by_clip

    return captions_by_clip(run_dir, named)


def neuron_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """One plain record per summarised neuron (:meth:`dissect.rows.NeuronRow.record`), in
    ``summaries.jsonl`` order: ``layer``, ``unit``, ``description``
    (:func:`dissect.rows.summary_concept`), ``llm``, ``keywords`` (dict of lists, may be
    empty), ``closed`` (``{method: [[concept, score], ...]}``), ``top_clips`` (the exemplar
    clip ids, best first), ``shown`` (the checked description the report shows: ``{"text",
    "kind", "terms": [{"term", "auroc", "effect", "p", "support"}, ...]}``; None when the
    explain stage has not run or the neuron has no row)."""
    return [r.record() for r in read_rows(run_dir) if r.sources["summary"]]


def record_info(run_dir: str | Path) -> dict[str, Any]:
    """The ``record`` stage's manifest info (adapter, source, head_layer, class_names, ...)."""
    return dict(artifacts.Manifest(run_dir).stages.get("record", {}).get("info", {}))


def run_config(run_dir: str | Path) -> dict[str, Any]:
    """``config.yaml`` as a plain dict (empty when missing)."""
    path = Path(run_dir) / artifacts.CONFIG
    if not path.is_file():
        return {}
    from omegaconf import OmegaConf

    return dict(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
