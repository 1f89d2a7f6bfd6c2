"""Errors for probe-set layouts, and the small checks every layout parser shares.

A layout parser fails early, before any audio is decoded, when the dataset's *structure* is wrong
(no root, no metadata file, a missing column, malformed CSV/JSON, no audio at all). Every message
names the offending file or directory and the problem. Problems with single audio files are not
layout errors: they surface later as :class:`~dissect.audio.AudioError` and are recorded as skips.
"""

from __future__ import annotations

from pathlib import Path

from dissect.audio.errors import AudioError


class ProbeSetError(ValueError):
    """A dataset directory does not have the structure its layout expects.

    Attributes:
        path: the offending file or directory.
        problem: a short human-readable description of what is wrong.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def require_dir(path: str | Path, what: str = "dataset root") -> Path:
    """Return ``path`` as a :class:`Path`; raise :class:`ProbeSetError` unless it is a directory."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ProbeSetError(path, f"{what} not found")
    if not path.is_dir():
        raise ProbeSetError(path, f"{what} is not a directory")
    return path


def require_file(path: str | Path, what: str = "metadata file") -> Path:
    """Return ``path`` as a :class:`Path`; raise :class:`ProbeSetError` unless it is a file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ProbeSetError(path, f"{what} not found")
    if not path.is_file():
        raise ProbeSetError(path, f"{what} is not a regular file")
    return path


class PathOutsideRootError(AudioError):
    """A clip's file lies outside its probe root once symlinks are resolved (a metadata row
    that reaches out through a symlinked directory). It is refused like a bad audio file: the
    probe stage records it in ``skips.jsonl`` (kind ``outside_root``) and goes on."""

    kind = "outside_root"
