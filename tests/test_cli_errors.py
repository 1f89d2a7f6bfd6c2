"""Expected failures of the ``dissect`` command are one line on stderr naming the path and the
problem, exit code 1, never a traceback (``DISSECT_DEBUG=1`` shows it)."""

import errno
import os

import pytest
from safetensors import SafetensorError

from dissect import artifacts
from dissect.cli import main


def disk_full(*args, **kwargs):
    """``artifacts.write_jsonl`` on a full disk: the error the OS gives, with the file."""
    path = args[0]
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def failure_line(capsys, *args):
    """Run ``dissect run ARGS``: ``(exit code, the lines of stderr that come from the CLI's
    error handler, the whole of stderr)``."""
    rc = main(["run", *args])
    err = capsys.readouterr().err
    return rc, [ln for ln in err.splitlines() if ln.startswith("dissect:")], err


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, folder, capsys, monkeypatch):
    monkeypatch.setattr(artifacts, "write_jsonl", disk_full)
    run_dir = tmp_path / "run"
    rc, lines, err = failure_line(capsys, "probe.layout=folder", f"probe.root={folder}",
                                  f"run_dir={run_dir}", "stages=[probe]")
    assert rc == 1 and "Traceback" not in err
    assert lines == [f"dissect: failed: [Errno 28] No space left on device: "
                     f"'{run_dir / 'skips.jsonl'}'"]
    assert err.rstrip().splitlines()[-1] == lines[0]  # the last thing said


def test_a_full_disk_in_safetensors_names_the_stats_file(tmp_path, folder, capsys,
                                                         monkeypatch):
    """safetensors reports a full disk without the file; the stats writer names it."""
    from dissect.recording import store

    def save_file(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: '
                              'StorageFull, message: "No space left on device" })')

    monkeypatch.setattr(store, "save_file", save_file)
    run_dir = tmp_path / "run"
    rc, lines, err = failure_line(capsys, "probe.layout=folder", f"probe.root={folder}",
                                  f"run_dir={run_dir}", "stages=[probe,record]",
                                  "model.layers=[conv6]", "record.progress=false")
    assert rc == 1 and "Traceback" not in err
    want = run_dir / "stats" / "conv6.safetensors"
    assert lines == [f"dissect: failed: [Errno 28] No space left on device: '{want}'"]


@pytest.mark.parametrize("exc", [
    PermissionError(errno.EACCES, "Permission denied", "/data/run/clips.jsonl"),
    IsADirectoryError(errno.EISDIR, "Is a directory", "/data/run/clips.jsonl"),
    NotADirectoryError(errno.ENOTDIR, "Not a directory", "/data/run/clips.jsonl"),
    SafetensorError("Error while deserializing header: header too large"),
])
def test_os_and_safetensors_errors_are_one_line(tmp_path, folder, capsys, monkeypatch, exc):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(artifacts, "write_jsonl", fail)
    rc, lines, err = failure_line(capsys, "probe.layout=folder", f"probe.root={folder}",
                                  f"run_dir={tmp_path / 'run'}", "stages=[probe]")
    assert rc == 1 and "Traceback" not in err and len(lines) == 1
    if isinstance(exc, OSError):
        assert lines[0] == f"dissect: failed: {exc}" and "/data/run/clips.jsonl" in lines[0]
    else:
        assert lines[0] == f"dissect: failed: safetensors: {exc}"


def test_debug_env_shows_the_traceback(tmp_path, folder, capsys, monkeypatch):
    monkeypatch.setattr(artifacts, "write_jsonl", disk_full)
    monkeypatch.setenv("DISSECT_DEBUG", "1")
    with pytest.raises(OSError) as info:
        main(["run", "probe.layout=folder", f"probe.root={folder}",
              f"run_dir={tmp_path / 'run'}", "stages=[probe]"])
    assert info.value.errno == errno.ENOSPC


def test_a_bug_keeps_its_traceback(tmp_path, folder, monkeypatch):
    """Only expected failures are turned into a line: a programming error propagates."""
    def bug(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(artifacts, "write_jsonl", bug)
    with pytest.raises(KeyError):
        main(["run", "probe.layout=folder", f"probe.root={folder}",
              f"run_dir={tmp_path / 'run'}", "stages=[probe]"])
