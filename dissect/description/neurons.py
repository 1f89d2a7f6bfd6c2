"""Describe every neuron of a recording in memory: summaries (AND module B), closed-set concepts
(module A) and open-set keywords (module C), as plain rows.

This is what both the Python API (:func:`dissect.describe`) and the ``summarize`` / ``concepts``
stages run; the stages only read the inputs from the run directory and write the rows as
``summaries.jsonl`` and ``concepts.jsonl`` (``descriptions.csv`` is the explain stage's).

Inputs are the exemplar rows of :func:`dissect.recording.store.exemplar_rows` (one per neuron:
``layer``, ``unit``, ``top``/``bottom`` clips with values) and captions by clip id.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from dissect.description.llm import RuleBasedClient, describe_contrast
from dissect.description.llm.base import GenerationParams
from dissect.description.select import choose_llm_neurons

RULES_NAME = RuleBasedClient().name

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def rule_rows(neurons: Sequence[Mapping[str, Any]], captions: Mapping[str, str], k: int
              ) -> list[dict[str, Any]]:
    """Rule-based summaries: contrastive term statistics, top vs bottom captions. They are
    contrastive by construction, so calibration does not apply (``calibrated == high``)."""
    out = []
    for n in neurons:
        top = [e["clip"] for e in n["top"][:k]]
        bottom = [e["clip"] for e in n["bottom"][:k]]
        tc = [captions[c] for c in top if c in captions]
        bc = [captions[c] for c in bottom if c in captions]
        missing = [c for c in top + bottom if c not in captions]
        high = describe_contrast(tc, bc)
        out.append({
            "layer": n["layer"], "unit": n["unit"], "high": high,
            "low": describe_contrast(bc, tc), "calibrated": high, "dropped": [],
            "llm": RULES_NAME, "errors": [f"no caption for clips {missing}"] if missing else [],
            "failed": False, "all_dropped": False, "threshold": None, "top_clips": top,
            "bottom_clips": bottom,
            "raw_high": high, "raw_low": "",
        })
    return out


def summary_client(client, explain_method: str):
    """The client that writes AND's module-B summaries: ``client`` when AND's summary is the
    method shown (``explain.method=and``), else the rule-based summariser.

    Under ``explain.method=evidence`` AND's summary is one candidate among four and an LLM's
    summary is rarely the one shown (4 of 40 in the default run before this rule), at two LLM
    calls per neuron; the LLM's time goes to phrasing confirmed descriptions instead
    (:func:`dissect.explain.explainer.explain`)."""
    return client if explain_method == "and" else RuleBasedClient()


def summarize(neurons: Sequence[Mapping[str, Any]], captions: Mapping[str, str], client,
              params: GenerationParams, *, k: int = 5, threshold: float = 0.85,
              max_llm_neurons: int = 40, head_layer: str | None = None,
              log: Log = _stderr) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Summarise every neuron: the ``max_llm_neurons`` most selective by ``client`` (top and
    bottom: 2 calls each, calibrated), the rest by the rule-based summariser.

    A neuron whose LLM call failed (after the client's retries) gets the rule-based summary,
    attributed to the rules, with ``failed: true``, ``llm_failed`` (the client) and the error in
    ``errors``; ``info["llm_failed"]`` counts them.

    Returns:
        ``(rows, info)``: one ``summaries.jsonl`` row per neuron in ``neurons`` order (each
        names its writer, seed and temperature), and counts for the manifest.
    """
    from dissect.description.summarize import summarize_neurons

    chosen: set = set()
    if client.name != RULES_NAME:
        chosen = choose_llm_neurons(list(neurons), head_layer, max_llm_neurons)
    llm_neurons = [n for n in neurons if (n["layer"], n["unit"]) in chosen]
    rest = [n for n in neurons if (n["layer"], n["unit"]) not in chosen]
    by_key: dict[tuple[str, int], dict] = {}
    if llm_neurons:
        log(f"[summarize] {len(llm_neurons)} neurons by {client.name} "
            f"({2 * len(llm_neurons)} calls), {len(rest)} by the rule-based summariser")
        for s in summarize_neurons(llm_neurons, captions, client, params, k=k,
                                   threshold=threshold):
            by_key[s.layer, s.unit] = s.to_dict()
    failed = [n for n in llm_neurons if by_key[n["layer"], n["unit"]].get("failed")]
    for n, r in zip(failed, rule_rows(failed, captions, k), strict=True):
        # the LLM's text is missing: the rule-based summary stands in, named as such, and the row
        # says which LLM failed and why (the stage retries it on the next run)
        llm_row = by_key[n["layer"], n["unit"]]
        r.update(failed=True, llm_failed=client.name, errors=llm_row["errors"] + r["errors"])
        by_key[n["layer"], n["unit"]] = r
    failures = [failure_text(by_key[n["layer"], n["unit"]]) for n in failed]
    if failed:
        log(f"[summarize] {len(failed)} of {len(llm_neurons)} LLM neurons failed at "
            f"{client.name}: rule-based summaries stand in, marked failed; the next run retries "
            f"them (first error: {failures[0]})")
    for r in rule_rows(rest, captions, k):
        by_key[r["layer"], r["unit"]] = r
    rows = [by_key[n["layer"], n["unit"]] for n in neurons]
    for r in rows:
        r["seed"] = params.seed
        r["temperature"] = params.temperature
    stats = getattr(client, "hits", None), getattr(client, "misses", None)
    info = {"neurons": len(rows), "llm_neurons": len(llm_neurons), "llm": client.name,
            "rule_based_neurons": len(rest), "cache_hits": stats[0], "cache_misses": stats[1],
            "errors": sum(bool(r.get("errors")) for r in rows), "llm_failed": len(failed),
            "llm_failures": failures[:5]}
    return rows, info


def failure_text(row: Mapping[str, Any]) -> str:
    """The first LLM failure among a summary row's ``errors`` ("" when none)."""
    return next((e for e in row.get("errors", []) if "LLM call failed" in e), "")


def closed_labels(layers: Sequence[str], activations: Callable[[str], torch.Tensor],
                  matrices: Mapping[str, torch.Tensor], cset, similarity: str, top: int,
                  rows: Mapping[str, Any] | None = None
                  ) -> dict[tuple[str, int], dict[str, list]]:
    """Closed-set concepts of every neuron, a whole layer at once.

    Args:
        layers: layer names, in order.
        activations: layer -> dense pooled activations ``[clips, U]`` (rows = clip order of
            the matrices).
        matrices: method (``db``, ``tab``) -> clip x concept matrix ``[clips, C]``.
        cset: the concept set.
        similarity: similarity function name.
        top: concepts kept per neuron.
        rows: method -> bool ``[clips]``: the clips its matrix has rows for (DB leaves out
            clips without a caption); default every clip.

    Returns:
        ``(layer, unit) -> {method: [[concept, score], ...]}`` (scores rounded to 5 places).
    """
    from dissect.description.concepts import label_neurons

    closed: dict[tuple[str, int], dict[str, list]] = {}
    for method, P in matrices.items():
        keep = None if rows is None or rows.get(method) is None else \
            torch.as_tensor(np.asarray(rows[method], dtype=bool))
        for layer in layers:
            U = activations(layer)
            if keep is not None:
                U = torch.as_tensor(U)[keep]
            labels = label_neurons(U, P, cset, similarity, top)
            for unit, lab in enumerate(labels):
                closed.setdefault((layer, unit), {})[method] = [[c, round(s, 5)] for c, s in lab]
    return closed


def icl_labels(summaries: Sequence[Mapping[str, Any]], cset, client, params: GenerationParams,
               embedder, closed: dict[tuple[str, int], dict[str, list]]) -> list[str]:
    """ICL: the LLM picks a concept for each LLM-summarised neuron (added to ``closed``).

    Returns:
        The error of each failed call (its neuron gets no ICL label).
    """
    from dissect.description.concepts import icl_prompt, parse_icl

    todo = [s for s in summaries if s["llm"] != RULES_NAME and s.get("calibrated")]
    if not todo:
        return []
    chats = [icl_prompt(s["calibrated"], cset, k=1) for s in todo]
    errors = []
    for s, comp in zip(todo, client.generate(chats, params), strict=True):
        picks = parse_icl(comp.text, cset, embedder, k=1) if comp.ok else []
        if not comp.ok:
            errors.append(f"{s['layer']}:{s['unit']}: LLM call failed: {comp.error}")
        closed.setdefault((s["layer"], s["unit"]), {})["icl"] = [[c, round(v, 5)]
                                                                  for c, v in picks]
    return errors


def keyword_rows(summaries: Sequence[Mapping[str, Any]], client=None,
                 window: int | None = None) -> list[dict[str, Any]]:
    """Open-set keywords (spaCy) of each calibrated summary; ``client`` optionally filters
    adjectives outside the acoustic lexicon (strict yes/no); ``window``: the negation window
    (default :data:`~dissect.description.keywords.NEGATION_WINDOW`, AND's 4 tokens)."""
    from dissect.description.keywords import NEGATION_WINDOW, keywords_for, load_nlp

    window = NEGATION_WINDOW if window is None else int(window)

    nlp = load_nlp()
    texts = []
    for s in summaries:
        text = s.get("calibrated") or ""
        if s["llm"] == RULES_NAME:  # template text: keywords are its "most" terms
            text = text.split(";")[0]
        texts.append(text)
    # each distinct text parsed once, in spaCy batches (55,346 AND neurons have ~12,000)
    uniq = list(dict.fromkeys(texts))
    kw_of = {t: {k: list(v) for k, v in keywords_for(doc, nlp, client, window=window).items()}
             for t, doc in zip(uniq, nlp.pipe(uniq, batch_size=256), strict=True)}
    return [{k: list(v) for k, v in kw_of[t].items()} for t in texts]


def concept_rows(summaries: Sequence[Mapping[str, Any]],
                 closed: Mapping[tuple[str, int], Mapping[str, list]],
                 keywords: Sequence[Mapping[str, Any]], similarity: str, concept_set: str
                 ) -> list[dict[str, Any]]:
    """One ``concepts.jsonl`` row per neuron."""
    return [{"layer": s["layer"], "unit": s["unit"],
             "closed": closed.get((s["layer"], s["unit"]), {}),
             "similarity": similarity, "concept_set": concept_set, "keywords": kw}
            for s, kw in zip(summaries, keywords, strict=True)]


