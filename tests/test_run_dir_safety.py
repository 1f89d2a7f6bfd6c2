"""A run directory is new, empty or dissect's: anything else is refused before a byte is
written, and a rerun deletes only the files an earlier run of dissect wrote."""

import json
from pathlib import Path

import pytest

from dissect import artifacts
from dissect.artifacts import RunDirRefused, claim_run_dir
from dissect.cli import main


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(capsys, *args):
    rc = main(["run", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_foreign_directory_is_refused_and_left_byte_identical(tmp_path, folder, capsys):
    """The files the old code overwrote (config.yaml, manifest.json, report/index.html) or
    deleted (stats/*.safetensors, report/audio/*) are all still there, unchanged, and nothing
    (not even the lock file) was added."""
    mine = tmp_path / "my-project"
    files = {"config.yaml": b"my: settings\n", "manifest.json": b'{"name": "my app"}\n',
             "report/index.html": b"<h1>my page</h1>", "report/audio/take1.wav": b"RIFF....",
             "report/assets/logo.png": b"\x89PNG", "stats/weights.safetensors": b"mine",
             "activations/x.safetensors": b"also mine", "notes.txt": b"hello"}
    for rel, data in files.items():
        (mine / rel).parent.mkdir(parents=True, exist_ok=True)
        (mine / rel).write_bytes(data)
    rc, out, err = run_cli(capsys, "probe.layout=folder", f"probe.root={folder}", "llm=rules",
                           f"run_dir={mine}")
    assert rc == 1 and out == ""
    assert str(mine) in err and "not empty and not a run directory dissect made" in err
    assert "Traceback" not in err
    assert snapshot(mine) == files


def test_root_and_home_are_refused_even_when_empty(tmp_path, folder, capsys, monkeypatch):
    with pytest.raises(RunDirRefused, match="filesystem root"):
        claim_run_dir("/")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert Path.home() == home
    with pytest.raises(RunDirRefused, match="home directory"):
        claim_run_dir(home)
    rc, _, err = run_cli(capsys, "probe.layout=folder", f"probe.root={folder}",
                         f"run_dir={home}", "stages=[probe]")
    assert rc == 1 and f"{home}: refusing to use your home directory" in err
    assert list(home.iterdir()) == []  # not a file written, not even the lock


def test_a_file_as_run_dir_is_refused_in_one_line(tmp_path, folder, capsys):
    target = tmp_path / "results.csv"
    target.write_bytes(b"a,b\n1,2\n")
    rc, _, err = run_cli(capsys, "probe.layout=folder", f"probe.root={folder}",
                         f"run_dir={target}", "stages=[probe]")
    assert rc == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"dissect: refused: {target}: exists and is not a directory; give a new or empty "
        "directory as the run directory"]
    assert target.read_bytes() == b"a,b\n1,2\n"


def test_new_empty_and_dissect_made_directories_are_accepted(tmp_path, folder, capsys):
    args = ["probe.layout=folder", f"probe.root={folder}", "stages=[probe]"]
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = run_cli(capsys, *args, f"run_dir={empty}")
    assert rc == 0 and out.strip() == str(empty), err
    assert artifacts.is_dissect_manifest(empty / artifacts.MANIFEST)
    rc, _, err = run_cli(capsys, *args, f"run_dir={empty}")  # rerun: recognised, skipped
    assert rc == 0 and "[probe] up to date, skipped" in err
    new = tmp_path / "a" / "b" / "new"
    rc, _, err = run_cli(capsys, *args, f"run_dir={new}")
    assert rc == 0 and [r["id"] for r in artifacts.read_jsonl(new / "clips.jsonl")] == ["a", "b"]


def test_a_run_that_stops_before_any_stage_is_still_recognised(tmp_path, folder, capsys):
    """``stages=[]`` writes config.yaml and the lock, and marks the directory with an empty
    manifest, so the next run into it is not refused as someone else's."""
    run_dir = tmp_path / "run"
    args = ["probe.layout=folder", f"probe.root={folder}", f"run_dir={run_dir}"]
    rc, _, err = run_cli(capsys, *args, "stages=[]")
    assert rc == 0, err
    assert json.loads((run_dir / "manifest.json").read_text()) == {"format": 1, "stages": {}}
    rc, _, err = run_cli(capsys, *args, "stages=[probe]")
    assert rc == 0 and "[probe] done" in err


def test_a_stray_user_file_in_stats_survives_a_rerun(tmp_path, folder, capsys):
    """Fewer layers: the record stage deletes its own stale per-layer files (the manifest
    lists them), never a file someone else put into stats/ or activations/."""
    run_dir = tmp_path / "run"
    base = ["probe.layout=folder", f"probe.root={folder}", f"run_dir={run_dir}",
            "record.k=2", "record.progress=false", "record.dense=true", "stages=[probe,record]"]
    rc, _, err = run_cli(capsys, *base, "model.layers=[conv5,conv6]")
    assert rc == 0, err
    stray = {"stats/mine.safetensors": b"user data", "stats/notes.txt": b"keep me",
             "activations/conv4.safetensors": b"not dissect's"}
    for rel, data in stray.items():
        (run_dir / rel).write_bytes(data)
    rc, _, err = run_cli(capsys, *base, "model.layers=[conv6]")
    assert rc == 0 and "[record] done" in err, err
    assert sorted(p.name for p in (run_dir / "stats").iterdir()) == [
        "conv6.safetensors", "mine.safetensors", "notes.txt"]
    assert sorted(p.name for p in (run_dir / "activations").iterdir()) == [
        "conv4.safetensors", "conv6.safetensors"]
    for rel, data in stray.items():
        assert (run_dir / rel).read_bytes() == data
