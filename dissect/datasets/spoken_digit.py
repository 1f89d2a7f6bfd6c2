"""The ``spoken_digit`` layout: files named ``{digit}_{speaker}_{index}.<ext>``.

This is the naming of the Free Spoken Digit Dataset (FSDD, ``recordings/0_jackson_0.wav``) and
of datasets built the same way.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from dissect.datasets.base import Clip, ProbeSet
from dissect.datasets.errors import ProbeSetError, require_dir
from dissect.datasets.folder import scan_audio_files, strip_extension

# digit 0-9, speaker without underscores, take index.
NAME_PATTERN = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[^_]+)_(?P<index>[0-9]+)$")


def load_spoken_digit(root: str | Path) -> ProbeSet:
    """Read every ``{digit}_{speaker}_{index}`` audio file under ``root`` (recursive).

    Clips: id = path relative to ``root`` without extension (``"recordings/0_jackson_0"``), sorted
    by ``(digit, speaker, index, id)`` so takes come in numeric order. Labels: ``digit`` (int),
    ``speaker`` (str). Metadata: ``index`` (int).

    The layout is strict: an audio file whose name does not match the pattern is an error, not a
    silently unlabelled clip (point ``root`` at the recordings directory to leave others out).

    Raises:
        ProbeSetError: root missing; no audio files; any file not matching the pattern (the
            message lists up to 5 offenders and their count).
    """
    root = require_dir(root)
    files = scan_audio_files(root)
    if not files:
        raise ProbeSetError(root, "no audio files found")
    keyed = []
    bad = []
    for rel in files:
        m = NAME_PATTERN.match(PurePosixPath(rel).stem)
        if m is None:
            bad.append(rel)
            continue
        digit, speaker, index = int(m["digit"]), m["speaker"], int(m["index"])
        clip = Clip(
            id=strip_extension(rel),
            path=root / rel,
            labels={"digit": digit, "speaker": speaker},
            # the label is the digit: one speaker's takes stay in one split
            metadata={"index": index, "group": f"speaker:{speaker}"},
        )
        keyed.append(((digit, speaker, index, clip.id), clip))
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise ProbeSetError(
            root,
            f"{len(bad)} audio file(s) not named {{digit}}_{{speaker}}_{{index}}: {shown}",
        )
    keyed.sort(key=lambda kc: kc[0])
    return ProbeSet("spoken_digit", root, [c for _, c in keyed], ["digit", "speaker"])
