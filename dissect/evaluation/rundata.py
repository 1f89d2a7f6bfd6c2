"""Read a finished run directory for scoring and pruning: clips, dense activations, captions and
one merged record per neuron (description, keywords, closed-set concepts, top clips)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dissect import artifacts

#: Marks the start of the "least to" part of a rule-based description.
_LEAST = "; least to:"


def description_text(summary: Mapping[str, Any]) -> str:
    """The text a neuron's description says it responds to.

    The calibrated summary (else the raw high summary). Rule-based summaries read "Responds most
    to sounds described as: X; least to: Y"; only the "most" part is kept, so that words of the
    least-activating clips never count as the neuron's concept.
    """
    text = str(summary.get("calibrated") or summary.get("high") or "")
    if _LEAST in text:
        text = text.split(_LEAST, 1)[0]
    elif str(summary.get("llm", "")).startswith("rule") and ";" in text:
        text = text.split(";", 1)[0]
    return text.strip()


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
    """One record per neuron, in ``summaries.jsonl`` order.

    Keys: ``layer``, ``unit``, ``description`` (:func:`description_text`), ``llm``,
    ``keywords`` (dict of lists, may be empty), ``closed`` (``{method: [[concept, score], ...]}``),
    ``top_clips`` (the exemplar clip ids, best first; from ``exemplars.jsonl``), ``shown``
    (the checked description the report shows, from ``explanations.jsonl``: ``{"text", "kind",
    "terms": [{"term", "auroc", "effect", "p", "support"}, ...]}`` with the shown candidate's
    terms in its order and their evidence statistics from ``evidence.jsonl``; None when the
    explain stage has not run or the neuron has no row).
    """
    run_dir = Path(run_dir)
    summaries = artifacts.read_jsonl(run_dir / artifacts.SUMMARIES)
    concepts: dict[tuple[str, int], dict] = {}
    if (run_dir / artifacts.CONCEPTS).is_file():
        concepts = {(r["layer"], r["unit"]): r
                    for r in artifacts.read_jsonl(run_dir / artifacts.CONCEPTS)}
    tops: dict[tuple[str, int], list[str]] = {}
    if (run_dir / artifacts.EXEMPLARS).is_file():
        tops = {(r["layer"], r["unit"]): [e["clip"] for e in r.get("top", [])]
                for r in artifacts.read_jsonl(run_dir / artifacts.EXEMPLARS)}
    shown = shown_descriptions(run_dir)
    rows = []
    for s in summaries:
        key = (s["layer"], int(s["unit"]))
        c = concepts.get(key, {})
        rows.append({
            "layer": key[0], "unit": key[1], "description": description_text(s),
            "llm": s.get("llm", ""), "keywords": dict(c.get("keywords") or {}),
            "closed": dict(c.get("closed") or {}),
            "top_clips": tops.get(key) or list(s.get("top_clips") or []),
            "shown": shown.get(key),
        })
    return rows


def shown_descriptions(run_dir: str | Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Per neuron, the shown description with its terms' evidence (``neuron_rows``'s
    ``shown``); empty when the explain stage has not run."""
    ex_path = Path(run_dir) / artifacts.EXPLANATIONS
    if not ex_path.is_file():
        return {}
    stats: dict[tuple[str, int], dict[str, dict]] = {}
    if (Path(run_dir) / artifacts.EVIDENCE).is_file():
        stats = {(r["layer"], int(r["unit"])): {e["term"]: e for e in r.get("evidence") or []}
                 for r in artifacts.read_jsonl(Path(run_dir) / artifacts.EVIDENCE)}
    out = {}
    for r in artifacts.read_jsonl(ex_path):
        key = (r["layer"], int(r["unit"]))
        cand = next((c for c in r.get("candidates") or []
                     if c.get("kind") == r.get("kind") and c.get("text") == r.get("description")),
                    None)
        ev = stats.get(key, {})
        terms = [{"term": t, **{k: ev[t].get(k) for k in ("auroc", "effect", "p", "support")
                                if t in ev}}
                 for t in (cand or {}).get("terms") or []]
        out[key] = {"text": str(r.get("description") or ""), "kind": r.get("kind"),
                    "terms": terms}
    return out


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
