"""Closed-set concepts (AND module A): concept sets, the clip-by-concept matrices of DB and TAB,
and the ICL prompt and its parser.

Concept-set files live in ``data/concepts/<name>.txt`` (``dissect/_data/concepts`` in an
installed wheel). One concept per line, TAB-separated fields::

    concept[<TAB>prompt[<TAB>id]]

* ``concept``: the name shown to people and to the LLM (no commas in our own sets, so that ICL
  answers split cleanly; the AudioSet names keep theirs and the parser rejoins them).
* ``prompt``: the text that is embedded for DB / TAB (default: the concept, ``_`` -> space).
* ``id``: a stable key for ground truth, e.g. the dataset's class label ``chirping_birds``
  (default: the concept lower-cased with non-alphanumerics replaced by ``_``).

Lines whose first non-blank character is ``#`` are comments (there are no inline comments, so
``C#4`` is a concept); blank lines are skipped; an empty field takes its default.

Matrices (``P [N clips, C concepts]``, consumed by :mod:`dissect.description.similarity`):

* DB, :func:`db_matrix`: ``P = softmax_c(cos(caption_j, concept_c) / temperature)``
  (temperature 0.01: AND's ``softmax(100 cos)``). With ``wpmi`` / ``soft_wpmi`` the similarity
  applies a second softmax, ``softmax_c(a * P)`` (a = 2 / 10, CLIP-Dissect's definition), so
  DB + wpmi is two softmaxes in a row, exactly as the official AND code computes it; ``cos``,
  ``cos_cubed`` and ``rank_reorder`` read ``P`` as it is (the DB softmax only). A clip's
  caption is its captioners' texts joined *without* their names (``combine(named=False)``):
  with "acoustic: ..." in every caption the one concept "Acoustic guitar" took 53 % of P's
  mass and came first for 480 of YAMNet's 521 head units (docs/real-audio.md).
* TAB with real audio-text embeddings (CLAP), :func:`tab_matrix_from_embeddings`: the cosine,
  no softmax (as TAB does).
* TAB offline stand-in, :func:`tab_matrix_from_tagger`: an AudioSet tagger's per-clip class
  probabilities mapped onto the concepts through sentence-embedding similarity of the label
  names. It is *not* CLAP; :data:`TAB_STAND_IN` says so wherever it is used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dissect
from dissect.description.llm.base import Chat
from dissect.description.similarity import get_similarity, top_concepts
from dissect.registry import Registry

#: Closed-set methods (``concepts.closed_methods``, ``evaluate.method``): how the clip x concept
#: matrix is built, by name -> what it compares.
CLOSED_METHODS: Registry[str] = Registry("closed-set method")
CLOSED_METHODS.add("db", "captions vs concept prompts (sentence embeddings)")
CLOSED_METHODS.add("tab", "audio-text similarity (offline stand-in: YAMNet tags -> concepts)")
CLOSED_METHODS.add("icl", "the LLM picks from the concept list given the calibrated summary")

TAB_STAND_IN = (
    "TAB stand-in: YAMNet tagger probabilities mapped to concepts by {embedder} label "
    "similarity (not CLAP)"
)


# --------------------------------------------------------------------------------------------
# concept sets


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z#]+", "_", text.lower()).strip("_")


@dataclass
class ConceptSet:
    """A named list of concepts with the text embedded for each and a stable id for each.

    Attributes:
        name: the set's name (file stem).
        concepts: concept names, unique (case-, ``_``/``-``- and punctuation-insensitive).
        prompts: the text embedded for each concept (same length).
        ids: stable keys, e.g. dataset class labels (same length; derived when empty).
    """

    name: str
    concepts: list[str]
    prompts: list[str]
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.ids:
            self.ids = [_slug(c) for c in self.concepts]
        if not (len(self.concepts) == len(self.prompts) == len(self.ids)):
            raise ValueError("concepts, prompts and ids must have the same length")
        seen: dict[str, str] = {}
        for c in self.concepts:
            key = _norm(c)
            if not key:
                raise ValueError(f"concept set {self.name!r}: empty concept")
            if key in seen:
                raise ValueError(f"concept set {self.name!r}: {c!r} duplicates {seen[key]!r}")
            seen[key] = c
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"concept set {self.name!r}: duplicate ids")

    def __len__(self) -> int:
        return len(self.concepts)

    def index(self, name_or_id: str) -> int:
        """Position of a concept given its name (normalised match) or its id."""
        if name_or_id in self.ids:
            return self.ids.index(name_or_id)
        key = _norm(name_or_id)
        for i, c in enumerate(self.concepts):
            if _norm(c) == key:
                return i
        raise KeyError(name_or_id)


def data_dir() -> Path:
    """The package data directory: ``dissect/_data`` when installed from a wheel, else the
    repository's ``data/``."""
    pkg = Path(dissect.__file__).resolve().parent
    for cand in (pkg / "_data", pkg.parent / "data"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"no data directory next to {pkg} (looked for _data/ and ../data/)")


def available_concept_sets() -> list[str]:
    """Names of the concept sets shipped in ``data/concepts``."""
    return sorted(p.stem for p in (data_dir() / "concepts").glob("*.txt"))


def parse_concept_lines(lines: Sequence[str], name: str) -> ConceptSet:
    """Parse concept-file lines (see the module docstring for the format)."""
    concepts, prompts, ids = [], [], []
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) > 3:
            raise ValueError(f"{name}:{lineno}: more than 3 TAB-separated fields")
        concept = fields[0]
        if not concept:
            raise ValueError(f"{name}:{lineno}: empty concept")
        prompt = fields[1] if len(fields) > 1 and fields[1] else concept.replace("_", " ")
        cid = fields[2] if len(fields) > 2 and fields[2] else _slug(concept)
        concepts.append(concept)
        prompts.append(prompt)
        ids.append(cid)
    return ConceptSet(name=name, concepts=concepts, prompts=prompts, ids=ids)


def concept_file(name_or_path: str | Path) -> Path:
    """The file of a shipped concept set (by name, ``"esc50"``) or of a given path.

    Raises:
        FileNotFoundError: naming the path, or listing the shipped sets for an unknown name.
    """
    path = Path(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or path.suffix == ".txt" or len(path.parts) > 1
    if looks_like_path:
        if not path.is_file():
            raise FileNotFoundError(f"no concept file at {path}")
        return path
    path = data_dir() / "concepts" / f"{name_or_path}.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"unknown concept set {name_or_path!r}; shipped: {available_concept_sets()}"
        )
    return path


def load_concept_set(name_or_path: str | Path) -> ConceptSet:
    """Load a shipped concept set by name (``"esc50"``) or any concept file by path."""
    path = concept_file(name_or_path)
    return parse_concept_lines(path.read_text(encoding="utf-8").splitlines(), path.stem)


def _concept_names(concepts: ConceptSet | Sequence[str]) -> list[str]:
    if isinstance(concepts, ConceptSet):
        return list(concepts.concepts)
    if isinstance(concepts, str):
        raise TypeError("concepts must be a ConceptSet or a sequence of strings, not one string")
    return [str(c) for c in concepts]


def _concept_prompts(concepts: ConceptSet | Sequence[str]) -> list[str]:
    if isinstance(concepts, ConceptSet):
        return list(concepts.prompts)
    return [c.replace("_", " ") for c in _concept_names(concepts)]


# --------------------------------------------------------------------------------------------
# clip-by-concept matrices


def _tensor(x: Any) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def db_matrix(caption_emb, concept_emb, temperature: float = 0.01) -> torch.Tensor:
    """DB's clip-by-concept matrix ``P [N, C] = softmax_c(cos(caption_j, concept_c) / T)``.

    Rows sum to 1. This is the matrix's only softmax; ``wpmi`` / ``soft_wpmi`` apply their own
    ``softmax(a * P)`` on top (as the official AND code does; see the module docstring).
    Embeddings are re-normalised, so unnormalised inputs are fine.
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    A, B = _unit_rows(_tensor(caption_emb)), _unit_rows(_tensor(concept_emb))
    return torch.softmax((A @ B.to(A).T) / temperature, dim=1)


def captioned(texts: Sequence[str]) -> np.ndarray:
    """Bool ``[N]``: the clips with a non-blank caption. DB leaves the others out (their row
    would be the embedding of the empty string, a caption of nothing that still ranks
    concepts)."""
    return np.array([bool(str(t or "").strip()) for t in texts], dtype=bool)


def tab_matrix_from_embeddings(audio_emb, text_emb) -> torch.Tensor:
    """TAB's matrix from real audio-text embeddings (e.g. CLAP): cosine ``[N, C]``, no softmax."""
    A, B = _unit_rows(_tensor(audio_emb)), _unit_rows(_tensor(text_emb))
    return A @ B.to(A).T


def concept_tag_weights(
    tag_names: Sequence[str],
    concepts: ConceptSet | Sequence[str],
    embedder=None,
    top_m: int = 5,
    temperature: float = 0.05,
) -> torch.Tensor:
    """Map concepts to tagger labels: ``W [n_tags, C]``.

    Each concept's prompt and each label name are embedded (all-MiniLM-L6-v2 by default); the
    concept keeps its ``top_m`` most similar labels (ties: lower label index) with weights
    ``softmax(cos / temperature)`` over those labels, so each column sums to 1.
    """
    if embedder is None:
        from dissect.description.embed import default_embedder

        embedder = default_embedder()
    T = torch.as_tensor(embedder.encode(list(tag_names))).float()
    Cm = torch.as_tensor(embedder.encode(_concept_prompts(concepts))).float()
    S = _unit_rows(Cm) @ _unit_rows(T).T  # [C, n_tags]
    m = max(1, min(int(top_m), S.shape[1]))
    idx = torch.argsort(S, dim=1, descending=True, stable=True)[:, :m]
    w = torch.softmax(torch.gather(S, 1, idx) / temperature, dim=1)
    W = torch.zeros_like(S).scatter_(1, idx, w)
    return W.T.contiguous()


def tab_matrix_from_tagger(
    tag_probs,
    tag_names: Sequence[str],
    concept_set: ConceptSet | Sequence[str],
    embedder=None,
    top_m: int = 5,
    temperature: float = 0.05,
) -> tuple[torch.Tensor, str]:
    """The offline TAB stand-in: ``P = tag_probs @ W`` with ``W`` from
    :func:`concept_tag_weights`.

    Args:
        tag_probs: ``[N, n_tags]`` per-clip tagger probabilities (YAMNet: 521 AudioSet classes).
        tag_names: the ``n_tags`` label names, in column order.
        concept_set: the concepts (their prompts are embedded).
        embedder: sentence embedder with ``encode(texts) -> [n, d]``; default all-MiniLM-L6-v2.

    Returns:
        ``(P [N, C], stand_in)`` where ``stand_in`` names what replaced CLAP, for reports.
    """
    probs = _tensor(tag_probs)
    if probs.ndim != 2 or probs.shape[1] != len(tag_names):
        raise ValueError(f"tag_probs {tuple(probs.shape)} does not match {len(tag_names)} names")
    W = concept_tag_weights(tag_names, concept_set, embedder, top_m, temperature).to(probs)
    name = getattr(embedder, "name", None) or "all-MiniLM-L6-v2"
    return probs @ W, TAB_STAND_IN.format(embedder=name)


# --------------------------------------------------------------------------------------------
# ICL: prompt and strict parsing


def icl_prompt(summary: str, concepts: ConceptSet | Sequence[str], k: int = 1) -> Chat:
    """A chat asking an LLM to pick the ``k`` concepts that best fit a neuron's summary."""
    names = _concept_names(concepts)
    k = max(1, min(int(k), len(names)))
    if k == 1:
        task = "Choose the one concept from the list that fits the summary best."
        form = "Answer: <concept>"
    else:
        task = f"Choose the {k} concepts from the list that fit the summary best, best first."
        form = "Answer: " + ", ".join(f"<concept {i}>" for i in range(1, k + 1))
    system = (
        "You help interpret a unit (a neuron) of an audio neural network. You are given a "
        "summary of the audio clips that activate the unit most strongly and a list of "
        f"candidate concepts. {task} Copy concept names exactly as they are written in the "
        "list. Give at most two sentences of reasoning, then finish with one line of the form\n"
        f"{form}"
    )
    listing = "\n".join(f"- {c}" for c in names)
    user = (
        f"Candidate concepts:\n{listing}\n\n"
        f"Summary of the most activating clips:\n{summary.strip()}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_ANSWER_RE = re.compile(r"\banswer\s*[:：]", re.IGNORECASE)
_STRIP_CHARS = " \t'\"`“”‘’«».,;:!?()[]{}<>*_-•"
_LIST_MARK_RE = re.compile(r"^\s*(?:\d+[.)]|[-•*])\s+")
_NULL_ANSWERS = {"none", "n/a", "na", "unknown", "nothing", "no answer", "not sure", "null"}
_MAX_JOIN = 4  # concept names with up to 3 commas (AudioSet "Violin, fiddle") are rejoined


def _norm(text: str) -> str:
    """Match key: lower case, ``_``/``-`` as spaces, quotes and punctuation (except ``#``) gone."""
    t = text.lower().replace("_", " ").replace("-", " ")
    t = re.sub(r"[\"'`“”‘’«».,;:!?()\[\]{}<>*/\\|]", " ", t)
    return " ".join(t.split())


def _answer_segment(text: str) -> str | None:
    """The text of the last ``Answer:`` line (or the next non-empty line when it is empty)."""
    clean = text.replace("**", "")
    matches = list(_ANSWER_RE.finditer(clean))
    if not matches:
        return None
    rest = clean[matches[-1].end() :]
    for line in rest.splitlines():
        if line.strip():
            return line
    return ""


def _clean_candidate(part: str) -> str:
    return _LIST_MARK_RE.sub("", part).strip(_STRIP_CHARS)


@lru_cache(maxsize=8)
def _embedded_concepts(
    embedder, names: tuple[str, ...], prompts: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit embeddings of the concept names and of their prompts (cached per embedder)."""
    n = _unit_rows(torch.as_tensor(embedder.encode([x.replace("_", " ") for x in names])))
    p = _unit_rows(torch.as_tensor(embedder.encode(list(prompts))))
    return n.float(), p.float()


def parse_icl(
    text: str,
    concepts: ConceptSet | Sequence[str],
    embedder=None,
    k: int = 1,
    min_score: float = 0.4,
) -> list[tuple[str, float]]:
    """Concepts named in an ICL answer, best first: ``[(concept, score), ...]`` (at most ``k``).

    Strict: only the text after the last ``Answer:`` marker is read (a reply without a marker
    counts only if the whole reply is exactly one concept). It is split on commas and
    semicolons; list markers, quotes and punctuation are stripped. A candidate (or up to
    :data:`_MAX_JOIN` adjacent ones rejoined, for names that contain commas) that equals a
    concept up to case, ``_``/``-`` and punctuation scores 1.0. Any other candidate is mapped to
    the nearest concept by sentence-embedding cosine (the mean of its cosines to the concept's
    name and to its prompt; for a plain list of names the prompt is the name) and kept when that
    score is at least ``min_score`` (0.4: with all-MiniLM-L6-v2 and the shipped sets, synonyms
    such as "puppy" -> "dog" score 0.6-0.8 and junk words stay below 0.4; bare one-word names
    without prompts are less well separated). Repeats keep their first position. Empty,
    missing, "none"-like or unparseable answers give ``[]``. Quoted strings elsewhere in the
    reply are never used.
    """
    names = _concept_names(concepts)
    if not text or not text.strip() or not names or k < 1:
        return []
    by_key: dict[str, int] = {}
    for i, c in enumerate(names):
        by_key.setdefault(_norm(c), i)

    segment = _answer_segment(text)
    if segment is None:
        whole = _norm(_clean_candidate(text.strip()))
        return [(names[by_key[whole]], 1.0)] if whole in by_key else []

    parts = re.split(r"[,;]", segment)
    items: list[tuple[str, Any]] = []  # ("exact", index) or ("fuzzy", candidate text)
    i = 0
    while i < len(parts):
        for j in range(min(len(parts), i + _MAX_JOIN), i, -1):
            key = _norm(_clean_candidate(",".join(parts[i:j])))
            if key and key in by_key:
                items.append(("exact", by_key[key]))
                i = j
                break
        else:
            cand = _clean_candidate(parts[i])
            if _norm(cand) and _norm(cand) not in {_norm(x) for x in _NULL_ANSWERS}:
                items.append(("fuzzy", cand))
            i += 1

    fuzzy = [c for kind, c in items if kind == "fuzzy"]
    mapped: dict[str, tuple[int, float]] = {}
    if fuzzy:
        if embedder is None:
            from dissect.description.embed import default_embedder

            embedder = default_embedder()
        En, Ep = _embedded_concepts(embedder, tuple(names), tuple(_concept_prompts(concepts)))
        Q = _unit_rows(torch.as_tensor(embedder.encode(fuzzy))).float()
        sims = 0.5 * (Q @ En.T + Q @ Ep.T)
        best, bidx = sims.max(dim=1)
        for cand, s, b in zip(fuzzy, best.tolist(), bidx.tolist(), strict=True):
            mapped[cand] = (int(b), float(s))

    out: list[tuple[str, float]] = []
    seen: set[int] = set()
    for kind, val in items:
        if kind == "exact":
            idx, score = val, 1.0
        else:
            idx, score = mapped[val]
            if not score >= min_score:  # also drops NaN
                continue
        if idx in seen:
            continue
        seen.add(idx)
        out.append((names[idx], score))
        if len(out) >= k:
            break
    return out


# --------------------------------------------------------------------------------------------
# convenience


def label_neurons(
    U,
    P,
    concepts: ConceptSet | Sequence[str],
    similarity: str = "cos_cubed",
    k: int = 5,
    **similarity_kwargs,
) -> list[list[tuple[str, float]]]:
    """Top-``k`` concepts per neuron: ``similarity(U, P)`` then :func:`top_concepts`; concepts
    whose score is not finite (no candidate, e.g. ``rank_reorder``'s ``-inf``) are left out, so
    a neuron may get fewer than ``k``.

    Args:
        U: activations ``[N, n]``.
        P: clip-by-concept matrix ``[N, C]`` (DB, TAB or its stand-in).
        concepts: the C concept names (or their ConceptSet), in P's column order.
        similarity: a key of :data:`dissect.description.similarity.SIMILARITIES`.
        k: concepts per neuron.
        **similarity_kwargs: passed on (e.g. ``reference=`` for wpmi / soft_wpmi).
    """
    names = _concept_names(concepts)
    if len(names) != P.shape[1]:
        raise ValueError(f"P has {P.shape[1]} concept columns but {len(names)} concepts given")
    sim = get_similarity(similarity)(U, P, **similarity_kwargs)
    idx, scores = top_concepts(sim, k)
    # a non-finite score marks a concept that is no candidate (rank_reorder's -inf): left out
    return [
        [(names[c], float(s)) for c, s in zip(row_i, row_s, strict=True) if math.isfinite(s)]
        for row_i, row_s in zip(idx.tolist(), scores.tolist(), strict=True)
    ]
