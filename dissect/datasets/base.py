"""The probe-set interface: a deterministic, ordered list of :class:`Clip` records.

Every layout (folder, ESC-50, UrbanSound8K, GTZAN, spoken digits, HEAR task dirs, synth) builds a
:class:`ProbeSet`. Audio is loaded lazily, one clip at a time, through
:func:`dissect.audio.load_audio`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dissect.audio import Audio, AudioError, ClipPolicy, load_audio
from dissect.audio.errors import AudioTooShortError
from dissect.datasets.errors import PathOutsideRootError
from dissect.limits import cut_labels


@dataclass(frozen=True)
class Clip:
    """One probe clip.

    Attributes:
        id: stable identifier, unique within its probe set (e.g. the path relative to the dataset
            root without extension, or ``"1-100032-A-0"`` for ESC-50).
        path: the audio file.
        labels: dataset labels, e.g. ``{"category": "dog"}``; values are str/int/float or lists.
        concepts: ground-truth concepts where known (synth: family, midi_note, f0_hz, ...);
            empty for datasets that only have labels.
        metadata: anything else (fold, split, source row), JSON-serialisable.
        root: when set, the directory the clip's file must stay inside: :meth:`load` refuses a
            path whose directory resolves (symlinks followed) outside the resolved root. The
            folder layout sets it, so a metadata row cannot reach out of the probe root
            through a symlinked directory inside it. Not written to ``clips.jsonl``.
    """

    id: str
    path: Path
    labels: dict[str, Any] = field(default_factory=dict)
    concepts: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    root: Path | None = field(default=None, compare=False)

    def load(self, sample_rate: int | None = None, policy: ClipPolicy | None = None) -> Audio:
        """Decode this clip (see :func:`dissect.audio.load_audio`).

        Raises:
            PathOutsideRootError: (an ``AudioError``) the file's directory resolves outside
                :attr:`root`.
            AudioError: the file cannot be decoded.
        """
        if self.root is not None:
            check_inside_root(self.path, self.root)
        return load_audio(self.path, sample_rate, policy)

    def to_record(self) -> dict[str, Any]:
        """JSON-serialisable row for ``clips.jsonl``."""
        return {
            "id": self.id,
            "path": str(self.path),
            "labels": self.labels,
            "concepts": self.concepts,
            "metadata": self.metadata,
        }


def check_inside_root(path: Path, root: Path) -> None:
    """Raise :class:`PathOutsideRootError` unless ``path``'s directory, with every symlink
    resolved, is ``root`` (resolved) or below it.

    Only the directory is resolved: a symlinked *file* inside the root is kept, as the folder
    scan keeps it (:func:`~dissect.datasets.folder.scan_audio_files`), while a symlinked
    *directory*, which the scan never follows, cannot carry a path out of the root.
    """
    real_root = Path(root).resolve()
    real_dir = Path(path).parent.resolve()
    if real_dir != real_root and real_root not in real_dir.parents:
        raise PathOutsideRootError(
            path, f"its directory resolves to {real_dir}, outside the probe root {real_root} "
                  "(through a symlinked directory); refused")


class DuplicateClipIdError(ValueError):
    """Two clips of one probe set share an id."""


@dataclass
class ProbeSet:
    """An ordered collection of clips.

    Attributes:
        name: layout name (``"esc50"``, ``"synth"``, ...).
        root: dataset root directory.
        clips: clips in a deterministic order (sorted by id unless the layout defines its own).
        label_columns: the label keys every clip carries (for label captioners and metrics).
    """

    name: str
    root: Path
    clips: list[Clip]
    label_columns: list[str] = field(default_factory=list)

    def __post_init__(self):
        # the length limit on label text (dissect.limits): layouts that read a table cut
        # there and name the row; this catches any other layout's overlong values
        for i, c in enumerate(self.clips):
            where = f"{self.name} probe set at {self.root}, clip {c.id!r}"
            labels, metadata = cut_labels(c.labels, where), cut_labels(c.metadata, where)
            if labels is not c.labels or metadata is not c.metadata:
                self.clips[i] = dataclasses.replace(c, labels=labels, metadata=metadata)
        seen: dict[str, Path] = {}
        for c in self.clips:
            if c.id in seen:
                raise DuplicateClipIdError(
                    f"probe set {self.name!r}: clip id {c.id!r} is used by both "
                    f"{seen[c.id]} and {c.path}"
                )
            seen[c.id] = c.path

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[Clip]:
        return iter(self.clips)

    def __getitem__(self, i: int) -> Clip:
        return self.clips[i]

    def split_holdout(self, fraction: float, seed: int = 0) -> tuple[ProbeSet, ProbeSet]:
        """``(kept, held)``: the clips :func:`held_out` keeps for the dissection and the ones
        it holds out (e.g. to evaluate pruning on clips no description saw). Order is kept."""
        mask = held_out([c.id for c in self.clips], fraction, seed)
        keep = [c for c, h in zip(self.clips, mask, strict=True) if not h]
        held = [c for c, h in zip(self.clips, mask, strict=True) if h]
        return (ProbeSet(self.name, self.root, keep, list(self.label_columns)),
                ProbeSet(self.name, self.root, held, list(self.label_columns)))

    def subset(self, n: int | None) -> ProbeSet:
        """The first ``n`` clips (all when ``n`` is None)."""
        if n is None or n >= len(self.clips):
            return self
        return ProbeSet(self.name, self.root, self.clips[:n], list(self.label_columns))

    def iter_audio(
        self,
        sample_rate: int | None,
        policy: ClipPolicy | None,
        skips: SkipLog,
    ) -> Iterator[tuple[Clip, Audio]]:
        """Yield ``(clip, audio)`` for each loadable clip; bad clips go to ``skips``.

        A file shorter than ``policy.min_seconds`` (before any crop) is a skip of kind
        ``too_short``: a one-sample clip would otherwise be pooled from padding and can top
        hundreds of neurons.

        Raises:
            TooManySkipsError: as soon as the skipped fraction can no longer stay within
                ``skips.max_fraction`` of the whole set.
        """
        skips.total = len(self.clips)
        min_seconds = (policy or ClipPolicy()).min_seconds
        for clip in self.clips:
            try:
                audio = clip.load(sample_rate, policy)
                if audio.source_seconds < min_seconds:
                    n = round(audio.source_seconds * audio.source_sample_rate)
                    raise AudioTooShortError(
                        clip.path, f"too short: {audio.source_seconds:.4g} s ({n} sample"
                                   f"{'s' if n != 1 else ''}), less than the minimum "
                                   f"{min_seconds:g} s (min_seconds)")
            except AudioError as exc:
                skips.record(clip, exc)
                skips.check(final=False)
                continue
            yield clip, audio
        skips.check(final=True)


class TooManySkipsError(RuntimeError):
    """More clips failed to load than the configured ``max_skip_fraction`` allows."""


@dataclass
class SkipLog:
    """Collects clips that failed to load, as rows for ``skips.jsonl``.

    Attributes:
        max_fraction: the run fails when more than this fraction of ``total`` clips is skipped.
        total: number of clips in the probe set (set by :meth:`ProbeSet.iter_audio`).
        rows: one dict per skipped clip: ``id``, ``path``, ``kind``, ``error``.
    """

    max_fraction: float = 0.05
    total: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    def record(self, clip: Clip, exc: AudioError) -> None:
        self.rows.append(
            {"id": clip.id, "path": str(clip.path), "kind": exc.kind, "error": str(exc)}
        )

    def summary(self) -> str:
        """One line, e.g. ``skipped 2 of 300 clips (0.7%): 1 empty, 1 unreadable``."""
        if not self.rows:
            return f"skipped 0 of {self.total} clips"
        kinds: dict[str, int] = {}
        for r in self.rows:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        parts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        pct = 100.0 * len(self.rows) / max(self.total, 1)
        return f"skipped {len(self.rows)} of {self.total} clips ({pct:.1f}%): {parts}"

    def check(self, final: bool = True) -> None:
        """Raise :class:`TooManySkipsError` when the skip budget is exceeded.

        With ``final=False`` it raises only once the budget is already certainly exceeded, so a
        hopeless run stops early.
        """
        limit = self.max_fraction * max(self.total, 1)
        if len(self.rows) > limit:
            examples = "; ".join(r["error"] for r in self.rows[:3])
            raise TooManySkipsError(
                f"{self.summary()} exceeds max_skip_fraction={self.max_fraction}. "
                f"First errors: {examples}"
            )


def held_out(clip_ids: Sequence[str], fraction: float = 0.3, seed: int = 0) -> np.ndarray:
    """Bool ``[N]``: True for held-out clips.

    A clip is held out when the first 8 bytes of ``sha256(f"{seed}:{id}")``, read as a number in
    [0, 1), are below ``fraction``; the split is deterministic and order independent (a clip's
    side never depends on the other clips).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1], got {fraction}")
    out = np.zeros(len(clip_ids), dtype=bool)
    for i, cid in enumerate(clip_ids):
        h = hashlib.sha256(f"{seed}:{cid}".encode()).digest()
        out[i] = int.from_bytes(h[:8], "big") / 2.0**64 < fraction
    return out
