"""The report's overview: model, probe set, counts, timings, LLMs, and the offline stand-ins.

Every offline stand-in the run used is named next to the component of the AND paper it replaces,
so a reader never mistakes SmolLM2 output for Llama-2-13B output.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from dissect import artifacts
from dissect.report.data import RULES_NAME, RunData
from dissect.report.html import esc, kv_table, table

#: What AND (the paper) used for each part we replace offline.
AND_LLM = "a large LLM such as Llama-2-13B-chat (AND's summariser)"
AND_CAPTIONER = "an audio LLM such as SALMONN (AND's captioner)"
AND_TEXT_ENCODER = "CLIP's ViT-B/32 text encoder (AND's DB embedding)"

#: Pipeline stages in data-flow order (timings are listed in this order).
STAGE_ORDER = ("probe", "record", "caption", "summarize", "concepts", "explain", "evaluate",
               "report")

#: Captioners that are acoustic/metadata stand-ins for an audio-LLM captioner.
_CAPTIONER_WORDS = {"acoustic": "acoustic (librosa descriptors)", "labels": "labels (metadata)",
                    "tagger": "tagger (YAMNet AudioSet tags)", "transcript": "transcript (Whisper)"}


def llm_counts(run: RunData) -> Counter:
    """How many neurons each summariser (LLM name or the rule-based one) described."""
    return Counter(n.llm for n in run.neurons if n.llm)


def stand_ins(run: RunData) -> list[str]:
    """Plain-text sentences naming every offline stand-in the run used."""
    out: list[str] = []
    counts = llm_counts(run)
    llms = [name for name in counts if name != RULES_NAME]
    for name in llms:
        kind = "a local LLM" if name.startswith("transformers:") else "the configured LLM"
        if "smollm" in name.lower() or name.startswith("transformers:"):
            out.append(f"{name} ({kind}, {counts[name]} neurons) stands in for {AND_LLM}.")
    rules = counts.get(RULES_NAME, 0)
    if rules and llms:
        cap = artifacts.config_setting(run.config, "summarize", "max_llm_neurons")
        cap_txt = f" (summarize.max_llm_neurons={cap})" if cap is not None else ""
        out.append(f"Rule-based contrastive summaries for the {rules} neurons beyond the LLM "
                   f"cap{cap_txt}: template text, not LLM output.")
    elif rules:
        out.append(f"Rule-based contrastive summaries (no LLM) for all {rules} neurons, in "
                   f"place of {AND_LLM}.")
    caps = list(run.config.get("caption", {}).get("captioners") or [])
    if caps and "audio_llm" not in caps:
        named = ", ".join(_CAPTIONER_WORDS.get(c, c) for c in caps)
        out.append(f"Captions from the {named} captioner(s) instead of {AND_CAPTIONER}.")
    notes = run.stage_info("concepts").get("method_notes") or {}
    for method, note in sorted(notes.items()):
        note = str(note)
        if "stand-in" in note.lower():
            out.append(note if note.endswith(".") else note + ".")
        if "minilm" in note.lower():
            out.append(f"{method.upper()} embeds text with all-MiniLM-L6-v2 instead of "
                       f"{AND_TEXT_ENCODER}.")
    return out


def _status(entry: dict) -> str:
    """A stage's manifest status, with its failed work items (e.g. ``done, 3 failed``)."""
    n = entry.get("failed_items")
    return f"{entry.get('status', '')}, {n} failed" if n else str(entry.get("status", ""))


def overview_html(run: RunData) -> str:
    """The overview section (HTML, every artifact value escaped)."""
    cfg = run.config
    model = cfg.get("model", {})
    rec = run.stage_info("record")
    probe_cfg = cfg.get("probe", {})
    probe = run.stage_info("probe")
    layers = rec.get("layers") or {}
    layer_rows = [[name, (layers.get(name) or {}).get("kind", ""),
                   (layers.get(name) or {}).get("module", ""),
                   (layers.get(name) or {}).get("units",
                                                sum(n.layer == name for n in run.neurons))]
                  for name in run.layers]
    model_kv = {
        "adapter": rec.get("adapter") or model.get("name"),
        "source": rec.get("source") or model.get("source"),
        "site kind": model.get("site"),
        "device": rec.get("device") or model.get("device"),
        "options": model.get("options") or {},
        "reduction": cfg.get("record", {}).get("reduction"),
    }
    probe_kv = {
        "layout": probe_cfg.get("layout"),
        "root": probe_cfg.get("root"),
        "clips": len(run.clips),
        "audio seconds": rec.get("audio_seconds"),
        "skipped": probe.get("skip_summary") or f"{len(run.skips)} skipped",
        "flagged silent": probe.get("silent"),
    }
    counts = llm_counts(run)
    n_llm = sum(v for k, v in counts.items() if k != RULES_NAME)
    counts_kv = {
        "layers": len(run.layers),
        "neurons": len(run.neurons),
        "clips": len(run.clips),
        "captioned clips": len(run.captions),
        "LLM-described neurons": n_llm,
        "rule-based neurons": counts.get(RULES_NAME, 0),
        "neurons with failed LLM calls (marked, retried next run)":
            sum(bool(n.llm_failures) for n in run.neurons),
    }
    stages = {name: s for name, s in run.manifest.get("stages", {}).items()
              if not (name == "report" and s.get("status") == "running")}  # this very build
    names = sorted(stages, key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER
                                          else len(STAGE_ORDER), s))
    timing_rows = [[name, _status(stages[name]), stages[name].get("seconds", ""),
                    stages[name].get("finished", "")] for name in names]
    total = sum(float(s.get("seconds") or 0) for s in stages.values()
                if isinstance(s.get("seconds"), (int, float)))
    timing_rows.append(["total", "", round(total, 3), ""])
    llm_rows = [[name, n] for name, n in counts.most_common()]
    skip_rows = [[s.get("id") or s.get("path", ""), s.get("error") or s.get("reason", "")]
                 for s in run.skips[:50]]
    parts = [
        '<section id="overview"><h2>Overview</h2>',
        '<div class="grid">',
        f"<div><h3>Model</h3>{kv_table(model_kv)}</div>",
        f"<div><h3>Probe set</h3>{kv_table(probe_kv)}</div>",
        f"<div><h3>Counts</h3>{kv_table(counts_kv)}</div>",
        "</div>",
        "<h3>Offline stand-ins</h3>",
        "<ul class=\"standins\">" + "".join(f"<li>{esc(s)}</li>" for s in stand_ins(run))
        + "</ul>",
        "<h3>Summarisers</h3>", table(["writer", "neurons"], llm_rows),
        "<h3>Layers</h3>", table(["layer", "kind", "module", "units"], layer_rows),
        *_feature_figures(run),
        *_description_scores(run),
        "<h3>Stage timings</h3>",
        table(["stage", "status", "seconds", "finished"], timing_rows),
    ]
    if skip_rows:
        parts += ["<h3>Skipped clips</h3>", table(["clip", "reason"], skip_rows)]
    parts.append("</section>")
    return "\n".join(parts)


def _fmt(value: Any, digits: int = 4) -> Any:
    """A float rounded to ``digits`` decimals; anything else (None -> "") as is."""
    if value is None:
        return ""
    return round(float(value), digits) if isinstance(value, (int, float)) else value


def feature_rows(run: RunData) -> list[list[Any]]:
    """One row per SAE file in ``model.features``, from its JSON sidecar (``<file>.json``):
    layer ``sae:<layer>``, file, latents, k, held-out FVU (the fraction of the base layer's
    frame variance the SAE leaves unexplained on held-out clips' frames), held-out cosine, the
    splice figures (next-layer cosine, top-1 agreement and logit MSE of the model's output with
    the SAE's reconstruction in place of the layer, on held-out clips), the held-out frames and
    a note (why the splice was not measured, e.g. at an activation site). A file without a
    readable sidecar gets a row saying so."""
    from dissect.models.sae import SAE_PREFIX, sidecar

    rows: list[list[Any]] = []
    for path in (run.config.get("model") or {}).get("features") or []:
        side = sidecar(path)
        try:
            info = json.loads(side.read_text(encoding="utf-8"))
            cfg, metrics = info.get("config") or {}, info.get("metrics") or {}
        except (OSError, ValueError, AttributeError) as exc:
            rows.append(["", str(path), f"sidecar {side} unreadable ({type(exc).__name__})",
                         *[""] * 8])
            continue
        held, splice = metrics.get("heldout") or {}, metrics.get("splice") or {}
        rows.append([f"{SAE_PREFIX}{cfg.get('layer', '?')}", str(path), cfg.get("n_latents", ""),
                     cfg.get("k", ""), _fmt(held.get("fvu")), _fmt(held.get("cosine")),
                     _fmt(splice.get("next_cosine")), _fmt(splice.get("top1_agreement")),
                     _fmt(splice.get("logit_mse"), 6), held.get("frames", ""),
                     f"splice not measured: {splice['error']}" if splice.get("error") else ""])
    return rows


def _feature_figures(run: RunData) -> list[str]:
    rows = feature_rows(run)
    if not rows:
        return []
    return ["<h3>Sparse-autoencoder features</h3>",
            '<p class="note">Each SAE named in model.features, from its sidecar JSON: held-out '
            "FVU is the fraction of the base layer's frame variance the SAE's reconstruction "
            "leaves unexplained on frames of held-out clips (0 = exact); the splice columns "
            "compare the model with the reconstruction in place of the layer to the model "
            "itself on those clips. The latents' layer sae:&lt;layer&gt; is described below "
            "like any layer.</p>",
            table(["layer", "file", "latents", "k", "held-out FVU", "held-out cosine",
                   "splice next-layer cosine", "splice top-1 agreement", "splice logit MSE",
                   "held-out frames", "note"], rows)]


def description_score_rows(run: RunData) -> list[list[Any]]:
    """Per layer: neurons, no clear concept, shown kinds, and the distribution (quartiles,
    mean) of the shown descriptions' test-split detection AUROC."""
    import numpy as np

    rows = []
    for layer in run.layers:
        ns = [n for n in run.neurons if n.layer == layer and n.explanation]
        if not ns:
            continue
        vals = np.array([n.test_detection for n in ns if n.test_detection is not None])
        kinds = Counter(str(n.explanation.get("kind")) for n in ns if not n.no_clear_concept)
        q = (np.quantile(vals, [0.25, 0.5, 0.75]).round(3).tolist() if len(vals)
             else ["", "", ""])
        rows.append([layer, len(ns), sum(n.no_clear_concept for n in ns),
                     ", ".join(f"{k} {v}" for k, v in kinds.most_common()),
                     len(vals), round(float(vals.mean()), 3) if len(vals) else "", *q])
    return rows


def _description_scores(run: RunData) -> list[str]:
    rows = description_score_rows(run)
    if not rows:
        return []
    return ["<h3>Description scores (test split)</h3>",
            '<p class="note">Each neuron\'s shown description is the candidate (evidence '
            "template, LLM phrasing of the evidence, AND summary, closed-set label) with the best "
            "detection AUROC on validation clips; these are its scores on separate test clips. "
            "&quot;No clear concept&quot;: no evidence term passed the Benjamini-Hochberg cut."
            "</p>",
            table(["layer", "neurons", "no clear concept", "shown", "scored", "mean AUROC",
                   "q25", "median", "q75"], rows)]
