"""Descriptions built from evidence: the term matrix, plain-word templates, exemplar sampling
beyond top-k, and the LLM's phrasing of the evidence with a check before it is used.

:mod:`dissect.explain.matcher` maps a candidate's text onto the terms it names,
:mod:`dissect.explain.scoring` scores every candidate on held-out clips and
:mod:`dissect.explain.choice` picks the one shown; this module only builds candidates.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dissect.description.captioners.base import NOTE_NAMES
from dissect.explain.evidence import Evidence
from dissect.util import quantile_linear

# --------------------------------------------------------------------------- terms


def term_matrix(clip_ids: Sequence[str], terms_by_clip: Mapping[str, Sequence[str]]
                ) -> tuple[list[str], np.ndarray]:
    """``(terms, X)``: every distinct term (case-insensitive; the first spelling seen is kept)
    and the bool clip x term matrix ``X [N, M]`` in ``clip_ids`` order."""
    index: dict[str, int] = {}
    names: list[str] = []
    rows: list[list[int]] = []
    for cid in clip_ids:
        cols = []
        for t in terms_by_clip.get(cid, ()):
            key = t.lower()
            if key not in index:
                index[key] = len(names)
                names.append(t)
            cols.append(index[key])
        rows.append(cols)
    X = np.zeros((len(clip_ids), len(names)), dtype=bool)
    for i, cols in enumerate(rows):
        X[i, cols] = True
    return names, X


def split_term(t: str) -> tuple[str, str]:
    """``"digit=3"`` -> ``("digit", "3")``; a term without ``=`` is its own value."""
    attr, sep, value = t.partition("=")
    return (attr, value) if sep else ("", t)


# Plain words per attribute (the captioners' attributes); any other attribute reads
# "<attribute> <value>" with underscores as spaces. Label columns of the probe set give terms
# named after the column, so a user column named like a captioner attribute reads as that
# attribute; the tagger's attribute is ``audioset_tag`` for that reason (a user's ``tag``
# column reads "tag <value>", never "AudioSet tag").
_PHRASES = {
    "digit": "spoken digit {v}",
    "word": "the word '{v}'",
    "pitch": "pitch near {v}",
    "f0": "measured pitch near {v}",
    "note": "note {v}",
    "audioset_tag": "AudioSet tag '{v}'",
    "speaker": "speaker {v}",
    "family": "{v} family",
    "kind": "{v} sounds",
    "loudness": "{v} sounds",
    "register": "{v} register",
    "brightness": "{v} timbre",
    "tonality": "{v} sounds",
    "rhythm": "{v} sounds",
    "bandwidth": "{v} bandwidth",
    "pitched": "pitched: {v}",
    "noise_colour": "{v} noise",
    "instrument": "{v}",
    "category": "{v}",
    "label": "{v}",
    "audioset": "{v}",
}
#: Attributes whose values are class ids: ``water_drops`` reads "water drops".
_CLASS_ATTRIBUTES = ("category", "label", "audioset")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def render_term(t: str) -> str:
    """A term in plain words: ``digit=3`` -> "spoken digit three", ``pitch=E4`` -> "pitch near
    E4", ``speaker=lucas`` -> "speaker lucas"."""
    attr, value = split_term(t)
    if attr == "digit" and value.isdigit() and int(value) < 10:
        value = _NUMBER_WORDS[int(value)]
    if attr in PITCH_ATTRIBUTES or attr == "note":
        value = value[:1].upper() + value[1:]
    if attr.lower() in _CLASS_ATTRIBUTES:
        value = value.replace("_", " ")
    phrase = _PHRASES.get(attr.lower())
    if phrase is None:
        return f"{attr.replace('_', ' ')} {value}".strip()
    return phrase.format(v=value)


#: A second term is named only if its AUROC is at least this (else the text names one term).
WEAKER_MIN_AUROC = 0.75


def labels_first(evidence: Sequence[Evidence], labels: Collection[str] = ()
                 ) -> list[Evidence]:
    """``evidence`` with a dataset label term moved to the front when the strongest term is a
    transcript term (:data:`TRANSCRIPT_ATTRIBUTES`) and the best-ranked label term has at least
    :data:`LABEL_SHARE` of its lift (the truth over an estimate, as :func:`pitch_centre`
    prefers label bands); otherwise ``evidence`` as it is.

    ``labels``: the terms a dataset label gave (the ``labels`` captioner's terms, any case;
    :func:`~dissect.description.captions.label_terms`). A term is a transcript term only when
    it is not also a label (a user column named ``word``).
    """
    labels = {t.lower() for t in labels}
    if not evidence or not labels:
        return list(evidence)
    first = evidence[0]
    if (split_term(first.term)[0] not in TRANSCRIPT_ATTRIBUTES
            or first.term.lower() in labels):
        return list(evidence)
    k = next((i for i, e in enumerate(evidence) if e.term.lower() in labels), None)
    if k is None or evidence[k].lift < LABEL_SHARE * first.lift:
        return list(evidence)
    return [evidence[k], *evidence[:k], *evidence[k + 1:]]


def template(evidence: Sequence[Evidence], centres: Mapping[str, float] | None = None,
             labels: Collection[str] = ()) -> tuple[str, list[str]]:
    """The evidence template: ``("spoken digit three; weaker for speaker lucas", terms)``.

    Names the strongest term and, when there is one of another attribute with AUROC at least
    :data:`WEAKER_MIN_AUROC`, the strongest such term as "weaker for". A pitch band is named
    by :func:`pitch_claim` (the centre of the neuron's tuning, and an octave partner when it
    responds as much there); ``centres`` are the bands' effective centres
    (:func:`band_centres`). ``labels`` (the dataset label terms) lets a label term nearly as
    strong as a transcript term lead instead (:func:`labels_first`); the transcript term may
    then follow as "weaker for". An empty evidence list gives ``("no clear concept", [])``.
    """
    if not evidence:
        return NO_CLEAR_CONCEPT, []
    evidence = labels_first(evidence, labels)
    first = evidence[0]
    if split_term(first.term)[0] in PITCH_ATTRIBUTES:
        text, used = pitch_claim(evidence, centres)
    else:
        text, used = render_term(first.term), [first.term]
    family = _family(first.term)
    for e in evidence[1:]:
        a0, a1 = split_term(first.term)[0].lower(), split_term(e.term)[0].lower()
        if (a0 in _CLASS_ATTRIBUTES and a1 in _CLASS_ATTRIBUTES and a0 != a1) or (
                a1 not in PITCH_ATTRIBUTES and render_term(e.term).lower() == text.lower()):
            continue  # the same class under another label column (audioset= / category=)
        if _family(e.term) != family and e.auroc >= WEAKER_MIN_AUROC:
            if split_term(e.term)[0] in PITCH_ATTRIBUTES:
                more, terms = pitch_claim(evidence, centres, attribute=split_term(e.term)[0])
            else:
                more, terms = render_term(e.term), [e.term]
            text += f"; weaker for {more}"
            used += terms
            break
    return text, used


NO_CLEAR_CONCEPT = "no clear concept"

#: Term attributes that are one-semitone pitch bands (``pitch``: from a label's f0; ``f0``:
#: measured from the audio by the acoustic captioner).
PITCH_ATTRIBUTES = ("pitch", "f0")

#: A label band this close to the strongest band's lift is preferred to measured ones
#: (:func:`pitch_centre`); an octave partner needs as much (:func:`pitch_claim`).
PITCH_SHARE = 0.8

#: Term attributes of the transcript captioner: Whisper's words and their phonemes.
TRANSCRIPT_ATTRIBUTES = ("word", "phone", "nucleus")

#: A dataset label term this close to the lift of the strongest term, when that is a
#: transcript term, leads the template instead (:func:`labels_first`): the same share as a
#: label pitch band's over measured bands.
LABEL_SHARE = PITCH_SHARE


def _midi(name: str) -> int | None:
    m = re.fullmatch(r"([A-Ga-g]#?)(-?\d+)", name.strip())
    if not m or m.group(1).upper() not in NOTE_NAMES:
        return None
    return NOTE_NAMES.index(m.group(1).upper()) + 12 * (int(m.group(2)) + 1)


def band_centres(terms: Sequence[str], X: np.ndarray) -> dict[str, float]:
    """The effective centre (MIDI) of every pitch-band term: the mean, over the clips that
    carry it, of each clip's own pitch (the mean of its bands of the same attribute).

    A band is named after its middle note, but at the edge of a probe set's range it holds
    clips of one side only (``pitch=B0`` of a set starting at C1 holds only C1 clips), so its
    nominal note is a semitone off what it measures.

    Args:
        terms: the term names (columns of ``X``).
        X: bool clip x term matrix ``[N, M]``.
    """
    out: dict[str, float] = {}
    for attr in PITCH_ATTRIBUTES:
        cols = [(j, _midi(split_term(t)[1])) for j, t in enumerate(terms)
                if split_term(t)[0] == attr]
        cols = [(j, m) for j, m in cols if m is not None]
        if not cols:
            continue
        idx = np.array([j for j, _ in cols])
        midi = np.array([m for _, m in cols], dtype=np.float64)
        B = X[:, idx].astype(np.float64)  # [N, bands]
        n = B.sum(1)
        clip_pitch = B @ midi / np.maximum(n, 1)
        for k, (j, m) in enumerate(cols):
            on = B[:, k] > 0
            out[terms[j]] = float(clip_pitch[on].mean()) if on.any() else float(m)
    return out


def pitch_centre(evidence: Sequence[Evidence], centres: Mapping[str, float] | None = None,
                 attribute: str | None = None) -> tuple[Evidence, float] | None:
    """The pitch band at the peak of a neuron's tuning, and the peak's estimate (MIDI).

    The bands' lifts are the neuron's tuning curve sampled a semitone apart (each band a
    three-semitone window). The peak is the vertex of the parabola through the strongest band
    and its two neighbours (the classic spectral-peak interpolation; a neighbour not in the
    evidence counts lift 0), each band placed at its effective centre (``centres``, else its
    nominal note: at the edge of a probe set's range a band holds clips of one side only).
    Bands an octave away (a pitch model's octave confusions) do not move it.

    ``attribute`` restricts the bands to ``pitch`` (a label's true f0) or ``f0`` (measured);
    by default label bands are used when one has at least :data:`PITCH_SHARE` of the
    strongest band's lift (the truth over an estimate), else measured ones. Returns the band
    whose nominal note is the rounded estimate when it is in the evidence (else the strongest
    band), with the estimate; None without bands.
    """
    centres = centres or {}
    bands = [(e, _midi(split_term(e.term)[1])) for e in evidence
             if split_term(e.term)[0] in PITCH_ATTRIBUTES
             and (attribute is None or split_term(e.term)[0] == attribute)]
    bands = [(e, m) for e, m in bands if m is not None]
    if not bands:
        return None
    if attribute is None:
        top = max(e.lift for e, _ in bands)
        label = [(e, m) for e, m in bands if split_term(e.term)[0] == "pitch"]
        if label and max(e.lift for e, _ in label) >= PITCH_SHARE * top:
            bands = label
        else:
            bands = [(e, m) for e, m in bands if split_term(e.term)[0] != "pitch"]
    best, m0 = max(bands, key=lambda em: em[0].lift)
    at = {m: (centres.get(e.term, float(m)), e.lift) for e, m in bands}
    pts = [at.get(m0 + d, (float(m0 + d), 0.0)) for d in (-1, 0, 1)]
    est = _parabola_peak(pts)
    exact = [e for e, m in bands if m == int(round(est))]
    return (exact[0] if exact else best), est


def _parabola_peak(pts: Sequence[tuple[float, float]]) -> float:
    """The vertex ``x`` of the parabola through three ``(x, y)`` points (the middle one the
    highest), kept between the outer two; the middle ``x`` when they are collinear."""
    (x0, y0), (x1, y1), (x2, y2) = pts
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    if den == 0:
        return x1
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den
    if a >= 0:
        return x1
    return float(np.clip(-b / (2 * a), min(x0, x2), max(x0, x2)))


def pitch_claim(evidence: Sequence[Evidence], centres: Mapping[str, float] | None = None,
                attribute: str | None = None) -> tuple[str, list[str]]:
    """``("pitch near C1, and near C#2 (an octave up)", [terms])``: the centre of the tuning
    (:func:`pitch_centre`) and, when a band 11 to 13 semitones from it has at least
    :data:`PITCH_SHARE` of the strongest band's lift, that octave partner (a pitch model's
    octave confusions: the neuron fires as much there, so the description says so)."""
    got = pitch_centre(evidence, centres, attribute)
    if got is None:
        return render_term(evidence[0].term), [evidence[0].term]
    band, est = got
    attr = split_term(band.term)[0]
    text, used = render_term(band.term), [band.term]
    bands = [e for e in evidence if split_term(e.term)[0] == attr]
    top = max(e.lift for e in bands)
    partners = []
    for e in bands:
        m = _midi(split_term(e.term)[1])
        if m is None or e.lift < PITCH_SHARE * top:
            continue
        d = (centres or {}).get(e.term, float(m)) - est
        if 11 <= abs(d) <= 13:
            partners.append((e, d))
    if partners:
        e, d = max(partners, key=lambda x: x[0].lift)
        text += f", and near {split_term(e.term)[1]} (an octave {'up' if d > 0 else 'down'})"
        used.append(e.term)
    return text, used


# Attributes that say the same thing (a second term of the same family adds nothing): pitch
# labels and bands; a spoken digit and its word; the kinds of sound (a noise, silence, unpitched,
# noisy, near-silent).
_FAMILIES = {"note": "pitch", "pitch": "pitch", "f0": "pitch", "register": "pitch",
             "digit": "digit", "word": "digit", "kind": "sound", "noise_colour": "sound",
             "tonality": "sound", "pitched": "sound", "loudness": "sound"}


def _family(t: str) -> str:
    attr, value = split_term(t)
    if attr == "word" and value.lower() not in _NUMBER_WORDS and not value.isdigit():
        return "word"
    return _FAMILIES.get(attr, attr)


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class ExemplarSample:
    """Clip indices of one neuron's exemplars, by how they were drawn (Delphi / MILAN style)."""

    top: list[int]
    quantiles: list[int]
    random: list[int]
    bottom: list[int]

    def to_dict(self) -> dict[str, list[int]]:
        return {"top": self.top, "quantiles": self.quantiles, "random": self.random,
                "bottom": self.bottom}


def sample_exemplars(values: np.ndarray, *, n_top: int = 20, n_quantile: int = 2,
                     quantile_levels: Sequence[float] = (0.25, 0.5, 0.75, 0.9),
                     n_random: int = 10, n_bottom: int = 10, seed: int = 0,
                     exclude: Sequence[int] = ()) -> ExemplarSample:
    """Exemplars of one neuron from its pooled values over every clip (``values [N]``).

    ``top`` / ``bottom``: the ``n_top`` most / ``n_bottom`` least activating clips (ties by clip
    index); ``quantiles``: ``n_quantile`` clips nearest each activation quantile in
    ``quantile_levels`` (drawn at random among the nearest ``4 n_quantile``); ``random``:
    ``n_random`` clips uniformly from the rest. Deterministic in ``seed`` (and ``values``); no
    clip is drawn twice; ``exclude`` (e.g. held-out clips) is never drawn.
    """
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    allowed = np.ones(len(v), bool)
    allowed[np.asarray(list(exclude), dtype=np.int64)] = False
    idx = np.flatnonzero(allowed)
    order = idx[np.lexsort((idx, -v[idx]))]
    top = order[:n_top]
    bottom = order[len(top):][::-1][:n_bottom]  # the least activating clips not in top
    free = allowed.copy()  # allowed and not yet drawn (numpy masks: no loop over clips)
    free[top] = False
    free[bottom] = False
    quant: list[int] = []
    v_sorted = np.sort(v[idx])
    for q in quantile_levels:
        if not len(idx):
            break
        target = quantile_linear(v_sorted, q, presorted=True)
        cand = idx[free[idx]]  # stable order of the free clips by distance to the quantile
        pool = cand[np.argsort(np.abs(v[cand] - target), kind="stable")][: 4 * n_quantile]
        pick = ([int(pool[j]) for j in sorted(rng.choice(len(pool), min(n_quantile, len(pool)),
                                                         replace=False))] if len(pool) else [])
        quant += pick
        free[pick] = False
    rest = idx[free[idx]]
    rnd = sorted(int(rest[j]) for j in rng.choice(len(rest), min(n_random, len(rest)),
                                                  replace=False)) if len(rest) else []
    top, bottom = [int(i) for i in top], [int(i) for i in bottom]
    return ExemplarSample(top, quant, rnd, bottom)


# --------------------------------------------------------------------------- LLM phrasing

_PHRASE_SYSTEM = ("You describe what makes a neuron of an audio model fire. You are given the "
                  "evidence: caption terms that separate the clips it fires on from the rest, "
                  "with their strength. Write one short sentence that names the strongest term. "
                  "Do not name anything that is not in the evidence.")


def phrase_prompt(evidence: Sequence[Evidence], captions: Sequence[str], k_terms: int = 4,
                  k_captions: int = 3) -> list[dict[str, str]]:
    """The chat asking the LLM to phrase a neuron's evidence in one sentence."""
    lines = [f"- {render_term(e.term)} (AUROC {e.auroc:.2f}, effect size {e.effect:.1f})"
             for e in evidence[:k_terms]]
    caps = [f"- {c[:160]}" for c in captions[:k_captions]]
    user = ("Evidence, strongest first:\n" + "\n".join(lines)
            + ("\nCaptions of clips it fires on most:\n" + "\n".join(caps) if caps else "")
            + "\nOne sentence: This neuron responds to")
    return [{"role": "system", "content": _PHRASE_SYSTEM}, {"role": "user", "content": user}]


def clean_phrase(text: str) -> str:
    """The LLM's reply as one sentence: first line, "This neuron responds to" restored."""
    t = (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""
    t = t.strip().strip('"').strip()
    if t and not t.lower().startswith("this neuron"):
        t = "This neuron responds to " + t[0].lower() + t[1:]
    return t if not t or t.endswith(".") else t + "."
