"""``espeak-ng`` for the rendered probe sets (``synth`` speech clips, ``espeak_digits``): find
the program, read its version, and speak one text into a mono float waveform.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

INSTALL_HINT = (
    "install it with `apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng`"
)


def find_espeak() -> str | None:
    """The espeak-ng program on ``PATH``, or None."""
    return shutil.which("espeak-ng")


@lru_cache(maxsize=4)
def espeak_version(exe: str) -> str:
    """The version of the espeak-ng at ``exe``, e.g. ``1.51``."""
    out = subprocess.run([exe, "--version"], check=True, capture_output=True, text=True,
                         timeout=60).stdout  # fmt: skip
    m = re.search(r"text-to-speech:\s*(\S+)", out)
    return m.group(1) if m else out.split("Data at")[0].strip()


def read_mono(path: str | Path, sr: int) -> np.ndarray:
    """An audio file mixed to mono and resampled to ``sr`` (float64)."""
    import soundfile as sf

    from dissect.audio.load import resample

    data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(data.mean(axis=1).astype(np.float32), int(file_sr), sr).astype(np.float64)


def speak(exe: str, text: str, voice: str, wpm: int, pitch: int, sr: int, what: str) -> np.ndarray:
    """``espeak-ng -v voice -s wpm -p pitch -w out.wav text``, read back with :func:`read_mono`.

    Raises:
        RuntimeError: espeak-ng failed (``what`` names the clip in the message).
    """
    with tempfile.TemporaryDirectory(prefix="dissect-espeak-") as tmp:
        out = os.path.join(tmp, "speech.wav")
        cmd = [exe, "-v", str(voice), "-s", str(wpm), "-p", str(pitch), "-w", out, str(text)]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            raise RuntimeError(
                f"espeak-ng failed for {what}: {exc} {err.decode(errors='replace')[:200]}"
            ) from exc
        return read_mono(out, sr)
