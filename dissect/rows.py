"""One typed row per neuron: the shown description, its scores and evidence, AND's summary.

A run's per-neuron artifacts (``exemplars.jsonl``, ``summaries.jsonl``, ``concepts.jsonl``,
``evidence.jsonl``, ``explanations.jsonl``) are joined here, once, into :class:`NeuronRow`s. The
Python API's :class:`~dissect.api.Descriptions`, the report, the scores (``dissect evaluate``),
concept pruning and the description-guided ensembles all read these rows, so that "what a neuron
is described as" (the shown, checked description, else AND's calibrated summary, else its raw
summary) is decided in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dissect import artifacts

Key = tuple[str, int]

#: Marks the start of the "least to" part of a rule-based summary.
_LEAST = "; least to:"


def and_summary(summary: Mapping[str, Any]) -> str:
    """AND's module-B summary of a ``summaries.jsonl`` row: the calibrated summary, else the
    raw summary of the top clips ("" when there is neither)."""
    return str(summary.get("calibrated") or summary.get("high") or "")


def summary_concept(summary: Mapping[str, Any]) -> str:
    """What AND's summary says the neuron responds to: :func:`and_summary` without the "least
    to" part of a rule-based summary ("Responds most to sounds described as: X; least to: Y"
    keeps X), so that words of the least-activating clips never count as its concept."""
    text = and_summary(summary)
    if _LEAST in text:
        text = text.split(_LEAST, 1)[0]
    elif str(summary.get("llm", "")).startswith("rule") and ";" in text:
        text = text.split(";", 1)[0]
    return text.strip()


@dataclass(frozen=True)
class NeuronRow:
    """Everything dissect says about one neuron ``(layer, unit)``.

    Attributes:
        text: the shown description (the candidate best on the validation clips, or "no clear
            concept"); AND's summary when the explain step has not run.
        kind: who made it: ``evidence`` | ``llm`` | ``and`` | ``closed`` | ``none``; ``""``
            when the explain step has not run.
        status / why: the explain step's verdict (``confirmed``, ``unconfirmed``, ...) and why.
        test: the shown description's scores on the test clips (``correlation``,
            ``detection``, ``auprc``, ...; empty when unscored).
        evidence: the ranked evidence terms (``term``, ``auroc``, ``effect``, ``lift``, ``p``,
            ``support``) on the fit clips.
        shown_terms: the shown candidate's own terms, in its order, with their evidence
            statistics (``term``, ``auroc``, ``effect``, ``p``, ``support``).
        summary: AND's module-B summary (:func:`and_summary`); ``low``: of the bottom clips.
        llm: who wrote the summary (an LLM's name, or the rule-based summariser).
        failed: the summary's LLM call failed (the rule-based text stands in).
        concepts: closed-set concepts by method, ``{"db": [(concept, score), ...]}``.
        keywords: open-set keywords (``adjectives``, ``nouns``, ...).
        top_clips: the most activating clips' ids, best first.
        sources: the joined artifact rows (``summary``, ``concepts``, ``evidence``,
            ``explanation``, ``exemplar``) for what the fields above do not carry.
    """

    layer: str
    unit: int
    text: str
    kind: str
    test: dict[str, Any]
    evidence: list[dict[str, Any]]
    summary: str
    low: str
    llm: str
    concepts: dict[str, list]
    keywords: dict[str, list]
    status: str = ""
    why: str = ""
    shown_terms: list[dict[str, Any]] = field(default_factory=list)
    failed: bool = False
    top_clips: list[str] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def key(self) -> Key:
        return (self.layer, self.unit)

    @property
    def no_clear_concept(self) -> bool:
        return bool((self.sources.get("explanation") or {}).get("no_clear_concept"))

    @property
    def explained(self) -> bool:
        """True when the explain step wrote this neuron's row."""
        return bool(self.sources.get("explanation"))

    def record(self) -> dict[str, Any]:
        """The plain record the scorers and concept pruning select on: ``layer``, ``unit``,
        ``description`` (:func:`summary_concept`), ``llm``, ``keywords``, ``closed``,
        ``top_clips`` and ``shown`` (``{"text", "kind", "terms"}``, None when unexplained)."""
        shown = ({"text": self.text, "kind": self.kind, "terms": list(self.shown_terms)}
                 if self.explained else None)
        return {"layer": self.layer, "unit": self.unit,
                "description": summary_concept(self.sources.get("summary") or {}),
                "llm": self.llm, "keywords": dict(self.keywords),
                "closed": dict(self.concepts), "top_clips": list(self.top_clips),
                "shown": shown}


def _shown_terms(explanation: Mapping[str, Any], evidence: Sequence[Mapping[str, Any]]
                 ) -> list[dict[str, Any]]:
    stats = {e["term"]: e for e in evidence}
    cand = next((c for c in explanation.get("candidates") or []
                 if c.get("kind") == explanation.get("kind")
                 and c.get("text") == explanation.get("description")), None)
    return [{"term": t, **{k: stats[t].get(k) for k in ("auroc", "effect", "p", "support")
                           if t in stats}}
            for t in (cand or {}).get("terms") or []]


def neuron_row(layer: str, unit: int, summary: Mapping[str, Any] | None = None,
               concepts: Mapping[str, Any] | None = None,
               evidence: Mapping[str, Any] | None = None,
               explanation: Mapping[str, Any] | None = None,
               exemplar: Mapping[str, Any] | None = None) -> NeuronRow:
    """One :class:`NeuronRow` from the neuron's artifact rows (any may be missing)."""
    s, c, x = dict(summary or {}), dict(concepts or {}), dict(explanation or {})
    ev = list((evidence or {}).get("evidence") or [])
    tops = [e["clip"] for e in (exemplar or {}).get("top", [])] or list(s.get("top_clips")
                                                                       or [])
    return NeuronRow(
        layer=layer, unit=int(unit),
        text=str(x["description"]) if x else and_summary(s),
        kind=str(x.get("kind") or ""), test=dict(x.get("test") or {}), evidence=ev,
        summary=and_summary(s), low=str(s.get("low") or ""), llm=str(s.get("llm") or ""),
        concepts=dict(c.get("closed") or {}), keywords=dict(c.get("keywords") or {}),
        status=str(x.get("status") or ""), why=str(x.get("why") or ""),
        shown_terms=_shown_terms(x, ev) if x else [], failed=bool(s.get("failed")),
        top_clips=[str(t) for t in tops],
        sources={"summary": s, "concepts": c, "evidence": dict(evidence or {}),
                 "explanation": x, "exemplar": dict(exemplar or {})})


def _by_key(rows: Iterable[Mapping[str, Any]] | None) -> dict[Key, Mapping[str, Any]]:
    return {(r["layer"], int(r["unit"])): r for r in rows or ()}


def join(summaries: Sequence[Mapping[str, Any]] | None = None,
         concepts: Sequence[Mapping[str, Any]] | None = None,
         evidence: Sequence[Mapping[str, Any]] | None = None,
         explanations: Sequence[Mapping[str, Any]] | None = None,
         exemplars: Sequence[Mapping[str, Any]] | None = None) -> list[NeuronRow]:
    """The rows of every neuron, in ``exemplars`` order (else ``summaries``, else
    ``explanations`` order), joined by ``(layer, unit)``."""
    order = exemplars or summaries or explanations or []
    s, c, e, x, ex = (_by_key(r) for r in (summaries, concepts, evidence, explanations,
                                           exemplars))
    return [neuron_row(k[0], k[1], s.get(k), c.get(k), e.get(k), x.get(k), ex.get(k))
            for k in _by_key(order)]


def read_rows(run_dir: str | Path) -> list[NeuronRow]:
    """The :class:`NeuronRow` of every neuron of a run directory (whatever per-neuron artifacts
    it has; none: an empty list), in recording order."""
    run_dir = Path(run_dir)

    def read(name: str) -> list[dict[str, Any]] | None:
        path = run_dir / name
        return artifacts.read_jsonl(path) if path.is_file() else None

    return join(read(artifacts.SUMMARIES), read(artifacts.CONCEPTS), read(artifacts.EVIDENCE),
                read(artifacts.EXPLANATIONS), read(artifacts.EXEMPLARS))
