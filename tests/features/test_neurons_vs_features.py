"""benchmarks/neurons_vs_features.py on a hand-made run: counts, concepts, polysemantic units
and the printed table, exact."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "neurons_vs_features", ROOT / "benchmarks" / "neurons_vs_features.py")
nvf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nvf)


def ev(*pairs):
    return [{"term": t, "auroc": a} for t, a in pairs]


def expl(layer, unit, status, desc="no clear concept", claims=(), r=None):
    row = {"layer": layer, "unit": unit, "status": status, "description": desc,
           "kind": "evidence" if claims else "none", "test": {} if r is None else
           {"correlation": r, "p": 0.001, "detection": 0.9},
           "candidates": [{"text": desc, "claims": [list(c) for c in claims]}] if claims else []}
    return row


# unit -> (status, description, claims, test r, evidence)
FIXTURE = {
    "conv6": [
        ("confirmed", "pitch near E4", [["f0=E4", "pitch=E4"]], 0.5,
         # synonyms + same scale: related -> not polysemantic
         ev(("pitch=E4", 0.95), ("f0=E4", 0.94), ("register=middle", 0.9))),
        ("confirmed", "the word 'zero'", [["word=zero"]], 0.3,
         # a word and a phone it contains (together in a caption), phone/nucleus: related
         ev(("word=zero", 0.95), ("phone=/z/", 0.9), ("nucleus=/iə/", 0.88))),
        ("unconfirmed", "no clear concept", [], None,
         ev(("word=one", 0.95), ("word=two", 0.95))),  # not confirmed: not counted
    ],
    "sae:conv6": [
        ("confirmed", "pitch near E4", [["pitch=E4"]], 0.6,  # same concept as f0=E4
         # two values of a label attribute: polysemantic
         ev(("instrument=Tuba", 0.9), ("pitch=E4", 0.7), ("instrument=Flute", 0.86),
            ("word=one", 0.99))),  # pitch=E4 below 0.85; the 4th term beyond the top 3
        ("confirmed", "Trombone", [["instrument=Trombone"]], 0.2,
         # instrument and pitch: different families -> polysemantic
         ev(("instrument=Trombone", 0.9), ("pitch=B4", 0.87))),
        ("confirmed", "dog", [["audioset_tag=Dog"]], 0.2,
         # a tag and its ancestor (every Dog clip is an Animal clip): related
         ev(("audioset_tag=Dog", 0.9), ("audioset_tag=Animal", 0.9))),
        ("confirmed", "the word '0'", [["word=0"]], 0.1,  # concept word=zero
         # a word and a phone never captioned with it: polysemantic
         ev(("word=0", 0.9), ("word=zero", 0.9), ("phone=/w/", 0.9))),
        ("too_few_positives", "no clear concept", [], None, []),
    ],
}
CAPTIONS = [{"clip": "z", "terms": ["word=zero", "phone=/z/", "phone=/iə/", "nucleus=/iə/"]},
            {"clip": "z", "terms": ["kind=speech"]},  # another captioner of the same clip
            {"clip": "o", "terms": ["word=one", "phone=/w/", "kind=speech"]},
            {"clip": "d1", "terms": ["audioset_tag=Dog", "audioset_tag=Animal"]},
            {"clip": "d2", "terms": ["audioset_tag=Dog", "audioset_tag=Animal"]},
            {"clip": "c", "terms": ["audioset_tag=Cat", "audioset_tag=Animal"]}]


def write_run(tmp_path: Path) -> Path:
    e, x = [], []
    for layer, units in FIXTURE.items():
        for unit, (status, desc, claims, r, evidence) in enumerate(units):
            x.append(expl(layer, unit, status, desc, claims, r))
            e.append({"layer": layer, "unit": unit, "evidence": evidence})
    for name, rows in (("explanations", x), ("evidence", e), ("captions", CAPTIONS)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_related_rules():
    clips = nvf.term_clips(CAPTIONS)
    assert clips["kind=speech"] == {"z", "o"} and clips["audioset_tag=Animal"] == {"d1", "d2", "c"}
    assert nvf.related("f0=E4", "pitch=E4")
    assert nvf.related("pitch=E4", "register=middle")
    assert nvf.related("phone=/z/", "nucleus=/aɪ/")
    assert nvf.related("word=5", "word=five") and nvf.related("digit=0", "word=zero")
    assert not nvf.related("word=3", "word=free")
    assert not nvf.related("word=zero", "phone=/w/", clips)
    assert nvf.related("word=zero", "phone=/z/", clips)
    assert not nvf.related("word=zero", "phone=/z/")  # no captions: no implication
    assert nvf.related("word=zero", "kind=speech", clips)  # across captioners of one clip
    assert nvf.related("audioset_tag=Dog", "audioset_tag=Animal", clips)
    assert not nvf.related("audioset_tag=Dog", "audioset_tag=Cat", clips)
    assert not nvf.related("instrument=Tuba", "instrument=Flute", clips)
    # 9 of 10 clips of the rarer term carry the other: implied; 8 of 10: not
    many = {"a=x": {str(i) for i in range(10)}, "b=y": {str(i) for i in range(1, 20)},
            "c=z": {str(i) for i in range(2, 20)}}
    assert nvf.implied("a=x", "b=y", many) and not nvf.implied("a=x", "c=z", many)
    with pytest.raises(ValueError, match="not attribute=value"):
        nvf.related("zero", "word=zero")


def test_layer_stats_on_fixture(tmp_path):
    run = write_run(tmp_path)
    stats = nvf.layer_stats(nvf.read_jsonl(run / "explanations.jsonl"),
                            nvf.read_jsonl(run / "evidence.jsonl"),
                            nvf.read_jsonl(run / "captions.jsonl"))
    n, f = stats["conv6"], stats["sae:conv6"]
    assert (n["units"], n["confirmed"], n["polysemantic"]) == (3, 2, 0)
    assert (f["units"], f["confirmed"], f["polysemantic"]) == (5, 4, 3)
    assert n["concepts"] == {"f0=E4", "word=zero"}
    assert f["concepts"] == {"f0=E4", "instrument=Trombone", "audioset_tag=Dog", "word=zero"}
    assert f["test_r"] == [0.6, 0.2, 0.2, 0.1]
    assert n["concept_counts"] == {"f0=E4": 1, "word=zero": 1}
    assert [r["unit"] for r in nvf.top_rows(f["rows"], 3)] == [0, 1, 2]  # tie 0.2: by unit


def test_printed_table(tmp_path):
    out = nvf.run_table(write_run(tmp_path), examples=2)
    assert "| conv6 | 3 | 2 (67%) | 0.400 [0.350, 0.450] | 2 | f0=E4 (1) | 0 (0%) |" in out
    assert ("| sae:conv6 | 5 | 4 (80%) | 0.200 [0.175, 0.300] | 4 | audioset_tag=Dog (1) | "
            "3 (75%) |") in out
    assert "| 0 | pitch near E4 | 0.6 | 0.001 | 0.9 |" in out
    assert "| 1 | Trombone | 0.2 | 0.001 | 0.9 |" in out and "| 2 | dog |" not in out


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="explanations.jsonl: missing"):
        nvf.run_table(tmp_path)
    (tmp_path / "explanations.jsonl").write_text(json.dumps(expl("conv6", 0, "confirmed")) + "\n")
    (tmp_path / "evidence.jsonl").write_text("{oops\n")
    with pytest.raises(ValueError, match="evidence.jsonl:1: not JSON"):
        nvf.run_table(tmp_path)
    (tmp_path / "evidence.jsonl").write_text("")
    with pytest.raises(ValueError, match="no layer with its sae: latents"):
        nvf.run_table(tmp_path)
