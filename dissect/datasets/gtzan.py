"""The ``gtzan`` layout: GTZAN genre collection (Tzanetakis & Cook 2002), 10 genres x 100 clips.

Expected tree (the original ``genres/`` with ``.au`` files, the Kaggle ``genres_original/`` with
``.wav`` files, or a root that directly holds the genre directories)::

    genres/<genre>/<genre>.<nnnnn>.<ext>
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.errors import ProbeSetError, require_dir
from dissect.datasets.folder import scan_audio_files


def load_gtzan(root: str | Path) -> ProbeSet:
    """Read GTZAN from ``root``.

    The genre directory is ``root/genres``, else ``root/genres_original``, else ``root`` itself.
    Each non-hidden subdirectory holding audio files is a genre (files directly inside it; not
    recursive). Clips: id = ``"<genre>/<stem>"`` (``"blues/blues.00000"``), sorted by id.
    Label: ``genre`` (str, the directory name).

    Raises:
        ProbeSetError: root missing, or no genre directory with audio files.
    """
    root = require_dir(root)
    base = next((root / d for d in ("genres", "genres_original") if (root / d).is_dir()), root)
    clips = []
    for genre_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for rel in scan_audio_files(genre_dir, recursive=False):
            clips.append(
                Clip(
                    id=f"{genre_dir.name}/{PurePosixPath(rel).stem}",
                    path=genre_dir / rel,
                    labels={"genre": genre_dir.name},
                )
            )
    if not clips:
        raise ProbeSetError(base, "no GTZAN genre directories with audio files found")
    clips.sort(key=lambda c: c.id)
    return ProbeSet("gtzan", root, clips, ["genre"])
