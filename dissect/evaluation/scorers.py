"""Scorers: one registered class per top-level metric of ``scores.json``.

A :class:`Scorer` has a ``name`` (its key in ``scores.json``) and is called as
``scorer(data, config) -> dict`` with the run's :class:`ScoringData` (clips, neurons, captions,
concept matrix, ground truth, activations) and the :class:`ScoreConfig`.
:func:`~dissect.evaluation.scores.evaluate_run` calls every scorer of :data:`SCORERS` in
registration order, so a new metric is one class decorated with :func:`scorer`.
Per-neuron values go into ``data.per_neuron[layer]`` (written when ``config.per_neuron``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from dissect.evaluation import rundata
from dissect.evaluation.agreement import layer_agreement
from dissect.evaluation.detection import detection_scores
from dissect.evaluation.last_layer import (
    MAP_THRESHOLD,
    label_vocabulary,
    last_layer_accuracy,
    map_names,
    mapped_accuracy,
    rank_labels,
)
from dissect.evaluation.layer_stats import (
    adjective_stats,
    cluster_clips,
    interpretable_fraction,
    polysemanticity,
)
from dissect.registry import Registry


@dataclass(frozen=True)
class ScoreConfig:
    """The settings of one evaluation (see :func:`~dissect.evaluation.scores.evaluate_run`)."""

    quantile: float
    method: str
    refit: bool
    n_clusters: int
    k: int
    tau: int
    seed: int
    per_neuron: bool
    #: label columns the head's classes are mapped onto (None: all but the redundant numeric)
    label_columns: tuple[str, ...] | None = None
    #: MiniLM cosine of the mapping's embedding rule
    map_threshold: float = MAP_THRESHOLD


@dataclass
class ScoringData:
    """What the scorers read, loaded once per evaluation."""

    run_dir: Any
    clips: list[dict]
    ids: list[str]
    hold: np.ndarray  # held-out clips (bool per clip)
    fit: np.ndarray
    by_layer: dict[str, list[dict]]  # neuron rows per layer, by unit
    rows: list[dict]
    cset: Any  # the concept set
    cap_emb: np.ndarray  # caption embeddings [N, D]
    P: np.ndarray  # DB clip x concept matrix [N, C]
    Y: np.ndarray  # ground truth [N, C]
    known: np.ndarray  # concepts with ground truth
    truth: str | None
    y_binary: bool
    embedder: Any
    sim_fn: Callable[..., Any]
    has_caption: np.ndarray | None = None  # clips with a non-blank caption (bool per clip)
    per_neuron: dict[str, dict[str, Any]] = field(default_factory=dict)
    _cached: tuple[str, np.ndarray] | None = None

    def activations(self, layer: str) -> np.ndarray:
        """``[clips, units]`` activations of ``layer`` (the last one read is kept)."""
        if self._cached is None or self._cached[0] != layer:
            U = rundata.load_activations(self.run_dir, layer)
            if U.shape[0] != len(self.clips):
                raise ValueError(f"{layer}: {U.shape[0]} activation rows for "
                                 f"{len(self.clips)} clips")
            self._cached = (layer, U)
        return self._cached[1]

    def per(self, layer: str) -> dict[str, Any]:
        return self.per_neuron.setdefault(layer, {})


class Scorer(Protocol):
    """One top-level metric of ``scores.json``."""

    name: str

    def __call__(self, data: ScoringData, config: ScoreConfig) -> dict[str, Any]: ...


SCORERS: Registry[Scorer] = Registry("scorer")


def scorer(cls: type) -> type:
    """Class decorator: register an instance of ``cls`` under ``cls.name``."""
    SCORERS.add(cls.name, cls())
    return cls


def _mean(xs) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


#: A head unit counts in ``last_layer.<method>.supported`` when its class has this many clips.
MIN_CLASS_CLIPS = 5


def _norm_name(x: Any) -> str:
    return re.sub(r"[\s_\-]+", " ", str(x).strip().lower())


def class_clip_counts(clips: list[dict], class_names: list[str]) -> list[int]:
    """Per class name, the clips with a label value equal to it (case, ``_``/``-`` ignored)."""
    want = {_norm_name(c): i for i, c in enumerate(class_names)}
    counts = [0] * len(class_names)
    for clip in clips:
        hit = set()
        for v in (clip.get("labels") or {}).values():
            for x in v if isinstance(v, list) else [v]:
                i = want.get(_norm_name(x))
                if i is not None:
                    hit.add(i)
        for i in hit:
            counts[i] += 1
    return counts


def _concept_names(pred: list) -> list[str]:
    """Names of ranked predictions (names or ``(name, score)`` pairs)."""
    return [str(p[0] if isinstance(p, (list, tuple)) else p) for p in pred]


def claim_text(text: str, kind: str | None = None) -> str:
    """The part of a description that names the neuron's concept: for the evidence template
    (:func:`~dissect.explain.candidates.template`, ``"Snare drum; weaker for measured pitch near
    G1"``) its first term, before the ``"; weaker for"`` part; any other text whole; ``""`` for
    "no clear concept" (kind ``none``), which names nothing."""
    if kind == "none":
        return ""
    text = str(text or "").strip()
    return text.split(";", 1)[0].strip() if kind == "evidence" else text


def description_predictions(texts: list[str], cset, embedder, k: int = 5
                            ) -> list[list[tuple[str, float]]]:
    """Descriptions as ranked concept lists: the ``k`` concepts whose prompt is nearest to
    each text (sentence-embedding cosine); an empty text predicts nothing."""
    uniq = sorted({t for t in texts if t.strip()})
    if not uniq:
        return [[] for _ in texts]
    E = np.asarray(embedder.encode(uniq + list(cset.prompts)), dtype=np.float64)
    E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    S = E[: len(uniq)] @ E[len(uniq):].T
    best = {t: [(cset.concepts[c], float(S[i, c])) for c in np.argsort(-S[i], kind="stable")[:k]]
            for i, t in enumerate(uniq)}
    return [best.get(t, []) if t.strip() else [] for t in texts]


@scorer
class LastLayer:
    """AND Table 2 for the classifier head: per closed-set method in ``concepts.jsonl``, for the
    shown description (``description``: the concept its first claim names, by
    :func:`claim_text`, mapped to its nearest concepts by sentence embedding; "no clear
    concept" predicts nothing) and for AND's summary (``and_summary``, mapped the same way),
    over all head units and (``supported``) over the units whose class has at least
    :data:`MIN_CLASS_CLIPS` clips in the probe set (a class the set never plays cannot be
    found from its clips).

    ``mapped``: Table 2 for a head whose classes are not the probe set's labels (YAMNet's
    AudioSet head on ESC-50). Each class is mapped onto the set's label vocabulary
    (:func:`~dissect.evaluation.last_layer.map_names`: exact name, normalised name, else the
    MiniLM-nearest label at cosine >= ``config.map_threshold``); a unit is scored when its class
    maps onto a label with at least :data:`MIN_CLASS_CLIPS` clips, and is right when its
    prediction, as a probe label, is that label: the shown description's claim and AND's
    summary ranked over the labels (:func:`~dissect.evaluation.last_layer.rank_labels`), a
    closed-set method's ranked concepts mapped like the classes (a concept that maps onto no
    label is a wrong guess in its place). The
    block states the columns, the threshold, the mapping (with how each class matched) and
    the denominator. AND's setting (a head fitted on the set's own classes) maps every class
    exactly, and the blocks above stay as they are."""

    name = "last_layer"

    def __call__(self, data: ScoringData, config: ScoreConfig) -> dict[str, Any]:
        info = rundata.record_info(data.run_dir)
        head, class_names = info.get("head_layer"), info.get("class_names")
        last: dict[str, Any] = {}
        by_layer = data.by_layer
        if head and class_names and head in by_layer and len(by_layer[head]) == len(class_names):
            rows = by_layer[head]
            preds_of = {m: [r["closed"].get(m) or [] for r in rows]
                        for m in sorted({m for r in rows for m in r["closed"]})}
            # the shown (checked) description, by the concept its first claim names; and
            # AND's module-B summary, as its Table 2 reads a description
            if any(r.get("shown") for r in rows):
                preds_of["description"] = description_predictions(
                    [claim_text((r.get("shown") or {}).get("text", ""),
                                (r.get("shown") or {}).get("kind")) for r in rows],
                    data.cset, data.embedder)
            if any(r.get("description") for r in rows):
                preds_of["and_summary"] = description_predictions(
                    [str(r.get("description") or "") for r in rows], data.cset, data.embedder)
            counts = class_clip_counts(data.clips, list(class_names))
            keep = [i for i, n in enumerate(counts) if n >= MIN_CLASS_CLIPS]
            for m, preds in preds_of.items():
                last[m] = last_layer_accuracy(preds, class_names, data.embedder,
                                              data.cset.concepts)
                sub = last_layer_accuracy([preds[i] for i in keep],
                                          [class_names[i] for i in keep], data.embedder,
                                          data.cset.concepts) if keep else None
                last[m]["supported"] = {"min_clips": MIN_CLASS_CLIPS,
                                        "classes": [class_names[i] for i in keep],
                                        **(sub or {"n_units": 0})}
            self._mapped(last, data, config, rows, list(class_names))
        return last

    def _mapped(self, last: dict[str, Any], data: ScoringData, config: ScoreConfig,
                rows: list[dict], class_names: list[str]) -> None:
        """Add ``last[method]["mapped"]`` for every method of ``last`` (see the class)."""
        labels, per_key, columns = label_vocabulary(data.clips, config.label_columns)
        head = {"columns": columns, "threshold": config.map_threshold, "n_labels": len(labels),
                "chance_top1": 100.0 / len(labels) if labels else None}
        if not labels:
            for m in last:
                last[m]["mapped"] = {**head, "n_classes": len(class_names), "n_mapped": 0,
                                     "n_units": 0, "top1": None, "top5": None, "mapping": []}
            return
        mapping = map_names(class_names, labels, data.embedder, config.map_threshold)
        concept_map = dict(zip(data.cset.concepts,
                               map_names(list(data.cset.concepts), labels, data.embedder,
                                         config.map_threshold), strict=True))
        texts = {
            "description": [claim_text((r.get("shown") or {}).get("text", ""),
                                       (r.get("shown") or {}).get("kind")) for r in rows],
            "and_summary": [str(r.get("description") or "") for r in rows]}
        for m in last:
            if m in texts:
                preds = rank_labels(texts[m], labels, data.embedder)
                k = min(5, len(labels))
            else:  # a closed-set method: its ranked concepts, each as the label it maps onto
                # (None where it maps onto none: an unmapped top-1 concept is a wrong top-1)
                preds = [[(concept_map.get(c) or {}).get("label")
                          for c in _concept_names(r["closed"].get(m) or [])] for r in rows]
                k = last[m].get("n_predicted") or 0
            last[m]["mapped"] = {**head, **mapped_accuracy(preds, class_names, mapping, per_key,
                                                           MIN_CLASS_CLIPS, k)}


@scorer
class Agreement:
    """Per layer: activation vs top-1 concept ground truth on the held-out clips."""

    name = "agreement"

    def _top1(self, data: ScoringData, config: ScoreConfig, U, lrows) -> list[int | None]:
        if config.refit and data.fit.any():
            return [int(i) for i in np.asarray(data.sim_fn(U[data.fit],
                                                           data.P[data.fit])).argmax(axis=1)]
        top1: list[int | None] = []
        for r in lrows:
            lab = r["closed"].get(config.method) or []
            try:
                top1.append(data.cset.index(lab[0][0]) if lab else None)
            except KeyError:
                top1.append(None)
        return top1

    def __call__(self, data: ScoringData, config: ScoreConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        hold, cset = data.hold, data.cset
        for layer, lrows in data.by_layer.items():
            U = data.activations(layer)
            if data.truth is None or hold.sum() < 2:
                continue
            top1 = self._top1(data, config, U, lrows)
            ag = layer_agreement(U[hold], top1, data.Y[hold], data.known, config.quantile,
                                 data.y_binary)
            counts = np.bincount([t for t in top1 if t is not None], minlength=len(cset))
            out[layer] = {"mean": ag["mean"], "n_scored": ag["n_scored"],
                          "n_neurons": U.shape[1],
                          "top_concepts": [[cset.concepts[i], int(counts[i])]
                                           for i in np.argsort(-counts, kind="stable")[:5]
                                           if counts[i]]}
            if config.per_neuron:
                data.per(layer)["agreement"] = ag["per_neuron"]
                data.per(layer)["top1"] = [cset.concepts[t] if t is not None else None
                                           for t in top1]
        return out


@scorer
class Detection:
    """Per layer: AUROC of caption-vs-description similarity against binarised activations."""

    name = "detection"

    def __call__(self, data: ScoringData, config: ScoreConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        hold = data.hold
        for layer, lrows in data.by_layer.items():
            U = data.activations(layer)
            if hold.sum() < 2:
                continue
            descs = [r["description"] for r in lrows]
            if len(descs) == U.shape[1]:
                det = detection_scores(descs, U[hold], data.cap_emb[hold], data.embedder,
                                       config.quantile)
                out[layer] = {"mean_auroc": det["mean"], "n_scored": det["n_scored"],
                              "n_neurons": U.shape[1]}
                if config.per_neuron:
                    data.per(layer)["detection_auroc"] = det["auroc"]
        return out


@scorer
class Layers:
    """Per layer: interpretable fraction, polysemanticity, adjective counts."""

    name = "layers"

    def __call__(self, data: ScoringData, config: ScoreConfig) -> dict[str, Any]:
        k, n_clusters, seed = config.k, config.n_clusters, config.seed
        clip_texts = rundata.caption_parts(data.run_dir)
        clusters = cluster_clips(clip_texts, data.embedder, n_clusters, seed) if clip_texts else {}
        tops = {layer: [r["top_clips"] for r in lrows] for layer, lrows in data.by_layer.items()}
        interp = interpretable_fraction(tops, clusters, k=k, tau=config.tau,
                                        n_clusters=n_clusters, seed=seed)
        ok = data.has_caption if data.has_caption is not None else np.ones(len(data.ids), bool)
        clip_concept = {cid: data.cset.concepts[int(j)]
                        for cid, j, o in zip(data.ids, data.P.argmax(axis=1), ok, strict=True)
                        if o}
        adj = adjective_stats([r for r in data.rows if r["keywords"]])
        out = {}
        for layer, t in tops.items():
            poly_c = polysemanticity(t, clusters, k)
            poly_k = polysemanticity(t, clip_concept, k)
            out[layer] = {
                "n_neurons": len(t),
                "interpretable_fraction": interp["per_layer"].get(layer),
                "mean_poly_clusters": _mean(poly_c),
                "mean_poly_concepts": _mean(poly_k),
                "mean_adjectives": adj["mean_adjectives"].get(layer),
                "top_adjectives": adj["top_adjectives"].get(layer, []),
            }
            if config.per_neuron:
                data.per(layer).update(interpretable=interp["interpretable"][layer],
                                       poly_clusters=poly_c, poly_concepts=poly_k)
        return out


@scorer
class Explanations:
    """The shown descriptions of the explain stage (``explanations.jsonl``) on the test split:
    per layer, how many neurons are described / "no clear concept", which candidate kinds are
    shown, and the mean test detection AUROC and correlation of the shown descriptions and of
    AND's module-B summary side by side, over all neurons and over the selective ones (the
    strongest evidence term has AUROC >= 0.85 on the fit clips). Unscored neurons count 0.5
    (chance). Empty when the run has no explain stage."""

    name = "explanations"
    SELECTIVE_AUROC = 0.85

    def __call__(self, data: ScoringData, config: ScoreConfig) -> dict[str, Any]:
        from dissect import artifacts

        ex_path = data.run_dir / artifacts.EXPLANATIONS
        if not ex_path.is_file():
            return {}
        ev = {(r["layer"], r["unit"]): r["evidence"]
              for r in artifacts.read_jsonl(data.run_dir / artifacts.EVIDENCE)}
        out: dict[str, Any] = {}
        for r in artifacts.read_jsonl(ex_path):
            lay = out.setdefault(r["layer"], {"n_neurons": 0, "no_clear_concept": 0, "shown": {},
                                              "_all": [], "_and": [], "_sel": [],
                                              "_sel_and": [], "_corr": [],
                                              "_sel_top": [], "_sel_top_and": []})
            lay["n_neurons"] += 1
            lay["no_clear_concept"] += bool(r["no_clear_concept"])
            lay["shown"][r["kind"]] = lay["shown"].get(r["kind"], 0) + 1
            det = (r.get("test") or {}).get("detection")
            and_c = next((c for c in r["candidates"] if c["kind"] == "and"), {})
            and_det = ((and_c.get("scores") or {}).get("test") or {}).get("detection")
            d, a = 0.5 if det is None else det, 0.5 if and_det is None else and_det
            lay["_all"].append(d)
            lay["_and"].append(a)
            corr = (r.get("test") or {}).get("correlation")
            if corr is not None:
                lay["_corr"].append(corr)
            top = (r.get("test") or {}).get("detection_top")
            and_top = ((and_c.get("scores") or {}).get("test") or {}).get("detection_top")
            e = ev.get((r["layer"], r["unit"])) or []
            if e and e[0]["auroc"] >= self.SELECTIVE_AUROC:
                lay["_sel"].append(d)
                lay["_sel_and"].append(a)
                lay["_sel_top"].append(0.5 if top is None else top)
                lay["_sel_top_and"].append(0.5 if and_top is None else and_top)
        for lay in out.values():
            lay.update(mean_test_detection=_mean(lay.pop("_all")),
                       mean_test_detection_and=_mean(lay.pop("_and")),
                       n_selective=len(lay["_sel"]),
                       selective_test_detection=_mean(lay.pop("_sel")),
                       selective_test_detection_and=_mean(lay.pop("_sel_and")),
                       selective_test_detection_top=_mean(lay.pop("_sel_top")),
                       selective_test_detection_top_and=_mean(lay.pop("_sel_top_and")),
                       mean_test_correlation=_mean(lay.pop("_corr")))
        return out
