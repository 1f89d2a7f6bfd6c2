"""AND module B: prompts, reply cleaning, sentence splitting, calibration, per-neuron summaries."""

import zlib

import numpy as np
import pytest

from dissect.description.llm.base import Completion, GenerationParams
from dissect.description.summarize import (
    BOTTOM_HEADER,
    DEFAULT_THRESHOLD,
    TOP_HEADER,
    calibrate,
    clean_summary,
    split_sentences,
    summarize_neurons,
    summary_prompt,
)


class DictEmbedder:
    """Hand-made vectors per sentence; counts encode calls."""

    def __init__(self, vectors):
        self.vectors = {k: np.asarray(v, dtype=np.float64) for k, v in vectors.items()}
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return np.stack([self.vectors[t] for t in texts])


class BagOfWordsEmbedder:
    """Deterministic hashed bag of words: identical sentences have cosine 1."""

    def encode(self, texts):
        out = np.zeros((len(texts), 512))
        for i, t in enumerate(texts):
            for w in t.lower().strip(".").split():
                out[i, zlib.crc32(w.encode()) % 512] += 1
        return out


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    from dissect.description.embed import default_embedder

    try:
        return default_embedder()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


# --------------------------------------------------------------------------- prompt


def test_prompt_layout_and_headers():
    chat = summary_prompt(["A violin plays A4.", "  A  flute\nplays a note. ", ""], "top")
    assert [m["role"] for m in chat] == ["system", "user"]
    lines = chat[1]["content"].split("\n")
    assert lines[0] == TOP_HEADER
    assert lines[1:3] == ["A violin plays A4.", "A flute plays a note."]
    assert lines[3] == ""
    assert lines[4] == "In one or two sentences, what do these sounds have in common?"
    bottom = summary_prompt(["Silence."], "bottom")[1]["content"]
    assert bottom.split("\n")[0] == BOTTOM_HEADER
    assert TOP_HEADER != BOTTOM_HEADER
    # our own wording, never AND's prompt
    text = " ".join(m["content"] for m in chat).lower()
    assert "identifying their commonalities" not in text and "<<sys>>" not in text
    with pytest.raises(ValueError):
        summary_prompt(["x"], "middle")


# --------------------------------------------------------------------------- cleaning

CLEAN_CASES = [
    ("plain", "These sounds are loud.", "These sounds are loud."),
    ("sure lead-in and list",
     "Sure, here is a summary of the descriptions:\n\n1. The sounds are loud.\n2. They are "
     "percussive.\n\nI hope this helps! Let me know if you need anything else.",
     "The sounds are loud. They are percussive."),
    ("based on clause is cut, rest capitalised",
     "Based on the descriptions, these sounds are all high-pitched notes.",
     "These sounds are all high-pitched notes."),
    ("here are ... colon", "Here are the commonalities: all of them are loud and sharp.",
     "All of them are loud and sharp."),
    ("role prefix and repeated sentence",
     "assistant: The clips share a low hum. The clips share a low hum! They are steady.",
     "The clips share a low hum. They are steady."),
    ("unterminated trailing fragment dropped",
     "The notes are bright and metallic. They all share a", "The notes are bright and metallic."),
    ("lone fragment closed, dangling words cut", "These sounds are all recorded with a",
     "These sounds are all recorded."),
    ("chat tokens, markdown heading and bullets",
     "<|im_start|>assistant\n**Common features:**\n- a loud hum\n* a steady tone<|im_end|>",
     "A loud hum. A steady tone."),
    ("whitespace collapsed, wrapped line joined", "The   sounds\tare \n\n  quiet.",
     "The sounds are quiet."),
    ("unpunctuated line before a new statement", "The sounds are loud\nThey ring.",
     "The sounds are loud. They ring."),
    ("nothing but junk", "Sure! I hope this helps.", ""),
    ("empty", "", ""),
    ("sentence cap", "One is loud. Two is soft. Three is sharp. Four is dull.",
     "One is loud. Two is soft. Three is sharp."),
    ("numbers and abbreviations do not split",
     "Tones near 3.5 kHz, e.g. whistles, dominate. They are steady.",
     "Tones near 3.5 kHz, e.g. whistles, dominate. They are steady."),
]


@pytest.mark.parametrize(("name", "raw", "expected"), CLEAN_CASES, ids=[c[0] for c in CLEAN_CASES])
def test_clean_summary(name, raw, expected):
    assert clean_summary(raw) == expected


def test_clean_summary_char_cap():
    # distinct words: a repeated word would be collapsed as a loop (rule 9) before the cap
    words = " ".join(f"word{i}" for i in range(80))
    text = "These sounds are loud. " + "They " + words + " ring."
    assert clean_summary(text, max_chars=100) == "These sounds are loud."
    long_one = clean_summary(" ".join(f"w{i}" for i in range(200)) + " end.", max_chars=50)
    assert len(long_one) <= 51 and long_one.endswith(".")


def test_split_sentences():
    text = "These sounds are loud. Short one. Do they ring? Yes!\nA new line starts here"
    assert split_sentences(text) == ["These sounds are loud.", "Do they ring?",
                                     "A new line starts here"]
    assert split_sentences(text, min_words=1)[1] == "Short one."
    assert split_sentences("") == []


# --------------------------------------------------------------------------- calibration


@pytest.mark.real
def test_calibration_removes_exactly_the_overlapping_sentence(minilm):
    high = ("The notes have a bright, metallic ringing quality. There is some background noise "
            "in the recordings. Each note starts with a sharp percussive attack.")
    low = "The recordings have background noise. The sounds are soft, slow and muffled."
    res = calibrate(high, low, minilm)
    assert res.threshold == DEFAULT_THRESHOLD
    assert res.kept == ["The notes have a bright, metallic ringing quality.",
                        "Each note starts with a sharp percussive attack."]
    assert [(s, m) for s, m, _ in res.dropped] == [
        ("There is some background noise in the recordings.",
         "The recordings have background noise.")]
    assert res.dropped[0][2] > DEFAULT_THRESHOLD
    assert not res.all_dropped


@pytest.mark.real
def test_calibration_removes_two_consecutive_overlaps(minilm):
    # removing items from the list being iterated (the official loop) would skip the second one
    high = ("The notes have a bright, metallic ringing quality. There is some background noise "
            "in the recordings. All of these clips are short recordings of sounds. Each note "
            "starts with a sharp percussive attack.")
    low = ("Each clip is a short recording of a sound. The recordings have background noise. "
           "The sounds are soft, slow and muffled.")
    res = calibrate(high, low, minilm)
    assert res.kept == ["The notes have a bright, metallic ringing quality.",
                        "Each note starts with a sharp percussive attack."]
    assert [d[0] for d in res.dropped] == [
        "There is some background noise in the recordings.",
        "All of these clips are short recordings of sounds."]
    assert [d[1] for d in res.dropped] == [
        "The recordings have background noise.", "Each clip is a short recording of a sound."]


def _official_style(hs, ls, emb, t):
    """The official algorithm's shape: remove from the list while iterating over it."""
    hs = list(hs)
    vec = {s: v for s, v in zip(hs + ls, emb.encode(hs + ls), strict=True)}
    for a in hs:
        for b in ls:
            if float(vec[a] @ vec[b]) > t:
                hs.remove(a)
                break
    return hs


def test_consecutive_overlaps_with_hand_made_vectors():
    e = np.eye(4)
    emb = DictEmbedder({"keep one here.": e[0], "drop one here.": e[1], "drop two here.": e[1],
                        "keep two here.": e[2], "low side one.": e[1], "low side two.": e[3]})
    high = ["keep one here.", "drop one here.", "drop two here.", "keep two here."]
    low = ["low side one.", "low side two."]
    res = calibrate(high, low, emb, threshold=0.5)
    assert res.kept == ["keep one here.", "keep two here."]
    assert [d[0] for d in res.dropped] == ["drop one here.", "drop two here."]
    assert all(d[1] == "low side one." and d[2] == pytest.approx(1.0) for d in res.dropped)
    # the test can fail: the official mutate-while-iterating shape keeps one of the pair
    assert "drop two here." in _official_style(high, low, emb, 0.5)


def test_threshold_edge():
    half = [0.5, 0.5, 0.5, 0.5]  # cosine with e0 is exactly 0.5 (exact in binary floating point)
    emb = DictEmbedder({"at the threshold.": half, "above the threshold.": [0.75, 0.25, 0.25, 0.5],
                        "orthogonal to it.": [0, 1, 0, 0], "the low one.": [1, 0, 0, 0]})
    v = emb.vectors["above the threshold."]
    emb.vectors["above the threshold."] = v / np.linalg.norm(v)
    high = ["at the threshold.", "above the threshold.", "orthogonal to it."]
    res = calibrate(high, ["the low one."], emb, threshold=0.5)
    assert res.kept == ["at the threshold.", "orthogonal to it."]  # equal is kept
    assert [d[0] for d in res.dropped] == ["above the threshold."]
    assert res.dropped[0][2] > 0.5
    res = calibrate(high, ["the low one."], emb, threshold=np.nextafter(0.5, 0))
    assert res.kept == ["orthogonal to it."]  # just below 0.5: the exact 0.5 now exceeds it
    # vectors that are not unit-norm are normalised: scaling changes nothing
    emb.vectors["at the threshold."] = np.asarray(half) * 3
    assert calibrate(high, ["the low one."], emb, threshold=0.5).kept == [
        "at the threshold.", "orthogonal to it."]


def test_everything_dropped_is_flagged_not_replaced():
    emb = DictEmbedder({"first high sentence.": [1, 0], "second high sentence.": [1, 0],
                        "the low sentence.": [1, 0]})
    res = calibrate("first high sentence. second high sentence.", "the low sentence.", emb)
    assert res.kept == [] and res.all_dropped and len(res.dropped) == 2


def test_empty_sides_need_no_embedder():
    res = calibrate("A loud hum here.", "", None)
    assert res.kept == ["A loud hum here."] and res.dropped == [] and not res.all_dropped
    res = calibrate("", "A loud hum here.", None)
    assert res.kept == [] and not res.all_dropped
    with pytest.raises(ValueError):
        calibrate("A loud hum here.", "A soft hum here.", None)


# --------------------------------------------------------------------------- neurons


class FakeClient:
    name = "fake:tiny-llm"

    def __init__(self, fail_on=None, raise_error=False):
        self.calls = []
        self.fail_on = fail_on
        self.raise_error = raise_error

    def generate(self, chats, params):
        self.calls.append((list(chats), params))
        if self.raise_error:
            raise RuntimeError("server down")
        out = []
        for chat in chats:
            user = chat[-1]["content"]
            if self.fail_on and self.fail_on in user:
                out.append(Completion(text="", llm=self.name, error="timeout after 3 tries"))
            elif user.startswith(TOP_HEADER):
                first = user.split("\n")[1].split()[0].lower()
                out.append(Completion(
                    text=f"Sure! Here is a summary:\nAll clips have a bright {first} tone. "
                         "The recordings have background noise.\nI hope this helps!",
                    llm=self.name))
            else:
                out.append(Completion(text="The recordings have background noise. They are "
                                           "very quiet overall.", llm=self.name))
        return out


NEURONS = [
    {"layer": "conv1", "unit": 3,
     "top": [{"clip": "v1", "value": 9.0}, {"clip": "v2", "value": 8.0},
             {"clip": "v3", "value": 1.0}],
     "bottom": [{"clip": "s1", "value": -2.0}, {"clip": "s2", "value": -1.0}]},
    {"layer": "conv2", "unit": 0, "top": ["f1", "missing"], "bottom": ["s2", "s1"]},
]
CAPTIONS = {"v1": "Violin plays A4.", "v2": "Violin plays C5.", "v3": "Noise burst.",
            "s1": "Silence.", "s2": ["Near silence.", "Room tone."], "f1": "Flute plays a trill."}


def test_summarize_neurons_records_and_failure():
    # only the second neuron's bottom chat lists s2 first
    client = FakeClient(fail_on=f"{BOTTOM_HEADER}\nNear silence")
    params = GenerationParams(max_tokens=40, seed=7)
    out = summarize_neurons(NEURONS, CAPTIONS, client, params, k=2, embedder=BagOfWordsEmbedder())
    assert len(client.calls) == 1  # one batched call with every chat
    chats, used = client.calls[0]
    assert len(chats) == 4 and used is params
    assert chats[0][1]["content"].split("\n")[:3] == [TOP_HEADER, "Violin plays A4.",
                                                      "Violin plays C5."]  # k=2: v3 left out
    assert "Near silence.; Room tone." in chats[1][1]["content"]

    a, b = out
    assert (a.layer, a.unit, b.layer, b.unit) == ("conv1", 3, "conv2", 0)
    assert a.high == "All clips have a bright violin tone. The recordings have background noise."
    assert a.low == "The recordings have background noise. They are very quiet overall."
    assert a.calibrated == "All clips have a bright violin tone."
    assert a.dropped == [{"sentence": "The recordings have background noise.",
                          "match": "The recordings have background noise.", "cosine": 1.0}]
    assert a.llm == "fake:tiny-llm" and a.errors == [] and not a.all_dropped
    assert a.top_clips == ["v1", "v2"] and a.bottom_clips == ["s1", "s2"]
    assert a.raw_high.startswith("Sure!")

    # second neuron: a missing caption and a failed bottom call are recorded; the run goes on
    assert b.high == "All clips have a bright flute tone. The recordings have background noise."
    assert b.low == ""
    assert b.calibrated == b.high  # nothing to calibrate against, and it says so
    assert b.llm == "fake:tiny-llm"
    assert any("missing" in e for e in b.errors)
    assert any(e.startswith("bottom: LLM call failed: timeout") for e in b.errors)
    assert any("calibration skipped" in e for e in b.errors)
    row = b.to_dict()
    assert {"layer", "unit", "high", "low", "calibrated", "dropped", "llm", "errors"} <= set(row)


def test_summarize_neurons_survives_a_raising_client_and_batches():
    client = FakeClient(raise_error=True)
    out = summarize_neurons(NEURONS, CAPTIONS, client, k=2, embedder=BagOfWordsEmbedder(),
                            batch_size=3)
    assert [len(c[0]) for c in client.calls] == [3, 1]
    assert all(r.high == "" and r.calibrated == "" for r in out)
    assert all(any("RuntimeError: server down" in e for e in r.errors) for r in out)
    assert all(r.llm == "fake:tiny-llm" for r in out)


def test_summarize_neurons_default_params_and_no_captions():
    client = FakeClient()
    out = summarize_neurons([{"layer": "l", "unit": 1, "top": ["zz"], "bottom": []}], {}, client,
                            embedder=BagOfWordsEmbedder())
    assert client.calls == []  # nothing to ask
    assert out[0].high == "" and out[0].llm == "fake:tiny-llm"
    assert any("top: no captions" in e for e in out[0].errors)


@pytest.mark.parametrize("raw, want", [
    ("The clips are a mix of a loud, warm, tonal, bright, bright, bright, bright, bright.",
     "The clips are a mix of a loud, warm, tonal, bright."),
    ("These clips share a variety of sound effects, including a variety of sound effects, "
     "including a variety of sound effects, including a variety of sound effects.",
     "These clips share a variety of sound effects, including a variety of sound effects."),
    ("A tonal, tonal sound with a pitch around A4 (440 Hz).",
     "A tonal sound with a pitch around A4 (440 Hz)."),
])
def test_clean_summary_collapses_small_model_loops(raw, want):
    assert clean_summary(raw) == want
