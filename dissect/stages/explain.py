"""Stage ``explain``: evidence terms, candidate descriptions, explain-then-score, the shown text.

Reads ``clips.jsonl``, ``captions.jsonl`` (texts and evidence terms), ``activations/`` (every
clip's pooled value), ``summaries.jsonl`` (AND's module-B summaries) and ``concepts.jsonl``
(closed-set labels, keywords). Writes:

* ``evidence.jsonl``: per neuron, the ranked evidence terms (AUROC, effect size, p, support,
  scored on the ``fit`` clips with a Benjamini-Hochberg cut) and its exemplar sample (top,
  quantile, random and bottom ``fit`` clips);
* ``explanations.jsonl``: per neuron, every candidate description with its validation and test
  scores, the LLM check's verdict, the shown candidate and why;
* ``descriptions.csv``: the flat table, one row per neuron, with the shown description.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dissect import artifacts
from dissect.description.captions import captions_by_clip, label_terms, terms_by_clip
from dissect.description.llm.base import GenerationParams, check_failures
from dissect.explain.explainer import explain, explanations_csv
from dissect.explain.splits import split_keys
from dissect.recording.store import load_activations

#: Version of what this stage writes (hashed with its config: a change reruns it). 2: the
#: concordance detection score, pitch bands at their effective centres, octave partners.
#: 3: one terms rule for every candidate, permutation-confirmed choice by correlation,
#: stratified grouped splits. 4: spreadsheet-safe cells in descriptions.csv. 5: a dataset
#: label term nearly as strong as a transcript term leads the template.
VERSION = 5


def write_explanations(run_dir: Path, explain_cfg, llm_cfg, caption_cfg, progress: bool = True,
                       *, max_llm_neurons: int = 40, negation_window: int = 4
                       ) -> dict[str, Any]:
    """The stage: :func:`explain` over a run directory's artifacts, written back to it.
    ``max_llm_neurons`` (``summarize.max_llm_neurons``) caps the neurons whose evidence the LLM
    phrases; ``negation_window`` (``concepts.negation_window``) is the matcher's."""
    from dissect.description.llm import build_llm

    clips = artifacts.read_jsonl(run_dir / artifacts.CLIPS)
    summaries = artifacts.read_jsonl(run_dir / artifacts.SUMMARIES)
    concepts = artifacts.read_jsonl(run_dir / artifacts.CONCEPTS)
    client = build_llm(llm_cfg) if explain_cfg.method == "evidence" else None
    params = GenerationParams(temperature=llm_cfg.temperature, max_tokens=llm_cfg.max_tokens,
                              top_p=llm_cfg.top_p, seed=llm_cfg.seed)
    strata, groups = split_keys(clips)
    out = explain([c["id"] for c in clips], captions_by_clip(run_dir), terms_by_clip(run_dir),
                  lambda layer: load_activations(run_dir, layer).numpy(), summaries, concepts,
                  explain_cfg, client, params, progress=progress, strata=strata,
                  groups=groups, max_llm_neurons=max_llm_neurons,
                  negation_window=negation_window, label_terms=label_terms(run_dir))
    failures = out.info.pop("llm_failures", [])
    check_failures("explain", getattr(client, "name", ""), failures,
                   out.info.get("llm_phrasings", 0),
                   llm_cfg.max_failed_fraction, "LLM phrasings")
    artifacts.write_jsonl(run_dir / artifacts.EVIDENCE, out.evidence)
    artifacts.write_jsonl(run_dir / artifacts.EXPLANATIONS, out.explanations)
    artifacts.write_text(run_dir / artifacts.DESCRIPTIONS,
                         explanations_csv(out.explanations, out.evidence, summaries, concepts,
                                          caption_cfg.captioners))
    # a failed phrasing falls back to the other candidates; the next run retries the call
    return {**out.info, "llm_failed": len(failures), artifacts.FAILED_ITEMS: len(failures)}
