"""Guards where clips enter a probe set: a length limit on label values (cut with a marker and a
warning naming the table and row), a minimum clip duration (skip ``too_short``), and metadata
rows that reach out of the probe root through a symlinked directory (skip ``outside_root``)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dissect.audio import ClipPolicy
from dissect.datasets.base import Clip, ProbeSet, SkipLog
from dissect.datasets.errors import PathOutsideRootError
from dissect.datasets.folder import load_folder
from dissect.limits import CUT_MARKER, MAX_LABEL_CHARS, TextCutWarning

SR = 16000


def wav(path: Path, n_samples: int = 1600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(n_samples) / SR
    sf.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    return path


def cut_messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, TextCutWarning)]


# ------------------------------------------------------------------------- label length
def test_long_csv_label_is_cut_with_marker_and_a_warning_naming_file_and_row(tmp_path):
    root = tmp_path / "set"
    for name in ("a", "b", "c"):
        wav(root / f"{name}.wav")
    huge = "".join(chr(ord("a") + i % 26) for i in range(100_000))  # a 100 kB label
    table = root / "meta.csv"
    table.write_text(f"filename,label,note\na.wav,dog,short\nb.wav,{huge},{huge[:300]}\n"
                     "c.wav,cat,ok\n", encoding="utf-8")
    with pytest.warns(TextCutWarning) as record:
        ps = load_folder(root, metadata="meta.csv", label_columns=["label"])
    by_id = {c.id: c for c in ps}
    label = by_id["b"].labels["label"]
    assert len(label) == MAX_LABEL_CHARS == 200
    assert label == huge[: 200 - len(CUT_MARKER)] + CUT_MARKER and label.endswith("…[cut]")
    note = by_id["b"].metadata["note"]  # a metadata column is cut as well
    assert note == huge[: 200 - len(CUT_MARKER)] + CUT_MARKER
    assert by_id["a"].labels == {"label": "dog"} and by_id["a"].metadata == {"note": "short"}
    assert by_id["c"].labels == {"label": "cat"}
    msgs = cut_messages(record)
    assert len(msgs) == 2
    assert str(table) in msgs[0] and "line 3" in msgs[0] and "clip 'b'" in msgs[0]
    assert "label 'label'" in msgs[0] and "100,000 characters" in msgs[0]
    assert "label 'note'" in msgs[1] and "300 characters" in msgs[1]


def test_long_json_list_item_is_cut_and_names_the_key(tmp_path):
    root = tmp_path / "set"
    wav(root / "x" / "a.wav")
    table = root / "m.json"
    table.write_text(json.dumps({"x/a.wav": {"tags": ["fine", "z" * 5000], "n": 3}}))
    with pytest.warns(TextCutWarning) as record:
        ps = load_folder(root, metadata="m.json")
    tags = ps[0].labels["tags"]
    assert tags[0] == "fine" and tags[1] == "z" * 194 + CUT_MARKER and ps[0].labels["n"] == 3
    (msg,) = cut_messages(record)
    assert str(table) in msg and "key 'x/a.wav'" in msg and "clip 'x/a'" in msg


def test_probe_set_cuts_labels_of_any_layout_and_names_the_clip(tmp_path):
    clip = Clip("1-100-A-0", tmp_path / "x.wav", labels={"category": "q" * 250, "fold": 1})
    with pytest.warns(TextCutWarning) as record:
        ps = ProbeSet("esc50", tmp_path, [clip])
    assert ps[0].labels == {"category": "q" * 194 + CUT_MARKER, "fold": 1}
    (msg,) = cut_messages(record)
    assert "esc50 probe set at" in msg and str(tmp_path) in msg and "'1-100-A-0'" in msg


def test_labels_at_the_limit_are_kept_without_a_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TextCutWarning)
        ps = ProbeSet("x", tmp_path, [Clip("c", tmp_path / "c.wav", labels={"k": "v" * 200})])
    assert ps[0].labels["k"] == "v" * 200


# ------------------------------------------------------------------------- too short
def test_too_short_clips_are_skips(tmp_path):
    root = tmp_path / "set"
    wav(root / "one.wav", 1)            # one sample
    wav(root / "tiny.wav", 399)         # 24.9 ms
    wav(root / "edge.wav", 400)         # 25 ms: the default minimum, kept
    wav(root / "fine.wav", 16000)
    ps = load_folder(root)
    skips = SkipLog(max_fraction=0.6)
    got = {clip.id: len(audio.waveform) for clip, audio in ps.iter_audio(SR, ClipPolicy(), skips)}
    assert got == {"edge": 400, "fine": 16000}
    rows = {r["id"]: r for r in skips.rows}
    assert set(rows) == {"one", "tiny"}
    assert {r["kind"] for r in rows.values()} == {"too_short"}
    assert "too short" in rows["one"]["error"] and "(1 sample)" in rows["one"]["error"]
    assert "(399 samples)" in rows["tiny"]["error"] and "0.025 s" in rows["tiny"]["error"]
    assert str(root / "one.wav") in rows["one"]["error"]
    assert skips.summary() == "skipped 2 of 4 clips (50.0%): 2 too_short"
    # a stricter minimum, and none at all
    strict = SkipLog(max_fraction=1.0)
    kept = [c.id for c, _ in ps.iter_audio(SR, ClipPolicy(min_seconds=0.5), strict)]
    assert kept == ["fine"] and len(strict.rows) == 3
    kept = [c.id for c, _ in ps.iter_audio(SR, ClipPolicy(min_seconds=0), SkipLog())]
    assert kept == ["edge", "fine", "one", "tiny"]
    with pytest.raises(ValueError, match="min_seconds"):
        ClipPolicy(min_seconds=-1)


def test_crop_does_not_make_a_long_file_too_short(tmp_path):
    root = tmp_path / "set"
    wav(root / "long.wav", 16000)
    ps = load_folder(root)
    policy = ClipPolicy(max_seconds=0.02, min_seconds=0.1)  # the file is 1 s, the crop 20 ms
    (clip, audio), = list(ps.iter_audio(SR, policy, SkipLog()))
    assert audio.cropped and len(audio.waveform) == 320


# ------------------------------------------------------------------------- symlinks
@pytest.fixture
def linked_root(tmp_path):
    root = tmp_path / "probe"
    outside = tmp_path / "private"
    wav(root / "a.wav")
    wav(root / "inside" / "b.wav")
    wav(outside / "secret.wav")
    wav(outside / "shared.wav")
    (root / "link").symlink_to(outside, target_is_directory=True)      # a dir leading out
    (root / "alias").symlink_to(root / "inside", target_is_directory=True)  # a dir inside
    (root / "shared.wav").symlink_to(outside / "shared.wav")           # a symlinked file
    return root


def test_metadata_row_through_a_symlinked_directory_is_a_skip(linked_root):
    (linked_root / "meta.csv").write_text(
        "filename,label\na.wav,x\nlink/secret.wav,y\nalias/b.wav,z\nshared.wav,w\n")
    ps = load_folder(linked_root, metadata="meta.csv")
    assert [c.id for c in ps] == ["a", "alias/b", "inside/b", "link/secret", "shared"]
    skips = SkipLog(max_fraction=0.5)
    got = [c.id for c, _ in ps.iter_audio(SR, ClipPolicy(), skips)]
    # the symlinked file is kept as the folder scan keeps it; a directory alias that stays
    # inside the root is fine; only the row that leaves the root is refused
    assert got == ["a", "alias/b", "inside/b", "shared"]
    (row,) = skips.rows
    assert row["id"] == "link/secret" and row["kind"] == "outside_root"
    assert "outside the probe root" in row["error"]
    assert str((linked_root.parent / "private").resolve()) in row["error"]
    with pytest.raises(PathOutsideRootError):
        ps[3].load(SR)


def test_a_symlinked_probe_root_is_fine(linked_root, tmp_path):
    via = tmp_path / "via"
    via.symlink_to(linked_root, target_is_directory=True)
    (linked_root / "meta.csv").write_text("filename,label\na.wav,x\ninside/b.wav,z\n")
    ps = load_folder(via, metadata="meta.csv")
    skips = SkipLog()
    assert [c.id for c, _ in ps.iter_audio(SR, ClipPolicy(), skips)] == ["a", "inside/b",
                                                                          "shared"]
    assert skips.rows == []
