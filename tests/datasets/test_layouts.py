"""Probe-set layout parsers, each on a tiny tree written under tmp_path."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dissect.audio import AudioMissingError, ClipPolicy
from dissect.datasets.base import ProbeSet, SkipLog, TooManySkipsError
from dissect.datasets.errors import ProbeSetError
from dissect.datasets.esc50 import load_esc50
from dissect.datasets.folder import load_folder
from dissect.datasets.gtzan import load_gtzan
from dissect.datasets.hear_task import load_hear_task
from dissect.datasets.spoken_digit import load_spoken_digit
from dissect.datasets.urbansound8k import load_urbansound8k

SR = 16000


def wav(path: Path, seconds: float = 0.1, sr: int = SR, fmt: str | None = None) -> Path:
    """Write a 440 Hz sine (half scale) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, format=fmt)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ids(ps: ProbeSet) -> list[str]:
    return [c.id for c in ps]


@contextmanager
def raises_naming(path: Path):
    """``pytest.raises(ProbeSetError)`` whose message must contain ``path``."""
    with pytest.raises(ProbeSetError) as info:
        yield info
    assert str(path) in str(info.value), str(info.value)


# ---------------------------------------------------------------- folder


@pytest.fixture
def folder_tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    wav(root / "b" / "z.wav")
    wav(root / "a.flac", fmt="FLAC")
    wav(root / "b" / "y.WAV")
    write(root / "notes.txt", "not audio")
    wav(root / ".hidden.wav")
    wav(root / ".cache" / "x.wav")
    return root


def test_folder_scan_ids_order_and_paths(folder_tree: Path):
    ps = load_folder(folder_tree)
    assert ps.name == "folder"
    assert ids(ps) == ["a", "b/y", "b/z"]
    assert [c.path for c in ps] == [
        folder_tree / "a.flac",
        folder_tree / "b/y.WAV",
        folder_tree / "b/z.wav",
    ]
    assert all(c.labels == {} and c.metadata == {} for c in ps)
    assert ps.label_columns == []
    assert ps[2].load().sample_rate == SR


def test_folder_csv_metadata_join(folder_tree: Path):
    write(
        folder_tree / "meta.csv",
        "filename,label,speaker\nb/z.wav,dog,ann\n./a.flac,cat,bob\n\ngone/missing.wav,bird,cy\n",
    )
    ps = load_folder(folder_tree, metadata="meta.csv", label_columns=["label"])
    assert ids(ps) == ["a", "b/y", "b/z", "gone/missing"]
    by_id = {c.id: c for c in ps}
    assert by_id["a"].labels == {"label": "cat"}
    assert by_id["a"].metadata == {"speaker": "bob"}
    assert by_id["b/y"].labels == {} and by_id["b/y"].metadata == {}
    assert by_id["b/z"].labels == {"label": "dog"}
    assert by_id["gone/missing"].labels == {"label": "bird"}
    assert by_id["gone/missing"].path == folder_tree / "gone" / "missing.wav"
    assert ps.label_columns == ["label"]
    with pytest.raises(AudioMissingError) as info:
        by_id["gone/missing"].load()
    assert info.value.kind == "missing"


def test_folder_default_label_columns_are_all_but_path(folder_tree: Path):
    meta = write(folder_tree.parent / "elsewhere.csv", "label,filename,speaker\ncat,a.flac,bob\n")
    ps = load_folder(folder_tree, metadata=meta)  # absolute path outside root
    assert ps.label_columns == ["label", "speaker"]
    assert ps[0].labels == {"label": "cat", "speaker": "bob"}
    assert ps[0].metadata == {}


def test_folder_json_list_and_mapping(folder_tree: Path):
    rows = [{"path": "b/z.wav", "n": 3, "tags": ["x", "y"]}, {"path": "a.flac", "n": 1}]
    write(folder_tree / "m.json", json.dumps(rows))
    ps = load_folder(folder_tree, metadata="m.json", path_column="path")
    assert ps.label_columns == ["n", "tags"]
    assert {c.id: c.labels for c in ps} == {
        "a": {"n": 1},
        "b/y": {},
        "b/z": {"n": 3, "tags": ["x", "y"]},
    }
    write(folder_tree / "m2.json", json.dumps({"b/y.WAV": {"genre": "jazz", "year": 1999}}))
    ps = load_folder(folder_tree, metadata="m2.json", label_columns=["genre"])
    assert {c.id: (c.labels, c.metadata) for c in ps} == {
        "a": ({}, {}),
        "b/y": ({"genre": "jazz"}, {"year": 1999}),
        "b/z": ({}, {}),
    }


def test_folder_errors_name_the_file(folder_tree: Path, tmp_path: Path):
    assert issubclass(ProbeSetError, ValueError)
    with raises_naming(tmp_path / "nope") as info:
        load_folder(tmp_path / "nope")
    assert "not found" in str(info.value)

    with raises_naming(folder_tree / "missing.csv"):
        load_folder(folder_tree, metadata="missing.csv")

    bad_col = write(folder_tree / "c.csv", "file,label\na.flac,cat\n")
    with raises_naming(bad_col) as info:
        load_folder(folder_tree, metadata="c.csv")
    assert "'filename'" in str(info.value)
    ok = write(folder_tree / "ok.csv", "filename,label\na.flac,cat\n")
    with raises_naming(ok) as info:
        load_folder(folder_tree, metadata=ok, label_columns=["genre"])
    assert "genre" in str(info.value)

    ragged = write(folder_tree / "r.csv", "filename,label\na.flac,cat\nb/z.wav,dog,extra\n")
    with raises_naming(ragged) as info:
        load_folder(folder_tree, metadata="r.csv")
    assert "line 3" in str(info.value)

    broken = write(folder_tree / "b.json", '[{"filename": "a.flac",]')
    with raises_naming(broken) as info:
        load_folder(folder_tree, metadata="b.json")
    assert "malformed JSON" in str(info.value)

    no_key = write(folder_tree / "k.json", '[{"file": "a.flac"}]')
    with raises_naming(no_key):
        load_folder(folder_tree, metadata="k.json")

    dup = write(folder_tree / "d.csv", "filename,label\na.flac,cat\n./a.flac,dog\n")
    with raises_naming(dup):
        load_folder(folder_tree, metadata="d.csv")

    nomatch = write(folder_tree / "n.csv", "filename,label\nz.wav,cat\n")
    with raises_naming(nomatch) as info:
        load_folder(folder_tree, metadata="n.csv")
    assert "none of its 1 rows" in str(info.value)

    empty = tmp_path / "empty"
    write(empty / "readme.txt", "x")
    with raises_naming(empty) as info:
        load_folder(empty)
    assert "no audio files" in str(info.value)


def test_iter_audio_records_corrupt_file_and_enforces_budget(tmp_path: Path):
    root = tmp_path / "set"
    for name in ("a", "b", "c"):
        wav(root / f"{name}.wav")
    (root / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00not really a wave file at all")
    ps = load_folder(root)
    assert ids(ps) == ["a", "b", "bad", "c"]

    skips = SkipLog(max_fraction=0.5)
    got = [clip.id for clip, audio in ps.iter_audio(SR, ClipPolicy(), skips)]
    assert got == ["a", "b", "c"]
    assert skips.total == 4
    assert len(skips.rows) == 1
    assert skips.rows[0]["id"] == "bad"
    assert skips.rows[0]["kind"] == "unreadable"
    assert skips.rows[0]["path"] == str(root / "bad.wav")

    strict = SkipLog(max_fraction=0.1)
    with pytest.raises(TooManySkipsError, match="max_skip_fraction=0.1"):
        list(ps.iter_audio(SR, ClipPolicy(), strict))
    assert [r["id"] for r in strict.rows] == ["bad"]


# ---------------------------------------------------------------- ESC-50

ESC_HEADER = "filename,fold,target,category,esc10,src_file,take\n"


@pytest.fixture
def esc_tree(tmp_path: Path) -> Path:
    root = tmp_path / "ESC-50-master"
    write(
        root / "meta" / "esc50.csv",
        ESC_HEADER + "2-1000-B-1.wav,2,1,rooster,False,1000,B\n"
        "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
        "2-0009-A-0.wav,2,0,dog,True,0009,A\n",
    )
    wav(root / "audio" / "1-100032-A-0.wav")
    wav(root / "audio" / "2-1000-B-1.wav")  # 2-0009-A-0.wav is missing on disk
    return root


def test_esc50_rows(esc_tree: Path):
    ps = load_esc50(esc_tree)
    assert ps.name == "esc50"
    assert ps.label_columns == ["category", "target"]
    assert ids(ps) == ["1-100032-A-0", "2-0009-A-0", "2-1000-B-1"]
    c = ps[0]
    assert c.path == esc_tree / "audio" / "1-100032-A-0.wav"
    assert c.labels == {"category": "dog", "target": 0}
    assert c.metadata == {"fold": 1, "esc10": True, "src_file": "100032", "take": "A",
                          "group": "src:100032"}  # one recording's clips split together
    assert ps[2].labels == {"category": "rooster", "target": 1}
    assert ps[2].metadata["esc10"] is False
    assert ps[1].metadata["src_file"] == "0009"
    with pytest.raises(AudioMissingError):
        ps[1].load()


def test_esc50_folds_and_parent_root(esc_tree: Path):
    assert ids(load_esc50(esc_tree, folds=[2])) == ["2-0009-A-0", "2-1000-B-1"]
    assert ids(load_esc50(esc_tree, folds=[1, 2])) == ids(load_esc50(esc_tree))
    assert ids(load_esc50(esc_tree.parent, folds=[1])) == ["1-100032-A-0"]


def test_esc50_errors(esc_tree: Path, tmp_path: Path):
    table = esc_tree / "meta" / "esc50.csv"
    with raises_naming(table) as info:
        load_esc50(esc_tree, folds=[7])
    assert "[7]" in str(info.value) and "[1, 2]" in str(info.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with raises_naming(empty / "meta" / "esc50.csv"):
        load_esc50(empty)

    table.write_text(ESC_HEADER + "1-1-A-0.wav,one,0,dog,True,1,A\n")
    with raises_naming(table) as info:
        load_esc50(esc_tree)
    assert "line 2" in str(info.value) and "'fold'" in str(info.value)

    table.write_text("filename,fold,target,category\n1-1-A-0.wav,1,0,dog\n")
    with raises_naming(table) as info:
        load_esc50(esc_tree)
    assert "esc10" in str(info.value)


# ---------------------------------------------------------------- UrbanSound8K

US_HEADER = "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
US_ROWS = (
    "7383-3-0-1.wav,7383,0.5,4.5,2,2,3,dog_bark\n"
    "100032-3-0-0.wav,100032,0.0,0.317551,1,1,3,dog_bark\n"
    "100263-2-0-117.wav,100263,58.5,62.5,1,1,2,children_playing\n"
)


@pytest.mark.parametrize("audio_sub", ["audio", "."])
def test_urbansound8k(tmp_path: Path, audio_sub: str):
    root = tmp_path / "UrbanSound8K"
    write(root / "metadata" / "UrbanSound8K.csv", US_HEADER + US_ROWS)
    base = root / audio_sub
    wav(base / "fold1" / "100032-3-0-0.wav")
    wav(base / "fold1" / "100263-2-0-117.wav")
    wav(base / "fold2" / "7383-3-0-1.wav")
    ps = load_urbansound8k(root)
    assert ps.name == "urbansound8k"
    assert ps.label_columns == ["class", "classID"]
    assert ids(ps) == ["100032-3-0-0", "100263-2-0-117", "7383-3-0-1"]
    assert [c.path for c in ps] == [
        base / "fold1" / "100032-3-0-0.wav",
        base / "fold1" / "100263-2-0-117.wav",
        base / "fold2" / "7383-3-0-1.wav",
    ]
    assert all(c.path.is_file() for c in ps)
    assert ps[0].labels == {"class": "dog_bark", "classID": 3}
    assert ps[2].metadata == {
        "fold": 2,
        "salience": 2,
        "fsID": 7383,
        "start": 0.5,
        "end": 4.5,
        "group": "fsID:7383",
    }
    assert ids(load_urbansound8k(root, folds=[2])) == ["7383-3-0-1"]
    with raises_naming(root / "metadata" / "UrbanSound8K.csv"):
        load_urbansound8k(root, folds=[3])


def test_urbansound8k_errors(tmp_path: Path):
    root = tmp_path / "us"
    with raises_naming(root / "metadata" / "UrbanSound8K.csv"):
        load_urbansound8k(require_mkdir(root))
    write(root / "metadata" / "UrbanSound8K.csv", US_HEADER + US_ROWS)
    with raises_naming(root) as info:
        load_urbansound8k(root)
    assert "fold<N>" in str(info.value)


def require_mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


# ---------------------------------------------------------------- GTZAN


@pytest.mark.parametrize("sub", ["genres", "genres_original", "."])
def test_gtzan(tmp_path: Path, sub: str):
    root = tmp_path / "gtzan"
    base = root / sub
    wav(base / "rock" / "rock.00000.au", fmt="AU")
    wav(base / "blues" / "blues.00001.wav")
    wav(base / "blues" / "blues.00000.wav")
    write(base / "blues" / "list.mf", "not audio")
    write(base / "bextract_single.mf", "not audio")
    ps = load_gtzan(root)
    assert ps.name == "gtzan"
    assert ps.label_columns == ["genre"]
    assert ids(ps) == ["blues/blues.00000", "blues/blues.00001", "rock/rock.00000"]
    assert [c.labels for c in ps] == [{"genre": "blues"}, {"genre": "blues"}, {"genre": "rock"}]
    assert ps[2].path == base / "rock" / "rock.00000.au"
    assert ps[2].load().sample_rate == SR


def test_gtzan_errors(tmp_path: Path):
    with raises_naming(tmp_path / "none"):
        load_gtzan(tmp_path / "none")
    root = tmp_path / "g"
    write(root / "genres" / "blues" / "readme.txt", "x")
    with raises_naming(root / "genres"):
        load_gtzan(root)


# ---------------------------------------------------------------- spoken digits


def test_spoken_digit(tmp_path: Path):
    root = tmp_path / "fsdd"
    for name in ("1_theo_10", "1_theo_2", "0_jackson_0", "0_george_1"):
        wav(root / "recordings" / f"{name}.wav")
    ps = load_spoken_digit(root)
    assert ps.name == "spoken_digit"
    assert ps.label_columns == ["digit", "speaker"]
    assert ids(ps) == [
        "recordings/0_george_1",
        "recordings/0_jackson_0",
        "recordings/1_theo_2",
        "recordings/1_theo_10",
    ]
    assert ps[3].labels == {"digit": 1, "speaker": "theo"}
    assert ps[3].metadata == {"index": 10, "group": "speaker:theo"}
    assert ps[3].path == root / "recordings" / "1_theo_10.wav"
    assert ids(load_spoken_digit(root / "recordings"))[0] == "0_george_1"


def test_spoken_digit_rejects_other_names(tmp_path: Path):
    root = tmp_path / "fsdd"
    wav(root / "0_jackson_0.wav")
    bad = ["a.wav", "b.wav", "c.wav", "d.wav", "e.wav", "f.wav", "12_x_1.wav"]
    for name in bad:
        wav(root / name)
    with raises_naming(root) as info:
        load_spoken_digit(root)
    msg = str(info.value)
    assert "7 audio file(s)" in msg
    assert "12_x_1.wav, a.wav, b.wav, c.wav, d.wav, ..." in msg
    assert "e.wav" not in msg and "0_jackson_0" not in msg
    with raises_naming(tmp_path / "nothing"):
        load_spoken_digit(require_mkdir(tmp_path / "nothing"))


# ---------------------------------------------------------------- HEAR task dirs


@pytest.fixture
def hear_scene(tmp_path: Path) -> Path:
    root = tmp_path / "esc50-v2.0.0-full"
    meta = {
        "task_name": "esc50",
        "version": "v2.0.0",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": "presplit_kfold",
        "nfolds": 2,
        "splits": ["fold01", "fold00"],
        "sample_duration": 5,
        "evaluation": ["top1_acc", "mAP"],
        "mode": "full",
    }
    write(root / "task_metadata.json", json.dumps(meta))
    write(root / "labelvocabulary.csv", "idx,label\n0,bird\n1,cat\n2,dog\n")
    write(root / "fold00.json", json.dumps({"b.wav": ["dog"], "a.wav": ["cat", "dog"]}))
    write(root / "fold01.json", json.dumps({"c.wav": ["bird"], "gone.wav": ["cat"]}))
    for sr in (16000, 48000):
        wav(root / str(sr) / "fold00" / "a.wav", sr=sr)
        wav(root / str(sr) / "fold00" / "b.wav", sr=sr)
        wav(root / str(sr) / "fold01" / "c.wav", sr=sr)
    wav(root / "48000" / "fold01" / "extra.wav", sr=48000)  # on disk but not in fold01.json
    return root


def test_hear_scene_task(hear_scene: Path):
    ps = load_hear_task(hear_scene)
    assert ps.name == "hear"
    assert ps.label_columns == ["labels"]
    assert ids(ps) == ["fold00/a", "fold00/b", "fold01/c", "fold01/extra", "fold01/gone"]
    assert [c.labels for c in ps] == [
        {"labels": ["cat", "dog"]},
        {"labels": ["dog"]},
        {"labels": ["bird"]},
        {},
        {"labels": ["cat"]},
    ]
    assert ps[0].metadata == {"split": "fold00", "task_name": "esc50"}
    assert ps[0].path == hear_scene / "48000" / "fold00" / "a.wav"
    assert ps[0].load().source_sample_rate == 48000
    with pytest.raises(AudioMissingError):
        ps[4].load()

    only = load_hear_task(hear_scene, splits=["fold01"], sample_rate=16000)
    assert ids(only) == ["fold01/c", "fold01/gone"]
    assert only[0].path == hear_scene / "16000" / "fold01" / "c.wav"


def test_hear_event_task_trainvaltest(tmp_path: Path):
    root = tmp_path / "dcase2016_task2-hear2021-full"
    meta = {
        "task_name": "dcase2016_task2",
        "embedding_type": "event",
        "prediction_type": "multilabel",
        "split_mode": "trainvaltest",
        "sample_duration": 120.0,
        "evaluation": ["event_onset_200ms_fms", "segment_1s_er"],
    }
    write(root / "task_metadata.json", json.dumps(meta))
    events = {
        "x.wav": [
            {"label": "door", "start": 100, "end": 850.5},
            {"label": "cough", "start": 900.0, "end": 1200.0},
        ]
    }
    write(root / "train.json", json.dumps(events))
    write(root / "valid.json", json.dumps({"y.wav": []}))
    write(root / "test.json", json.dumps({"z.wav": [{"label": "keys", "start": 0, "end": 10}]}))
    for split, name in (("train", "x"), ("valid", "y"), ("test", "z")):
        wav(root / "16000" / split / f"{name}.wav")
    ps = load_hear_task(root)
    assert ps.label_columns == ["events"]
    assert ids(ps) == ["test/z", "train/x", "valid/y"]
    assert ps[1].labels == {
        "events": [
            {"label": "door", "start": 100.0, "end": 850.5},
            {"label": "cough", "start": 900.0, "end": 1200.0},
        ]
    }
    assert ps[2].labels == {"events": []}
    assert ps[1].metadata == {"split": "train", "task_name": "dcase2016_task2"}
    assert ids(load_hear_task(root, splits=["valid", "train"])) == ["train/x", "valid/y"]


def test_hear_errors(hear_scene: Path, tmp_path: Path):
    meta_path = hear_scene / "task_metadata.json"
    with raises_naming(meta_path) as info:
        load_hear_task(hear_scene, splits=["train"])
    assert "fold00" in str(info.value)
    with raises_naming(hear_scene) as info:
        load_hear_task(hear_scene, sample_rate=22050)
    assert "[16000, 48000]" in str(info.value)

    bare = require_mkdir(tmp_path / "bare")
    with raises_naming(bare / "task_metadata.json"):
        load_hear_task(bare)

    (hear_scene / "fold01.json").write_text('{"c.wav": ["bird"')
    with raises_naming(hear_scene / "fold01.json") as info:
        load_hear_task(hear_scene)
    assert "malformed JSON" in str(info.value)
    (hear_scene / "fold01.json").unlink()
    with raises_naming(hear_scene / "fold01.json"):
        load_hear_task(hear_scene)
    assert ids(load_hear_task(hear_scene, splits=["fold00"])) == ["fold00/a", "fold00/b"]

    meta = json.loads(meta_path.read_text())
    meta["embedding_type"] = "frame"
    meta_path.write_text(json.dumps(meta))
    with raises_naming(meta_path) as info:
        load_hear_task(hear_scene)
    assert "'frame'" in str(info.value)
