"""Stages ``summarize`` (-> ``summaries.jsonl``) and ``concepts`` (-> ``concepts.jsonl``): AND
modules B, A and C on top of the recorded exemplars and the captions (the shown descriptions,
``descriptions.csv``, come from the ``explain`` stage).

The LLM writes summaries only under ``explain.method=and`` (AND's summary is then what is
shown); its calls are capped (``summarize.max_llm_neurons``): the chosen neurons are summarised
by the configured LLM, every other neuron by the rule-based contrastive summariser, and every
row names the writer. LLM replies are cached on disk per (client, model, prompt, params), so a
killed run resumes without repeating finished calls.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dissect import artifacts
from dissect.description.captions import captions_by_clip
from dissect.description.llm import build_llm
from dissect.description.llm.base import GenerationParams, check_failures
from dissect.description.neurons import (
    RULES_NAME,
    closed_labels,
    concept_rows,
    failure_text,
    icl_labels,
    keyword_rows,
    summarize,
    summary_client,
)
from dissect.recording.store import load_activations


def _params(llm_cfg) -> GenerationParams:
    return GenerationParams(temperature=llm_cfg.temperature, max_tokens=llm_cfg.max_tokens,
                            top_p=llm_cfg.top_p, seed=llm_cfg.seed)


def write_summaries(run_dir: Path, summarize_cfg, llm_cfg, head_layer: str | None,
                    explain_method: str = "evidence") -> dict[str, Any]:
    """Summarise every neuron of ``exemplars.jsonl``; write ``summaries.jsonl``. The LLM
    writes summaries only under ``explain_method="and"``
    (:func:`~dissect.description.neurons.summary_client`).

    Neurons whose LLM call failed are written with the rule-based summary and ``failed: true``,
    and counted in the manifest (``failed_items``), so the next run repeats the stage (finished
    calls come from the LLM cache). Above ``llm.max_failed_fraction`` of the LLM neurons the stage
    fails with :class:`~dissect.description.llm.base.TooManyLLMFailures` and writes nothing.
    """
    client = summary_client(build_llm(llm_cfg), explain_method)
    rows, info = summarize(artifacts.read_jsonl(run_dir / artifacts.EXEMPLARS),
                           captions_by_clip(run_dir), client, _params(llm_cfg),
                           k=summarize_cfg.k, threshold=summarize_cfg.calibration_threshold,
                           max_llm_neurons=summarize_cfg.max_llm_neurons, head_layer=head_layer)
    failures = [failure_text(r) for r in rows if r.get("failed")]
    check_failures("summarize", client.name, failures, info["llm_neurons"],
                   llm_cfg.max_failed_fraction, "LLM neurons")
    artifacts.write_jsonl(run_dir / artifacts.SUMMARIES, rows)
    return {**info, artifacts.FAILED_ITEMS: len(failures)}


# --------------------------------------------------------------------------- concepts


def _dense(run_dir: Path, layer: str) -> torch.Tensor:
    try:
        return load_activations(run_dir, layer)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} (closed-set concepts need every clip's activation; or "
                                "set concepts.closed_methods=[])") from None


def write_concepts(run_dir: Path, concepts_cfg, explain_cfg, llm_cfg, caption_cfg
                   ) -> dict[str, Any]:
    """Closed-set concepts (DB / TAB stand-in / ICL) and keywords -> ``concepts.jsonl``. The
    closed-set label is chosen on the fit clips of ``explain_cfg.splits`` /
    ``explain_cfg.split_seed``."""
    from dissect.description.concepts import captioned, db_matrix, load_concept_set

    summaries = artifacts.read_jsonl(run_dir / artifacts.SUMMARIES)
    clips = artifacts.read_jsonl(run_dir / artifacts.CLIPS)
    cset = load_concept_set(concepts_cfg.concept_set)
    layers = list(dict.fromkeys(s["layer"] for s in summaries))
    notes: dict[str, str] = {}
    methods = list(concepts_cfg.closed_methods)
    from dissect.description.concepts import CLOSED_METHODS

    for m in methods:
        CLOSED_METHODS.check(m)  # an unknown method: the error lists the valid ones
    matrices: dict[str, torch.Tensor] = {}
    rows: dict[str, Any] = {}
    # closed-set labels are chosen on the explain stage's fit clips: never on the clips the
    # shown description is validated or tested on
    from dissect.explain.splits import assign_splits, split_keys

    fit = assign_splits([c["id"] for c in clips], tuple(explain_cfg.splits),
                        explain_cfg.split_seed, *split_keys(clips)) == "fit"
    if "db" in methods or "tab" in methods or "icl" in methods:
        from dissect.description.embed import default_embedder

        embedder = default_embedder()
    if "db" in methods:
        caps = captions_by_clip(run_dir, named=False)  # captioner names are no sound words
        text = [caps.get(c["id"], "") for c in clips]
        keep = captioned(text) & fit  # chosen on the fit clips only
        if keep.any():
            rows["db"] = keep
            kept = [t for t, k in zip(text, keep, strict=True) if k]
            matrices["db"] = db_matrix(embedder.encode(kept), embedder.encode(cset.prompts))
            notes["db"] = (f"DB: captions ({', '.join(caption_cfg.captioners)}) vs concept "
                           f"prompts, {embedder.name}, softmax over concepts")
        else:  # a recorded skip, not a failed run: DB is one candidate among several
            notes["db"] = (f"DB skipped: none of the {int(fit.sum())} fit-split clips (of "
                           f"{len(clips)}) has a caption, so no closed-set label is chosen")
            print(f"[concepts] {notes['db']}", file=sys.stderr)
    if "tab" in methods and not fit.any():
        notes["tab"] = f"TAB skipped: no fit-split clip (of {len(clips)})"
        print(f"[concepts] {notes['tab']}", file=sys.stderr)
    elif "tab" in methods:
        matrices["tab"], notes["tab"] = _tab_stand_in(run_dir, [c for c, f in zip(
            clips, fit, strict=True) if f], cset, embedder)
        rows["tab"] = fit
    closed = closed_labels(layers, lambda layer: _dense(run_dir, layer), matrices, cset,
                           concepts_cfg.similarity, concepts_cfg.top_concepts, rows)
    failures: list[str] = []
    if "icl" in methods:
        todo = [x for x in summaries if x["llm"] != RULES_NAME and x.get("calibrated")]
        if todo:
            client = build_llm(llm_cfg)
            failures = icl_labels(summaries, cset, client, _params(llm_cfg), embedder, closed)
            check_failures("concepts", client.name, failures, len(todo),
                           llm_cfg.max_failed_fraction, "ICL calls")
        notes["icl"] = "ICL: the LLM picks from the concept list given the calibrated summary"

    if concepts_cfg.keywords:
        client = build_llm(llm_cfg) if concepts_cfg.keyword_llm_filter else None
        kw_rows = keyword_rows(summaries, client, concepts_cfg.negation_window)
    else:
        kw_rows = [{} for _ in summaries]
    rows = concept_rows(summaries, closed, kw_rows, concepts_cfg.similarity, cset.name)
    artifacts.write_jsonl(run_dir / artifacts.CONCEPTS, rows)
    return {"neurons": len(rows), "methods": methods, "concept_set": cset.name,
            "method_notes": notes, "llm_failed": len(failures),
            artifacts.FAILED_ITEMS: len(failures)}


def _tab_stand_in(run_dir: Path, clips, cset, embedder):
    """TAB without CLAP: YAMNet tagger probabilities mapped to concepts (named as a stand-in)."""
    from dissect.audio import load_audio
    from dissect.description.captioners.tagger import YamnetTagger
    from dissect.description.concepts import tab_matrix_from_tagger

    tagger = YamnetTagger()
    probs = np.stack([tagger.scores(load_audio(c["path"], tagger.sample_rate)) for c in clips])
    P, stand_in = tab_matrix_from_tagger(probs, tagger.class_names, cset, embedder)
    return torch.as_tensor(P), stand_in
