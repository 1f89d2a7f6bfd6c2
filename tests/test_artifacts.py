"""dissect.artifacts: manifest semantics (skip / rerun) and atomic writes under crashes."""

import json
import subprocess
import sys
import textwrap

import pytest

from dissect import artifacts
from dissect.artifacts import Manifest, atomic_open, hash_file, run_stage, write_text


class Counter:
    """A stage function that writes ``out.txt`` from its input file and counts its calls."""

    def __init__(self, src):
        self.src, self.calls = src, 0

    def __call__(self, run_dir):
        self.calls += 1
        write_text(run_dir / "out.txt", self.src.read_text().upper())
        return {"n": self.calls}


@pytest.fixture
def setup(tmp_path):
    src = tmp_path / "input.txt"
    src.write_text("hello")
    run = tmp_path / "run"
    return src, run, Counter(src)


def go(run, src, fn, config=None, **kw):
    return run_stage(run, "stage", config or {"a": 1}, {"src": hash_file(src)}, ["out.txt"], fn,
                     log=lambda s: None, **kw)


def test_skipped_when_nothing_changed(setup):
    src, run, fn = setup
    assert not go(run, src, fn).skipped
    r = go(run, src, fn)
    assert r.skipped and fn.calls == 1 and r.info == {"n": 1}
    entry = Manifest(run).stages["stage"]
    assert entry["status"] == "done" and entry["outputs"]["out.txt"] == hash_file(run / "out.txt")
    assert entry["versions"]["torch"].startswith("2.9.1") and entry["seconds"] >= 0


def test_reruns_when_config_changes(setup):
    src, run, fn = setup
    go(run, src, fn, {"a": 1})
    assert not go(run, src, fn, {"a": 2}).skipped and fn.calls == 2
    assert go(run, src, fn, {"a": 2}).skipped and fn.calls == 2


def test_reruns_when_input_changes(setup):
    src, run, fn = setup
    go(run, src, fn)
    src.write_text("changed")
    assert not go(run, src, fn).skipped and fn.calls == 2
    assert (run / "out.txt").read_text() == "CHANGED"


def test_existing_file_alone_never_counts(setup):
    src, run, fn = setup
    go(run, src, fn)
    # the output edited behind the manifest's back: hash mismatch -> rerun
    (run / "out.txt").write_text("tampered")
    assert not go(run, src, fn).skipped and fn.calls == 2
    # a manifest without this stage (e.g. deleted) -> rerun although out.txt exists
    (run / "manifest.json").unlink()
    assert not go(run, src, fn).skipped and fn.calls == 3


def test_force_reruns(setup):
    src, run, fn = setup
    go(run, src, fn)
    assert not go(run, src, fn, force=True).skipped and fn.calls == 2


def test_failed_stage_is_recorded_and_reruns(setup):
    src, run, fn = setup
    go(run, src, fn)
    before = (run / "out.txt").read_text()

    def crash(run_dir):
        with atomic_open(run_dir / "out.txt") as fh:
            fh.write("half-writ")
            raise KeyboardInterrupt  # a kill between two writes

    with pytest.raises(KeyboardInterrupt):
        go(run, src, crash, {"a": 2})
    assert (run / "out.txt").read_text() == before  # previous artifact intact
    entry = Manifest(run).stages["stage"]
    assert entry["status"] == "failed" and "KeyboardInterrupt" in entry["error"]
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert not go(run, src, fn, {"a": 2}).skipped  # failed -> reruns


def test_missing_output_is_an_error(setup):
    src, run, _ = setup
    with pytest.raises(RuntimeError, match="did not write its outputs"):
        go(run, src, lambda d: None)
    assert Manifest(run).stages["stage"]["status"] == "failed"


def test_sigkill_mid_write_leaves_previous_artifact(tmp_path):
    target = tmp_path / "stats.bin"
    target.write_bytes(b"previous complete artifact")
    code = textwrap.dedent(f"""
        import os, signal
        from dissect.artifacts import atomic_open
        with atomic_open({str(target)!r}, "wb") as fh:
            fh.write(b"x" * 100000)
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    assert target.read_bytes() == b"previous complete artifact"


def test_corrupt_manifest_names_the_file(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json: corrupt manifest"):
        Manifest(tmp_path)


@pytest.mark.parametrize("data, what", [
    ('{"stages": {"probe": "x"}}', "stage 'probe' is str, not an object"),
    ('[1, 2]', "top level is list, not an object"),
    ('{"stages": []}', "'stages' is list, not an object"),
    ('{"stages": {"record": {"status": "done", "outputs": ["a"]}}}',
     "stage 'record': 'outputs' is list, not an object"),
    ('{"stages": {"record": {"status": 3}}}', "stage 'record': 'status' is not a string"),
])
def test_badly_shaped_manifest_is_a_clear_error(tmp_path, data, what):
    (tmp_path / "manifest.json").write_text(data)
    with pytest.raises(ValueError) as err:
        Manifest(tmp_path)
    msg = str(err.value)
    assert "manifest.json: malformed manifest" in msg and what in msg and "delete it" in msg


def test_hashes_are_canonical(tmp_path):
    hc = artifacts.hash_config
    assert hc({"a": 1, "b": [1, 2]}) == hc({"b": [1, 2], "a": 1})
    assert artifacts.hash_config({"a": 1}) != artifacts.hash_config({"a": 2})
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    b.write_text("y")
    h = artifacts.hash_files([a, b])
    assert h != artifacts.hash_files([b, a])
    b.write_text("z")
    assert h != artifacts.hash_files([a, b])


def test_jsonl_round_trip_and_errors(tmp_path):
    p = tmp_path / "rows.jsonl"
    assert artifacts.write_jsonl(p, [{"id": "a", "v": 1}, {"id": "b", "v": 2}]) == 2
    assert artifacts.read_jsonl(p) == [{"id": "a", "v": 1}, {"id": "b", "v": 2}]
    with pytest.raises(ValueError):
        artifacts.write_jsonl(p, [{"v": float("nan")}])
    assert json.loads(p.read_text().splitlines()[1]) == {"id": "b", "v": 2}  # untouched
    p.write_text('{"ok": 1}\n{broken\n')
    with pytest.raises(ValueError, match="rows.jsonl:2"):
        artifacts.read_jsonl(p)


def test_journal_survives_a_kill_and_ignores_a_torn_line(tmp_path):
    path = tmp_path / "captions.journal.jsonl"
    j = artifacts.Journal(path, sync_every=1)
    j.append({"clip": "a", "text": "one"})
    j.append({"clip": "b", "text": "two"})
    j.close()
    with open(path, "a") as fh:
        fh.write('{"clip": "c", "te')  # killed mid-append
    j2 = artifacts.Journal(path)
    assert j2.rows() == [{"clip": "a", "text": "one"}, {"clip": "b", "text": "two"}]
    j2.append({"clip": "c", "text": "three"})  # the resumed run goes on after the torn line
    j2.close()
    assert j2.rows()[-1] == {"clip": "c", "text": "three"} and len(j2.rows()) == 3
    j2.discard()
    assert not path.exists() and artifacts.Journal(path).rows() == []


class LayerFiles:
    """A stage function that writes ``stats/<name>.safetensors`` for each name in ``names``
    (lists them under ``_outputs``) and then removes its stale ones, as the record stage does;
    with ``fail`` it raises after writing."""

    def __init__(self, names, fail=False):
        self.names, self.fail = names, fail

    def __call__(self, run_dir):
        outs = []
        for n in self.names:
            write_text(run_dir / "stats" / f"{n}.safetensors", f"stats of {n}")
            outs.append(f"stats/{n}.safetensors")
        if self.fail:
            raise RuntimeError("killed")
        artifacts.remove_stale_outputs(run_dir, "record", outs, under=("stats",))
        return {"_outputs": outs}


def record(run, names, fail=False):
    return run_stage(run, "record", {"layers": names}, {}, [], LayerFiles(names, fail),
                     log=lambda s: None)


def test_stale_removal_deletes_only_what_the_manifest_lists(tmp_path):
    """A rerun with fewer layers deletes the earlier run's stale files; a file someone else put
    into stats/, and a manifest entry pointing out of the run directory, are left alone; the
    list survives a failed run in between."""
    run = tmp_path / "run"
    record(run, ["a", "b", "c"])
    user = {"stats/mine.safetensors": b"user", "stats/sub/deep.safetensors": b"user too"}
    for rel, data in user.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data)
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"outside")
    with pytest.raises(RuntimeError):  # a failed run still knows a, b, c were dissect's
        record(run, ["a"], fail=True)
    entry = Manifest(run).stages["record"]
    assert entry["status"] == "failed"
    assert sorted(entry["previous_outputs"]) == [f"stats/{n}.safetensors" for n in "abc"]
    m = Manifest(run)  # an edited manifest: a listed path climbing out of the run directory
    m.stages["record"]["previous_outputs"]["stats/../../outside.safetensors"] = "x"
    m.save()
    record(run, ["a"])
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*.safetensors")) == [
        "stats/a.safetensors", "stats/mine.safetensors", "stats/sub/deep.safetensors"]
    assert all((run / rel).read_bytes() == data for rel, data in user.items())
    assert outside.read_bytes() == b"outside"
    entry = Manifest(run).stages["record"]
    assert "previous_outputs" not in entry and list(entry["outputs"]) == ["stats/a.safetensors"]


def test_layer_names_must_be_plain(tmp_path):
    """Layer names become file names: dotted module names pass, paths do not."""
    for ok in ("encoder.layers.3.fc1", "conv6", "blocks.0.attn-out", "sae:conv6", "layer_1"):
        assert artifacts.layer_file(tmp_path, "stats", ok) == \
            tmp_path / "stats" / f"{ok}.safetensors"
    for bad in ("../../../etc/passwd", "a/b", "/etc/passwd", "..", "a..b", "x\0y", "",
                "a\\b", ".hidden"):
        with pytest.raises(ValueError, match="not a plain layer name"):
            artifacts.layer_file(tmp_path, "stats", bad)
