"""Choose the neurons to prune for a concept, and the random baseline of the same size.

Four selection methods over neuron records (:func:`dissect.evaluation.rundata.neuron_rows`:
``layer``, ``unit``, ``description``, ``keywords``, ``closed``):

* ``keyword`` (:func:`select_by_keyword`): the concept (or any of ``terms``) appears as a
  whole-word **lemma sequence** in the neuron's description or equals one of its keywords.
  Text is lemmatised with spaCy; a word matches a token when they share its lowercased lemma or
  surface form (so "dogs" matches "dog", "Water drops fall" matches ``water_drops`` although
  the tagger calls "drops" AUX there, and "rain" never matches "train": AND's OCP used a
  substring test, §5 item 8). Concept ids are read as words (``_``/``-`` -> space). A mention
  with a negation among the ``negation_window`` tokens before it in its sentence ("there is no
  dog barking") does not count, as in module C. Ranked by the number of matches, then by the
  position of the first match (rule-based descriptions list their strongest terms first).
* ``concept`` (:func:`select_by_concept`): one of the concepts is among the neuron's top-``k``
  closed-set concepts of ``method`` (default DB). Ranked by the best position, then score.
* ``evidence`` (:func:`select_by_evidence`): one of the concepts is a term of the neuron's
  *shown* description (the checked one, ``explanations.jsonl``; e.g. ``audioset=Snare drum``
  behind "Snare drum; weaker for drum kit"), among its first ``top_k`` terms. Ranked by that
  term's effect size (Cohen's d of the neuron's activation, clips with the term against the
  rest), then AUROC: the description's own measured strength.
* ``embedding`` (:func:`select_by_embedding`): sentence-embedding cosine between the description
  and the concept text is at least ``threshold``. Ranked by cosine.

Each ``select_by_*`` returns the selected ``(layer, unit)`` pairs sorted by layer name, then
unit; :func:`select_neurons` returns a :class:`Selection` with both the sorted and the ranked
(strongest first) lists, used for forget/retain curves over prefixes.

Random baseline (:func:`random_like`): the same number of neurons drawn uniformly, either
``matched`` (default: position i of the random ranking is drawn from the same layer as position
i of the selection, so every prefix has the selection's per-layer counts; draws are without
replacement within a layer and may include selected neurons) or ``global`` (uniform over all
units of the candidate layers). Different seeds give independent draws.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Neuron = tuple[str, int]


@dataclass
class Selection:
    """Selected neurons for a concept.

    Attributes:
        concept: the concept asked for.
        method: ``keyword`` | ``concept`` | ``embedding``.
        ranked: strongest first.
        scores: neuron -> the ranking score (higher = stronger).
        settings: the method's parameters (for reports).
    """

    concept: str
    method: str
    ranked: list[Neuron]
    scores: dict[Neuron, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def neurons(self) -> list[Neuron]:
        """Sorted by (layer, unit)."""
        return sorted(self.ranked)

    def __len__(self) -> int:
        return len(self.ranked)

    def per_layer(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer, _ in self.ranked:
            out[layer] = out.get(layer, 0) + 1
        return out


def _rows(rows: Iterable[Mapping[str, Any]], layers: Sequence[str] | None) -> list[Mapping]:
    keep = set(layers) if layers else None
    return [r for r in rows if keep is None or r["layer"] in keep]


def _as_list(x: str | Sequence[str]) -> list[str]:
    return [x] if isinstance(x, str) else [str(v) for v in x]


# --------------------------------------------------------------------------- keyword


def _words(doc) -> list[tuple[frozenset[str], Any]]:
    """``(forms, token)`` of every non-punctuation, non-space token: its lowercased lemma and
    surface text (the tagger's part of speech decides the lemma: "drops" is "drop" as a noun
    but stays "drops" when tagged AUX, so both forms count)."""
    return [(frozenset((t.lemma_.lower(), t.text.lower())), t) for t in doc
            if not (t.is_punct or t.is_space)]


def concept_text(concept: str) -> str:
    """A concept id as words: ``water_drops`` / ``water-drops`` -> ``water drops``."""
    return re.sub(r"[_\-\s]+", " ", str(concept)).strip()


def _phrase(doc) -> tuple[frozenset[str], ...]:
    return tuple(forms for forms, _ in _words(doc))


def _find(phrase: tuple[frozenset[str], ...], words: list[tuple[frozenset[str], Any]],
          window: int | None = None) -> list[int]:
    """Start positions where ``phrase`` matches ``words`` (a phrase word matches a token when
    they share a form, lemma or text), leaving out matches with a negation among the
    ``window`` tokens before them in the same sentence (None: no negation check)."""
    from dissect.description.keywords import _negated

    n = len(phrase)
    if n == 0:
        return []
    out = []
    for i in range(len(words) - n + 1):
        if all(p & words[i + j][0] for j, p in enumerate(phrase)):
            tok = words[i][1]
            if window is None or not _negated(tok, tok.sent, window):
                out.append(i)
    return out


def select_by_keyword(rows: Iterable[Mapping[str, Any]], concept: str | Sequence[str], *,
                      terms: Sequence[str] = (), nlp=None, layers: Sequence[str] | None = None,
                      use_keywords: bool = True, negation_window: int | None = None,
                      return_scores: bool = False):
    """Neurons whose description (or keyword list) contains the concept as a lemma sequence.

    Args:
        rows: neuron records with ``description`` and optional ``keywords``.
        concept: the concept phrase (or several); ids like ``water_drops`` are read as words.
        terms: more phrases that count as the concept (synonyms, e.g. "high register").
        nlp: a spaCy pipeline with a lemmatizer; default the packaged en_core_web_sm.
        layers: only consider these layers.
        negation_window: a mention with a negation ("no", "not", "without", ...) among this
            many tokens before it in its sentence does not count ("there is no dog barking");
            default :data:`dissect.description.keywords.NEGATION_WINDOW`, as module C uses.
            Keyword lists are already negation-free (module C).

    Returns:
        Sorted ``(layer, unit)`` pairs (with ``return_scores``: also ``{neuron: (n_matches,
        first_position)}``).
    """
    from dissect.description.keywords import NEGATION_WINDOW

    if nlp is None:
        from dissect.description.keywords import load_nlp

        nlp = load_nlp()
    window = NEGATION_WINDOW if negation_window is None else int(negation_window)
    rows = _rows(rows, layers)
    wanted = [concept_text(c) for c in _as_list(concept) + list(terms)]
    phrases = [_phrase(d) for d in nlp.pipe(wanted)]
    phrases = [p for p in dict.fromkeys(phrases) if p]
    if not phrases:
        raise ValueError(f"concept {concept!r} has no words to match")
    texts = [str(r.get("description") or "") for r in rows]
    uniq = sorted(set(texts))
    docs = dict(zip(uniq, nlp.pipe(uniq), strict=True))
    kw_cache: dict[str, tuple[frozenset[str], ...]] = {}
    found: dict[Neuron, tuple[int, int]] = {}
    for r, text in zip(rows, texts, strict=True):
        words = _words(docs[text])
        starts = sorted(s for p in phrases for s in _find(p, words, window))
        n, first = len(starts), (starts[0] if starts else 10**9)
        if use_keywords and not n:
            kws = [w for v in (r.get("keywords") or {}).values() if isinstance(v, list)
                   for w in v]
            todo = [w for w in kws if w not in kw_cache]
            for w, d in zip(todo, nlp.pipe([concept_text(w) for w in todo]), strict=True):
                kw_cache[w] = _phrase(d)
            n = sum(any(len(kw_cache[w]) == len(p) and all(a & b for a, b in
                                                            zip(kw_cache[w], p, strict=True))
                        for p in phrases) for w in kws)
        if n:
            found[(r["layer"], int(r["unit"]))] = (n, first)
    out = sorted(found)
    return (out, found) if return_scores else out


# --------------------------------------------------------------------------- closed set


def _norm(x: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(x).strip().lower())


def select_by_concept(rows: Iterable[Mapping[str, Any]], concept: str | Sequence[str], *,
                      method: str = "db", top_k: int = 3, layers: Sequence[str] | None = None,
                      return_scores: bool = False):
    """Neurons with one of the concepts among their top-``k`` closed-set concepts (``method``).

    Concept names are compared case-insensitively with ``_``/``-``/spaces equal. Returns sorted
    pairs (with ``return_scores``: also ``{neuron: (position, score)}`` of the best hit).
    """
    wanted = {_norm(c) for c in _as_list(concept)}
    found: dict[Neuron, tuple[int, float]] = {}
    for r in _rows(rows, layers):
        preds = (r.get("closed") or {}).get(method) or []
        for pos, p in enumerate(preds[:top_k]):
            name, score = (p[0], p[1]) if isinstance(p, (list, tuple)) else (p, 0.0)
            if _norm(name) in wanted:
                found[(r["layer"], int(r["unit"]))] = (pos, float(score))
                break
    out = sorted(found)
    return (out, found) if return_scores else out


# --------------------------------------------------------------------------- evidence


def _term_value(term: str) -> str:
    """``"audioset=Snare drum"`` -> ``"snare drum"``; a term without ``=`` is its own value."""
    return _norm(str(term).split("=", 1)[1] if "=" in str(term) else term)


def select_by_evidence(rows: Iterable[Mapping[str, Any]], concept: str | Sequence[str], *,
                       top_k: int | None = None, layers: Sequence[str] | None = None,
                       min_effect: float = 0.0, return_scores: bool = False):
    """Neurons whose shown description names one of the concepts among its first ``top_k``
    terms (all terms when None) with effect size above ``min_effect``.

    A term matches when its value (after ``key=``) equals a concept name, case, ``_``, ``-``
    and spaces ignored. Rows need ``shown`` (:func:`dissect.evaluation.rundata.neuron_rows`);
    neurons without it are never selected. Returns sorted pairs (with ``return_scores``: also
    ``{neuron: (effect, auroc, position)}`` of the best matching term).
    """
    wanted = {_norm(c) for c in _as_list(concept)}
    k = None if top_k is None else int(top_k)
    found: dict[Neuron, tuple[float, float, int]] = {}
    for r in _rows(rows, layers):
        terms = ((r.get("shown") or {}).get("terms") or [])[:k]
        best = None
        for pos, t in enumerate(terms):
            if _term_value(t.get("term", "")) not in wanted:
                continue
            eff, auc = t.get("effect"), t.get("auroc")
            eff = float(eff) if eff is not None else float("nan")
            if not eff > min_effect:
                continue
            cand = (eff, float(auc) if auc is not None else float("nan"), pos)
            if best is None or cand[:2] > best[:2]:
                best = cand
        if best is not None:
            found[(r["layer"], int(r["unit"]))] = best
    out = sorted(found)
    return (out, found) if return_scores else out


# --------------------------------------------------------------------------- embedding


def select_by_embedding(rows: Iterable[Mapping[str, Any]], concept: str, *,
                        threshold: float = 0.5, embedder=None,
                        layers: Sequence[str] | None = None, return_scores: bool = False):
    """Neurons whose description's sentence embedding has cosine >= ``threshold`` with the
    concept text. Returns sorted pairs (with ``return_scores``: also ``{neuron: cosine}``)."""
    if embedder is None:
        from dissect.description.embed import default_embedder

        embedder = default_embedder()
    rows = _rows(rows, layers)
    texts = [str(r.get("description") or "") for r in rows]
    uniq = sorted(set(texts))
    E = np.asarray(embedder.encode(uniq + [concept]), dtype=np.float64)
    E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    cos = dict(zip(uniq, (E[:-1] @ E[-1]).tolist(), strict=True))
    found = {(r["layer"], int(r["unit"])): cos[t] for r, t in zip(rows, texts, strict=True)
             if t.strip() and cos[t] >= threshold}
    out = sorted(found)
    return (out, found) if return_scores else out


# --------------------------------------------------------------------------- front door


METHODS = ("keyword", "concept", "evidence", "embedding")


def select_neurons(rows: Iterable[Mapping[str, Any]], concept: str, method: str = "keyword", *,
                   terms: Sequence[str] = (), concepts: Sequence[str] | None = None,
                   closed_method: str = "db", top_k: int | None = 3, threshold: float = 0.5,
                   layers: Sequence[str] | None = None, max_neurons: int | None = None,
                   nlp=None, embedder=None) -> Selection:
    """Select and rank neurons for ``concept`` with one of :data:`METHODS`.

    ``terms`` (keyword) are extra phrases; ``concepts`` (concept and evidence methods) are the
    names that count (default: ``[concept]``); ``top_k`` is the number of closed-set concepts
    (concept) or shown terms (evidence; None: all) looked at; ``max_neurons`` keeps the
    strongest.
    """
    rows = list(rows)
    settings: dict[str, Any] = {"layers": list(layers) if layers else None}
    if method == "keyword":
        _, found = select_by_keyword(rows, concept, terms=terms, nlp=nlp, layers=layers,
                                     return_scores=True)
        ranked = sorted(found, key=lambda n: (-found[n][0], found[n][1], n))
        scores = {n: float(found[n][0]) for n in ranked}
        settings["terms"] = [concept, *terms]
    elif method == "concept":
        names = list(concepts) if concepts else [concept]
        _, found = select_by_concept(rows, names, method=closed_method, top_k=top_k,
                                     layers=layers, return_scores=True)
        ranked = sorted(found, key=lambda n: (found[n][0], -found[n][1], n))
        scores = {n: float(top_k - found[n][0]) for n in ranked}
        settings.update(concepts=names, closed_method=closed_method, top_k=top_k)
    elif method == "evidence":
        names = list(concepts) if concepts else [concept]
        _, found = select_by_evidence(rows, names, top_k=top_k, layers=layers,
                                      return_scores=True)
        ranked = sorted(found, key=lambda n: (-found[n][0], -found[n][1], n))
        scores = {n: found[n][0] for n in ranked}
        settings.update(concepts=names, top_k=top_k, rank="effect size of the shown term")
    elif method == "embedding":
        _, found = select_by_embedding(rows, concept, threshold=threshold, embedder=embedder,
                                       layers=layers, return_scores=True)
        ranked = sorted(found, key=lambda n: (-found[n], n))
        scores = {n: float(found[n]) for n in ranked}
        settings["threshold"] = threshold
    else:
        raise ValueError(f"unknown selection method {method!r}: {', '.join(METHODS)}")
    if max_neurons is not None:
        ranked = ranked[: max(0, int(max_neurons))]
        scores = {n: scores[n] for n in ranked}
        settings["max_neurons"] = max_neurons
    return Selection(concept, method, ranked, scores, settings)


def random_like(ranked: Sequence[Neuron], units_per_layer: Mapping[str, int], seed: int,
                mode: str = "matched") -> list[Neuron]:
    """A random ranking of ``len(ranked)`` neurons (see the module docstring for the modes)."""
    rng = np.random.default_rng(seed)
    n = len(ranked)
    if mode == "global":
        pool = [(layer, u) for layer in sorted(units_per_layer)
                for u in range(int(units_per_layer[layer]))]
        if n > len(pool):
            raise ValueError(f"cannot draw {n} neurons from {len(pool)}")
        return [pool[i] for i in rng.permutation(len(pool))[:n]]
    if mode != "matched":
        raise ValueError(f"unknown random baseline mode {mode!r}: matched | global")
    perms = {layer: rng.permutation(int(units_per_layer[layer]))
             for layer in sorted({lay for lay, _ in ranked})}
    used = dict.fromkeys(perms, 0)
    out = []
    for layer, _ in ranked:
        if used[layer] >= len(perms[layer]):
            raise ValueError(f"layer {layer!r} has fewer units than selected")
        out.append((layer, int(perms[layer][used[layer]])))
        used[layer] += 1
    return out
