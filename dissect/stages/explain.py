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

import csv
import io
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dissect import artifacts
from dissect.describe.captions import captions_by_clip, terms_by_clip
from dissect.describe.evidence import associate, ranked_evidence
from dissect.describe.explain import (
    NO_CLEAR_CONCEPT,
    band_centres,
    check_phrasing,
    clean_phrase,
    mentions,
    phrase_prompt,
    sample_exemplars,
    template,
    term_matrix,
)
from dissect.describe.llm.base import GenerationParams, check_failures
from dissect.describe.neurons import RULES_NAME
from dissect.evaluate.detection import unit_rows
from dissect.evaluate.explanations import (
    Candidate,
    ScoreJob,
    assign_splits,
    choose,
    score_jobs,
)
from dissect.record.store import load_activations

#: Version of what this stage writes (hashed with its config: a change reruns it). 2: the
#: concordance detection score, pitch bands at their effective centres, octave partners.
VERSION = 2

#: Evidence terms kept per neuron (``evidence.jsonl``; the pitch estimate reads the bands'
#: lifts from them).
EVIDENCE_TOP = 16
#: How a phrasing candidate whose LLM call failed is noted (``why`` starts with it).
LLM_FAILED = "LLM call failed"

#: Fewest fit / validation / test clips the explain stage scores with.
MIN_FIT, MIN_HELD = 10, 5


@dataclass
class Explained:
    """What :func:`explain` gives: one row per neuron of ``evidence.jsonl`` and of
    ``explanations.jsonl``, and the run's counts (``info``)."""

    evidence: list[dict[str, Any]]
    explanations: list[dict[str, Any]]
    info: dict[str, Any]


def _unscored(summaries, why: str) -> Explained:
    """Too few clips to split: no evidence, AND's summary shown, nothing scored (said so)."""
    ev_rows = [{"layer": s["layer"], "unit": s["unit"], "evidence": [], "sample": {}}
               for s in summaries]
    ex_rows = [{"layer": s["layer"], "unit": s["unit"],
                "description": s.get("calibrated") or s.get("high") or "", "kind": "and",
                "why": why, "no_clear_concept": False, "test": {}, "val": {},
                "candidates": []} for s in summaries]
    return Explained(ev_rows, ex_rows, {"neurons": len(ex_rows), "unscored": why})


def explain(ids: Sequence[str], captions: Mapping[str, str],
            clip_terms: Mapping[str, Sequence[str]],
            activations: Callable[[str], np.ndarray], summaries: Sequence[Mapping[str, Any]],
            concepts: Sequence[Mapping[str, Any]], describe_cfg, client=None,
            params: GenerationParams | None = None, embedder=None, progress: bool = True
            ) -> Explained:
    """Evidence, candidates, scores and the shown description of every neuron, in memory.

    Args:
        ids: clip ids, row ``i`` = clip ``i`` of ``activations(layer)``.
        captions: clip id -> its combined caption text.
        clip_terms: clip id -> its evidence terms (``attribute=value``).
        activations: layer -> pooled activations ``[N, U]`` of every clip.
        summaries / concepts: AND's module-B rows and the closed-set rows, one per neuron,
            in the same order (``summaries.jsonl`` / ``concepts.jsonl``).
        describe_cfg: a :class:`~dissect.config.DescribeConfig`.
        client: the LLM client for the phrasing candidates (None or the rule-based one: none).
        embedder: ``encode(texts) -> [n, d]``; default all-MiniLM-L6-v2.
    """
    from tqdm.auto import tqdm

    ids = list(ids)
    pos = {cid: i for i, cid in enumerate(ids)}
    terms, X = term_matrix(ids, clip_terms)
    term_index = {t.lower(): j for j, t in enumerate(terms)}
    split = assign_splits(ids, tuple(describe_cfg.splits), describe_cfg.split_seed)
    fit = split == "fit"
    split_mask = {name: split == name for name in ("val", "test")}
    not_fit = np.flatnonzero(~fit)
    centres = band_centres(terms, X[fit])
    n_val, n_test = int((split == "val").sum()), int((split == "test").sum())
    if fit.sum() < MIN_FIT or n_val < MIN_HELD or n_test < MIN_HELD:
        why = (f"{len(ids)} clips are too few for the fit/val/test split "
               f"{list(describe_cfg.splits)} (fit {int(fit.sum())}, val {n_val}, test "
               f"{n_test}; need {MIN_FIT}/{MIN_HELD}/{MIN_HELD}): AND summaries shown, unscored")
        print(f"[explain] {why}", file=sys.stderr)
        return _unscored(summaries, why)
    if embedder is None:
        from dissect.describe.embed import default_embedder

        embedder = default_embedder()
    C = unit_rows(embedder.encode([captions.get(cid, "") for cid in ids]))
    use_llm = (describe_cfg.method == "evidence" and client is not None
               and client.name != RULES_NAME)
    params = params or GenerationParams()
    layers = list(dict.fromkeys(s["layer"] for s in summaries))
    by_key = {(s["layer"], s["unit"]): (s, c) for s, c in zip(summaries, concepts, strict=True)}
    ev_rows, ex_rows = [], []
    n_llm = n_rejected = 0
    # pass 1: evidence of every layer (fit clips), so the LLM budget is shared by the run's
    # most selective neurons rather than spent per layer
    evidence_of: dict[str, list] = {}
    for layer in tqdm(layers, desc="evidence", unit="layer", disable=not progress,
                      file=sys.stderr):
        A = np.asarray(activations(layer), dtype=np.float64)
        assoc = associate(A[fit], X[fit], describe_cfg.min_support)
        evidence_of[layer] = ranked_evidence(assoc, terms, describe_cfg.evidence_alpha,
                                             top=EVIDENCE_TOP)
    phrased_of: dict[tuple[str, int], tuple[str, bool, str]] = {}
    if use_llm:
        phrased_of = _phrase(activations, evidence_of, describe_cfg.max_llm_neurons, fit, ids,
                             captions, terms, client, params)
    for layer in tqdm(layers, desc="explain", unit="layer", disable=not progress,
                      file=sys.stderr):
        A = np.asarray(activations(layer), dtype=np.float64)
        evidence = evidence_of[layer]
        units = range(A.shape[1])
        phrased = {u: v for (lay, u), v in phrased_of.items() if lay == layer}
        texts: list[str] = []
        for u in units:
            s, c = by_key[layer, u]
            texts.append(s.get("calibrated") or s.get("high") or "")
            db = (c.get("closed") or {}).get("db") or []
            if db:
                texts.append(str(db[0][0]))
        uniq = sorted({t for t in texts if t})
        E = unit_rows(embedder.encode(uniq)) if uniq else np.zeros((0, C.shape[1]))
        sims = C @ E.T
        col = {t: j for j, t in enumerate(uniq)}
        jobs: list[ScoreJob] = []
        built = []
        for u in units:
            s, c = by_key[layer, u]
            ev = evidence[u]
            tmpl, used = template(ev, centres)
            cands = [Candidate("evidence", tmpl, used if ev else None)]
            if u in phrased:
                text, ok, why = phrased[u]
                n_llm += 1
                n_rejected += not ok
                mentioned = [e.term for e in ev if ok and mentions(text, e.term)]
                cands.append(Candidate("llm", text, mentioned if ok else None,
                                       note="accepted" if ok else f"rejected: {why}"))
            cands.append(Candidate("and", s.get("calibrated") or s.get("high") or ""))
            db = (c.get("closed") or {}).get("db") or []
            if db:
                cands.append(Candidate("closed", str(db[0][0])))
            own = np.zeros(len(ids), dtype=bool)
            own[[pos[x] for x in (s.get("top_clips") or []) + (s.get("bottom_clips") or [])
                 if x in pos]] = True
            # term candidates by their terms, AND's summary and the label by caption similarity
            jobs += [ScoreJob(x, u, own) for x in cands
                     if x.terms is not None or x.kind in ("and", "closed")]
            built.append((u, ev, cands))
        score_jobs(jobs, A, split_mask, X, term_index, sims, col,
                   describe_cfg.detection_quantile)  # the whole layer at once
        for u, ev, cands in built:
            shown, why = choose(cands, describe_cfg.method, bool(ev), describe_cfg.min_detection)
            sample = sample_exemplars(A[:, u], n_top=describe_cfg.sample_top,
                                      n_random=describe_cfg.sample_random,
                                      n_bottom=describe_cfg.sample_bottom,
                                      seed=describe_cfg.split_seed,
                                      exclude=not_fit)
            ev_rows.append({"layer": layer, "unit": u, "evidence": [e.to_dict() for e in ev],
                            "sample": {k: [ids[i] for i in v]
                                       for k, v in sample.to_dict().items()}})
            ex_rows.append({
                "layer": layer, "unit": u,
                "description": shown.text if shown else NO_CLEAR_CONCEPT,
                "kind": shown.kind if shown else "none", "why": why,
                "no_clear_concept": shown is None,
                "test": shown.scores.get("test", {}) if shown else {},
                "val": shown.scores.get("val", {}) if shown else {},
                "candidates": [x.to_dict() for x in cands],
            })
    failures = [why for _, ok, why in phrased_of.values() if why.startswith(LLM_FAILED)]
    kinds: dict[str, int] = {}
    for r in ex_rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"[explain] {len(ex_rows)} neurons, {len(terms)} terms; shown: "
          f"{', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}; LLM phrasings "
          f"{n_llm} ({n_rejected} rejected by the check, {len(failures)} failed calls)",
          file=sys.stderr)
    return Explained(ev_rows, ex_rows, {
        "neurons": len(ex_rows), "terms": len(terms), "shown": kinds, "llm_phrasings": n_llm,
        "llm_rejected": n_rejected, "llm_failures": failures,
        "splits": {s: int((split == s).sum()) for s in ("fit", "val", "test")}})


def write_explanations(run_dir: Path, describe_cfg, llm_cfg, caption_cfg,
                       progress: bool = True) -> dict[str, Any]:
    """The stage: :func:`explain` over a run directory's artifacts, written back to it."""
    from dissect.stages.describe import build_llm

    clips = artifacts.read_jsonl(run_dir / artifacts.CLIPS)
    summaries = artifacts.read_jsonl(run_dir / artifacts.SUMMARIES)
    concepts = artifacts.read_jsonl(run_dir / artifacts.CONCEPTS)
    client = build_llm(llm_cfg) if describe_cfg.method == "evidence" else None
    params = GenerationParams(temperature=llm_cfg.temperature, max_tokens=llm_cfg.max_tokens,
                              top_p=llm_cfg.top_p, seed=llm_cfg.seed)
    out = explain([c["id"] for c in clips], captions_by_clip(run_dir), terms_by_clip(run_dir),
                  lambda layer: load_activations(run_dir, layer).numpy(), summaries, concepts,
                  describe_cfg, client, params, progress=progress)
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


def _phrase(activations, evidence_of, budget, fit, ids, captions, terms, client, params
            ) -> dict[tuple[str, int], tuple[str, bool, str]]:
    """The LLM's phrasing of the evidence of the ``budget`` neurons (of the whole run) whose
    strongest term has the highest AUROC, each checked by
    :func:`~dissect.describe.explain.check_phrasing`: ``(layer, unit) -> (text, ok, why)``.
    The prompt's captions are those of the neuron's top fit clips only."""
    ranked = sorted(((lay, u) for lay, ev in evidence_of.items() for u, e in enumerate(ev) if e),
                    key=lambda k: -evidence_of[k[0]][k[1]][0].auroc)
    chosen = ranked[: budget if budget >= 0 else None]
    tops: dict[tuple[str, int], list[int]] = {}
    for lay in dict.fromkeys(lay for lay, _ in chosen):  # each layer's activations read once
        A = np.asarray(activations(lay))
        for key in (k for k in chosen if k[0] == lay):
            tops[key] = sample_exemplars(A[:, key[1]], n_top=5, n_quantile=0, n_random=0,
                                         n_bottom=0, exclude=np.flatnonzero(~fit)).top
    chats = [phrase_prompt(evidence_of[lay][u], [captions.get(ids[i], "") for i in tops[lay, u]])
             for lay, u in chosen]
    out = {}
    for key, comp in zip(chosen, client.generate(chats, params) if chats else [], strict=True):
        text = clean_phrase(comp.text) if comp.ok else ""
        ok, why = (check_phrasing(text, evidence_of[key[0]][key[1]], terms) if comp.ok
                   else (False, f"{LLM_FAILED}: {comp.error}"))
        out[key] = (text, ok, why)
    return out


def explanations_csv(ex_rows, ev_rows, summaries, concepts, captioners) -> str:
    """``descriptions.csv``: one row per neuron with the shown description and its evidence."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["layer", "unit", "description", "kind", "test_detection", "test_correlation",
                "evidence", "top_concepts", "keywords", "and_summary", "low_summary", "llm",
                "captioners"])
    for x, e, s, c in zip(ex_rows, ev_rows, summaries, concepts, strict=True):
        ev = "; ".join(f"{d['term']} (AUROC {d['auroc']:.2f}, d {d['effect']:.1f})"
                       for d in e["evidence"][:4])
        top = [f"{m}:{name}={score:.3f}" for m, lst in (c.get("closed") or {}).items()
               for name, score in lst]
        kw = c.get("keywords") or {}
        kws = kw.get("adjectives", []) + kw.get("nouns", [])[:3]
        t = x.get("test") or {}
        w.writerow([x["layer"], x["unit"], x["description"], x["kind"],
                    "" if t.get("detection") is None else t["detection"],
                    "" if t.get("correlation") is None else t["correlation"], ev,
                    "; ".join(top), ", ".join(kws), s.get("calibrated") or s.get("high") or "",
                    s.get("low", ""), s["llm"], "+".join(captioners)])
    return buf.getvalue()
