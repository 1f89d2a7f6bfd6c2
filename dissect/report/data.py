"""Read a finished run directory into one :class:`RunData` for the report.

Required: ``config.yaml``, ``manifest.json``, ``clips.jsonl``, ``exemplars.jsonl``. Optional
(rendered when present): ``summaries.jsonl``, ``concepts.jsonl``, ``captions.jsonl``,
``skips.jsonl``, ``stats/<layer>.safetensors``, ``prune/*.json``, ``hear/*``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dissect import artifacts
from dissect.rows import NeuronRow, neuron_row, read_rows

REQUIRED = (artifacts.CONFIG, artifacts.MANIFEST, artifacts.CLIPS, artifacts.EXEMPLARS)

#: Summary ``llm`` value of the rule-based summariser (kept in sync with ``describe.llm.rules``).
RULES_NAME = "rule-based (no LLM)"


class MissingArtifactError(FileNotFoundError):
    """A required run artifact is missing; the message names the file and the stage to run."""


Key = tuple[str, int]


@dataclass
class Neuron:
    """Everything the report shows about one ``(layer, unit)``: its :class:`~dissect.rows.
    NeuronRow` (the shown description, scores, evidence, AND's summary) and the artifact rows
    the cards render (exemplars, summary, concepts, explanation)."""

    layer: str
    unit: int
    exemplar: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    concepts: dict[str, Any] = field(default_factory=dict)
    explanation: dict[str, Any] = field(default_factory=dict)  # explanations.jsonl row
    evidence: list[dict[str, Any]] = field(default_factory=list)  # evidence.jsonl terms
    row: NeuronRow | None = None

    @classmethod
    def of(cls, row: NeuronRow) -> Neuron:
        src = row.sources
        return cls(row.layer, row.unit, dict(src.get("exemplar") or {}),
                   dict(src.get("summary") or {}), dict(src.get("concepts") or {}),
                   dict(src.get("explanation") or {}), list(row.evidence), row)

    @property
    def key(self) -> Key:
        return (self.layer, self.unit)

    @property
    def llm(self) -> str:
        return str(self.summary.get("llm") or "")

    @property
    def by_llm(self) -> bool:
        """True when an LLM (not the rule-based summariser) wrote the description."""
        return bool(self.llm) and self.llm != RULES_NAME

    @property
    def llm_failures(self) -> list[str]:
        """Why this neuron's LLM work failed: the summary's failed call (a rule-based summary
        stands in) and a failed phrasing call of the explain stage; empty when none failed."""
        out = []
        if self.summary.get("failed"):
            err = next((e for e in self.summary.get("errors", []) if "LLM call failed" in e), "")
            out.append(f"summary by {self.summary.get('llm_failed') or 'the LLM'} failed"
                       + (f" ({err})" if err else "") + "; the rule-based summary stands in")
        for c in self.explanation.get("candidates") or []:
            note = str(c.get("note") or "")
            if c.get("kind") == "llm" and note.startswith("rejected: LLM call failed"):
                out.append("LLM phrasing failed (" + note.removeprefix("rejected: ") + ")")
        return out

    @property
    def description(self) -> str:
        """The shown description (explain stage), else AND's summary
        (:attr:`dissect.rows.NeuronRow.text`)."""
        row = self.row or neuron_row(self.layer, self.unit, self.summary, self.concepts,
                                     {"evidence": self.evidence}, self.explanation)
        return row.text

    @property
    def no_clear_concept(self) -> bool:
        return bool(self.explanation.get("no_clear_concept"))

    @property
    def test_detection(self) -> float | None:
        """Test-split detection AUROC of the shown description (None: not scored)."""
        v = (self.explanation.get("test") or {}).get("detection")
        return None if v is None else float(v)

    @property
    def selectivity(self) -> float:
        """``(mean of top-k values - mean) / std`` from ``exemplars.jsonl`` (0 when std is 0)."""
        e = self.exemplar
        top = [t["value"] for t in e.get("top", [])]
        std = float(e.get("std") or 0.0)
        if not top or std <= 0:
            return 0.0
        return (float(np.mean(top)) - float(e.get("mean", 0.0))) / std


@dataclass
class RunData:
    """The parsed artifacts of one run directory."""

    run_dir: Path
    config: dict[str, Any]
    manifest: dict[str, Any]
    clips: dict[str, dict[str, Any]]
    neurons: list[Neuron]
    captions: dict[str, dict[str, str]]
    skips: list[dict[str, Any]]
    layers: list[str]

    def stage_info(self, stage: str) -> dict[str, Any]:
        return dict(self.manifest.get("stages", {}).get(stage, {}).get("info") or {})


def _read_optional_jsonl(path: Path) -> list[dict[str, Any]]:
    return artifacts.read_jsonl(path) if path.is_file() else []


def load_config(path: Path) -> dict[str, Any]:
    """``config.yaml`` as a plain dict."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping")
    return cfg


def load_run(run_dir: str | Path) -> RunData:
    """Parse ``run_dir``.

    Raises:
        MissingArtifactError: a required artifact is missing (named, with the stage to run).
        ValueError: a malformed JSON line (file and line named).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MissingArtifactError(f"{run_dir}: run directory not found")
    for name in REQUIRED:
        if not (run_dir / name).is_file():
            raise MissingArtifactError(
                f"{run_dir / name}: required artifact missing; run `dissect run run_dir="
                f"{run_dir}` (at least the probe and record stages) before building the report")
    config = load_config(run_dir / artifacts.CONFIG)
    manifest = json.loads((run_dir / artifacts.MANIFEST).read_text(encoding="utf-8"))
    clips = {c["id"]: c for c in artifacts.read_jsonl(run_dir / artifacts.CLIPS)}
    captions: dict[str, dict[str, str]] = {}
    for c in _read_optional_jsonl(run_dir / artifacts.CAPTIONS):
        if c.get("text"):
            captions.setdefault(c["clip"], {})[str(c.get("captioner", ""))] = str(c["text"])
    neurons = [Neuron.of(r) for r in read_rows(run_dir)]  # in exemplars.jsonl order
    layers = list(dict.fromkeys(n.layer for n in neurons))
    skips = _read_optional_jsonl(run_dir / artifacts.SKIPS)
    return RunData(run_dir, config, manifest, clips, neurons, captions, skips, layers)


def load_stats(run_dir: Path, layer: str) -> dict[str, np.ndarray] | None:
    """Per-unit ``mean``, ``std``, ``quantiles`` [Q, U], ``quantile_levels`` [Q] (or None)."""
    path = artifacts.layer_file(run_dir, artifacts.STATS_DIR, layer)  # a plain name only
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        keys = set(f.keys())
        return {k: f.get_tensor(k) for k in ("mean", "std", "quantiles", "quantile_levels",
                                             "min", "max") if k in keys}
