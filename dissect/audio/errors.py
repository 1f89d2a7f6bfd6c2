"""Errors for bad audio input.

Every error names the file and the problem. Catch :class:`AudioError` to handle all of them;
the subclasses tell the cases apart (a dataset loader records them as skips).
"""

from __future__ import annotations

from pathlib import Path


class AudioError(Exception):
    """Base class: a file could not be turned into a usable waveform.

    Attributes:
        path: the offending file.
        problem: a short human-readable description of what is wrong.
        kind: a stable machine-readable tag (``missing``, ``unreadable``, ``empty``,
            ``non_finite``, ``unsupported_format``, ``too_short``), used in ``skips.jsonl``.
    """

    kind = "audio_error"

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class AudioMissingError(AudioError, FileNotFoundError):
    """The file does not exist (or is not a regular file)."""

    kind = "missing"


class AudioUnreadableError(AudioError):
    """The file exists and has a supported extension, but cannot be decoded (corrupt bytes)."""

    kind = "unreadable"


class AudioEmptyError(AudioError):
    """The file decodes to zero samples (or is a 0-byte file)."""

    kind = "empty"


class AudioNonFiniteError(AudioError):
    """The decoded samples contain NaN or +/-Inf."""

    kind = "non_finite"


class AudioFormatError(AudioError):
    """The container/codec is not one that soundfile (libsndfile) can read on this machine."""

    kind = "unsupported_format"


class AudioTooShortError(AudioError):
    """The file is shorter than the policy's ``min_seconds`` (a probe set skips it)."""

    kind = "too_short"
