"""Explain, then score: evidence, candidate descriptions, their scores, the shown description.

:func:`explain` runs the whole algorithm in memory, for the ``explain`` stage and for
:func:`dissect.describe` alike:

1. split the clips into fit / validation / test (:mod:`dissect.explain.splits`: stratified by
   label, groups of near-duplicates kept together);
2. evidence: every caption term's association with every neuron on the fit clips, with a
   Benjamini-Hochberg cut (:mod:`dissect.explain.evidence`);
3. candidates: the evidence template, AND's summary, the closed-set label
   (:mod:`dissect.explain.candidates`);
4. one prediction per candidate under each rule: the claims its text names
   (:mod:`dissect.explain.matcher`) and, reported beside it, caption similarity;
5. scores on validation and test, permutation p-values of the correlation
   (:mod:`dissect.explain.scoring`);
6. the shown description: a confirmed candidate or "no clear concept", with the reason
   (:mod:`dissect.explain.choice`);
7. with an LLM (``explain.method=evidence``): the LLM phrases the confirmed evidence
   descriptions only (what can be shown; at most ``summarize.max_llm_neurons``, most selective
   first, in one batched call), each phrasing is checked against the evidence
   (:func:`~dissect.explain.matcher.check_phrasing`), and the layers with a phrasing are
   scored again with it among their candidates (steps 4-6), so an accepted phrasing is shown
   only when validation confirms it at least as well.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dissect.description.llm.base import GenerationParams
from dissect.description.neurons import RULES_NAME
from dissect.evaluation.detection import unit_rows
from dissect.explain.candidates import (
    NO_CLEAR_CONCEPT,
    band_centres,
    clean_phrase,
    phrase_prompt,
    sample_exemplars,
    template,
    term_matrix,
)
from dissect.explain.choice import CONFIRMED, STATUSES, TOO_FEW, choose
from dissect.explain.evidence import associate, ranked_evidence
from dissect.explain.matcher import check_phrasing, claims
from dissect.explain.scoring import (
    Candidate,
    ScoreJob,
    claim_prediction,
    paired_se,
    permutation_p,
    score_jobs,
)
from dissect.explain.splits import assign_splits
from dissect.rows import and_summary
from dissect.util import csv_text

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
    """Too few clips to split: no evidence and nothing confirmed, so every neuron is "no clear
    concept" (AND's summary kept among its candidates, unscored), said in ``why``."""
    ev_rows = [{"layer": s["layer"], "unit": s["unit"], "evidence": [], "sample": {}}
               for s in summaries]
    ex_rows = [{"layer": s["layer"], "unit": s["unit"], "description": NO_CLEAR_CONCEPT,
                "kind": "none", "status": TOO_FEW, "why": why, "no_clear_concept": True,
                "test": {}, "val": {},
                "candidates": [Candidate("and", and_summary(s)
                                         ).to_dict()]} for s in summaries]
    return Explained(ev_rows, ex_rows, {"neurons": len(ex_rows), "unscored": why,
                                        "status": _status_counts(ex_rows)})


def _status_counts(ex_rows) -> dict[str, dict[str, int]]:
    """Per layer, how many neurons are confirmed / unconfirmed / too_few_positives /
    no_evidence."""
    out: dict[str, dict[str, int]] = {}
    for r in ex_rows:
        d = out.setdefault(r["layer"], dict.fromkeys(STATUSES, 0))
        d[r["status"]] += 1
    return out


def explain(ids: Sequence[str], captions: Mapping[str, str],
            clip_terms: Mapping[str, Sequence[str]],
            activations: Callable[[str], np.ndarray], summaries: Sequence[Mapping[str, Any]],
            concepts: Sequence[Mapping[str, Any]], cfg, client=None,
            params: GenerationParams | None = None, embedder=None, progress: bool = True,
            strata: Sequence[str] | None = None, groups: Sequence[str] | None = None, *,
            max_llm_neurons: int = 40, negation_window: int = 4,
            label_terms: Collection[str] = ()) -> Explained:
    """Evidence, candidates, scores and the shown description of every neuron, in memory.

    Args:
        ids: clip ids, row ``i`` = clip ``i`` of ``activations(layer)``.
        captions: clip id -> its combined caption text.
        clip_terms: clip id -> its evidence terms (``attribute=value``).
        activations: layer -> pooled activations ``[N, U]`` of every clip.
        summaries / concepts: AND's module-B rows and the closed-set rows, one per neuron,
            in the same order (``summaries.jsonl`` / ``concepts.jsonl``).
        cfg: the ``explain`` section (:class:`~dissect.config.ExplainConfig`).
        client: the LLM client for the phrasing candidates (None or the rule-based one: none).
        embedder: ``encode(texts) -> [n, d]``; default all-MiniLM-L6-v2.
        strata / groups: ``[N]`` per clip, for the stratified grouped split
            (:func:`~dissect.explain.splits.split_keys` of the clip rows; None: by clip).
        max_llm_neurons: neurons whose evidence the LLM phrases (``summarize.max_llm_neurons``;
            -1: no cap).
        negation_window: words before a mention in which a negation cancels it
            (``concepts.negation_window``).
        label_terms: the terms that dataset labels gave (the ``labels`` captioner's): one
            nearly as strong as a neuron's strongest transcript term leads its template
            (:func:`~dissect.explain.candidates.labels_first`; scored and confirmed as any
            template).
    """
    from tqdm.auto import tqdm

    ids = list(ids)
    label_terms = {t.lower() for t in label_terms}
    pos = {cid: i for i, cid in enumerate(ids)}
    terms, X = term_matrix(ids, clip_terms)
    term_index = {t.lower(): j for j, t in enumerate(terms)}
    split = assign_splits(ids, tuple(cfg.splits), cfg.split_seed,
                          strata, groups)
    fit = split == "fit"
    split_mask = {name: split == name for name in ("val", "test")}
    not_fit = np.flatnonzero(~fit)
    centres = band_centres(terms, X[fit])
    n_val, n_test = int((split == "val").sum()), int((split == "test").sum())
    if fit.sum() < MIN_FIT or n_val < MIN_HELD or n_test < MIN_HELD:
        why = (f"{len(ids)} clips are too few for the fit/val/test split "
               f"{list(cfg.splits)} (fit {int(fit.sum())}, val {n_val}, test "
               f"{n_test}; need {MIN_FIT}/{MIN_HELD}/{MIN_HELD}): nothing can be confirmed")
        print(f"[explain] {why}", file=sys.stderr)
        return _unscored(summaries, why)
    if embedder is None:
        from dissect.description.embed import default_embedder

        embedder = default_embedder()
    C = unit_rows(embedder.encode([captions.get(cid, "") for cid in ids]))
    use_llm = (cfg.method == "evidence" and client is not None
               and client.name != RULES_NAME)
    params = params or GenerationParams()
    window = int(negation_window)
    layers = list(dict.fromkeys(s["layer"] for s in summaries))
    by_key = {(s["layer"], s["unit"]): (s, c) for s, c in zip(summaries, concepts, strict=True)}
    # pass 1: evidence of every layer (fit clips), so the LLM budget is shared by the run's
    # most selective neurons rather than spent per layer
    evidence_of: dict[str, list] = {}
    for layer in tqdm(layers, desc="evidence", unit="layer", disable=not progress,
                      file=sys.stderr):
        A = np.asarray(activations(layer), dtype=np.float64)
        assoc = associate(A[fit], X[fit], cfg.min_support)
        evidence_of[layer] = ranked_evidence(assoc, terms, cfg.evidence_alpha,
                                             top=EVIDENCE_TOP)
    val = split == "val"

    def explain_layer(layer: str, phrased: Mapping[int, tuple[str, bool, str]]
                      ) -> tuple[list[dict], list[dict]]:
        """``evidence.jsonl`` and ``explanations.jsonl`` rows of one layer's neurons, with
        ``phrased`` (unit -> the LLM's checked phrasing) among their candidates."""
        ev_rows: list[dict] = []
        ex_rows: list[dict] = []
        A = np.asarray(activations(layer), dtype=np.float64)
        evidence = evidence_of[layer]
        units = range(A.shape[1])
        built = []
        for u in units:
            s, c = by_key[layer, u]
            ev = evidence[u]
            cands = ([Candidate("evidence", template(ev, centres, label_terms)[0])]
                     if ev else [])
            if u in phrased:
                text, ok, why = phrased[u]
                cands.append(Candidate("llm", text,
                                       note="accepted" if ok else f"rejected: {why}"))
            cands.append(Candidate("and", and_summary(s)))
            db = (c.get("closed") or {}).get("db") or []
            if db:
                cands.append(Candidate("closed", str(db[0][0])))
            own = np.zeros(len(ids), dtype=bool)
            own[[pos[x] for x in (s.get("top_clips") or []) + (s.get("bottom_clips") or [])
                 if x in pos]] = True
            built.append((u, ev, cands, own))
        # one prediction per distinct text under each rule: the claims it names, and its
        # caption similarity
        uniq = sorted({x.text for _, _, cands, _ in built for x in cands if x.text})
        col = {t: j for j, t in enumerate(uniq)}
        claims_of = {t: claims(t, terms, window) for t in uniq}
        PT = np.zeros((len(ids), len(uniq)))
        for t, j in col.items():
            PT[:, j] = claim_prediction(X, term_index, claims_of[t])
        E = unit_rows(embedder.encode(uniq)) if uniq else np.zeros((0, C.shape[1]))
        PC = C @ E.T
        jobs: list[ScoreJob] = []
        for u, _, cands, own in built:
            for x in cands:
                if x.text:
                    x.claims = claims_of[x.text]
                    jobs.append(ScoreJob(x, u, own, col[x.text]))
        score_jobs(jobs, A, split_mask, PT, "", cfg.detection_quantile)
        score_jobs(jobs, A, split_mask, PC, "_caption", cfg.detection_quantile)
        for u, ev, cands, own in built:
            _confirm(cands, A[:, u], own, split_mask, col, PT, cfg)
            rows_val = np.flatnonzero(val & ~own)
            a_val = A[rows_val, u]

            def se(c1, c2, rows_val=rows_val, a_val=a_val, PT=PT, col=col):
                P2 = PT[np.ix_(rows_val, [col[c1.text], col[c2.text]])]
                return float(paired_se(P2, a_val)[0, 1])

            shown, status, why = choose(cands, cfg.method, bool(ev),
                                        cfg.confirm_alpha,
                                        cfg.min_val_positives, se)
            sample = sample_exemplars(A[:, u], n_top=cfg.sample_top,
                                      n_random=cfg.sample_random,
                                      n_bottom=cfg.sample_bottom,
                                      seed=cfg.split_seed,
                                      exclude=not_fit)
            ev_rows.append({"layer": layer, "unit": u, "evidence": [e.to_dict() for e in ev],
                            "sample": {k: [ids[i] for i in v]
                                       for k, v in sample.to_dict().items()}})
            ex_rows.append({
                "layer": layer, "unit": u,
                "description": shown.text if shown else NO_CLEAR_CONCEPT,
                "kind": shown.kind if shown else "none", "status": status, "why": why,
                "no_clear_concept": shown is None,
                "test": shown.scores.get("test", {}) if shown else {},
                "val": shown.scores.get("val", {}) if shown else {},
                "candidates": [x.to_dict() for x in cands],
            })
        return ev_rows, ex_rows

    # pass 1: every neuron without the LLM; pass 2: the LLM phrases the run's confirmed
    # evidence descriptions (most selective first, at most max_llm_neurons), and the layers
    # with a phrasing are explained again with it among their candidates
    rows_of = {layer: explain_layer(layer, {})
               for layer in tqdm(layers, desc="explain", unit="layer", disable=not progress,
                                 file=sys.stderr)}
    phrased_of: dict[tuple[str, int], tuple[str, bool, str]] = {}
    if use_llm:
        targets = _phrase_targets(rows_of, evidence_of, max_llm_neurons)
        phrased_of = _phrase(activations, evidence_of, targets, fit, ids, captions, terms,
                             client, params)
        again = [lay for lay in layers if any(k[0] == lay for k in phrased_of)]
        for layer in tqdm(again, desc="explain (phrasings)", unit="layer",
                          disable=not progress, file=sys.stderr):
            rows_of[layer] = explain_layer(layer, {u: v for (lay, u), v in phrased_of.items()
                                                   if lay == layer})
    ev_rows = [r for layer in layers for r in rows_of[layer][0]]
    ex_rows = [r for layer in layers for r in rows_of[layer][1]]
    n_llm = len(phrased_of)
    n_rejected = sum(not ok for _, ok, _ in phrased_of.values())
    failures = [why for _, ok, why in phrased_of.values() if why.startswith(LLM_FAILED)]
    kinds: dict[str, int] = {}
    for r in ex_rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    status = _status_counts(ex_rows)
    totals = {k: sum(d[k] for d in status.values()) for k in STATUSES}
    print(f"[explain] {len(ex_rows)} neurons, {len(terms)} terms; "
          f"{', '.join(f'{k} {v}' for k, v in totals.items())}; shown: "
          f"{', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}; LLM phrasings "
          f"{n_llm} ({n_rejected} rejected by the check, {len(failures)} failed calls)",
          file=sys.stderr)
    return Explained(ev_rows, ex_rows, {
        "neurons": len(ex_rows), "terms": len(terms), "shown": kinds, "status": status,
        "status_total": totals, "llm_phrasings": n_llm,
        "llm_rejected": n_rejected, "llm_failures": failures,
        "splits": {s: int((split == s).sum()) for s in ("fit", "val", "test")}})


def _confirm(cands: Sequence[Candidate], a: np.ndarray, own: np.ndarray,
             split_mask: Mapping[str, np.ndarray], col: Mapping[str, int], PT: np.ndarray,
             cfg) -> None:
    """Add ``p`` (one-sided permutation p-value of the correlation, terms rule) to every
    scored candidate's ``val`` and ``test`` scores, one neuron's candidates at once (the same
    permutations for all of them)."""
    scored = [x for x in cands if x.text in col]
    if not scored:
        return
    for name, base in split_mask.items():
        rows = np.flatnonzero(base & ~own)
        P = PT[np.ix_(rows, [col[x.text] for x in scored])]
        ps = permutation_p(P, a[rows], cfg.permutations, cfg.split_seed)
        for x, p in zip(scored, ps, strict=True):
            if name in x.scores:
                x.scores[name]["p"] = None if np.isnan(p) else round(float(p), 5)


def _phrase_targets(rows_of: Mapping[str, tuple[list[dict], list[dict]]],
                    evidence_of: Mapping[str, Sequence], budget: int) -> list[tuple[str, int]]:
    """The neurons whose evidence the LLM phrases: those whose shown description is the
    confirmed evidence template, most selective first (their strongest term's AUROC), at most
    ``budget`` of the run (-1: all). A phrasing of anything else could not be shown, so it is not
    asked for."""
    shown = [(r["layer"], r["unit"]) for _, ex in rows_of.values() for r in ex
             if r["kind"] == "evidence" and r["status"] == CONFIRMED]
    ranked = sorted(shown, key=lambda k: -evidence_of[k[0]][k[1]][0].auroc)
    return ranked[: budget if budget >= 0 else None]


def _phrase(activations, evidence_of, chosen: Sequence[tuple[str, int]], fit, ids, captions,
            terms, client, params) -> dict[tuple[str, int], tuple[str, bool, str]]:
    """The LLM's phrasing of the evidence of the ``chosen`` neurons (one batched
    ``client.generate`` call), each checked by
    :func:`~dissect.explain.matcher.check_phrasing`: ``(layer, unit) -> (text, ok, why)``.
    The prompt's captions are those of the neuron's top fit clips only."""
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
    """``descriptions.csv``: one row per neuron with the shown description and its evidence.

    Every cell goes through :func:`dissect.util.csv_cell`, so a label or caption that starts like
    a formula (``=HYPERLINK(...)``) opens as text in a spreadsheet."""
    header = ["layer", "unit", "description", "kind", "status", "why", "test_correlation",
              "test_p", "test_auprc", "test_detection", "evidence", "top_concepts", "keywords",
              "and_summary", "low_summary", "llm", "captioners"]
    rows = []
    for x, e, s, c in zip(ex_rows, ev_rows, summaries, concepts, strict=True):
        ev = "; ".join(f"{d['term']} (AUROC {d['auroc']:.2f}, d {d['effect']:.1f})"
                       for d in e["evidence"][:4])
        top = [f"{m}:{name}={score:.3f}" for m, lst in (c.get("closed") or {}).items()
               for name, score in lst]
        kw = c.get("keywords") or {}
        kws = kw.get("adjectives", []) + kw.get("nouns", [])[:3]
        t = x.get("test") or {}
        rows.append([x["layer"], x["unit"], x["description"], x["kind"],
                     x.get("status", ""), x.get("why", ""),
                     *("" if t.get(k) is None else t[k]
                       for k in ("correlation", "p", "auprc", "detection")), ev,
                     "; ".join(top), ", ".join(kws), and_summary(s),
                     s.get("low", ""), s["llm"], "+".join(captioners)])
    return csv_text(header, rows)
