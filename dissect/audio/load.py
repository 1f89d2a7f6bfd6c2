"""Decode one audio file into a mono float32 waveform at a target sample rate.

Rules (documented here because every model adapter relies on them):

* **Decoding** is done by soundfile (libsndfile): WAV, FLAC, OGG/Vorbis/Opus, AIFF, AU, CAF, W64,
  and MP3 where the installed libsndfile supports it (>= 1.1). Anything else raises
  :class:`~dissect.audio.errors.AudioFormatError`.
* **Mono mixdown**: the unweighted arithmetic mean of all channels, ``x = mean_c x_c``. This keeps
  the level of a centred (identical-channel) source unchanged and never clips.
* **Resampling**: ``torchaudio.functional.resample`` (windowed-sinc, Hann, 6 zero crossings),
  applied after mixdown, only when the file's rate differs from the requested one.
* **Long clips** (:class:`ClipPolicy`): with ``long_clip="crop"`` a clip longer than
  ``max_seconds`` is cropped to ``max_seconds`` at its start or its centre (only the needed frames
  are read, so a 10-hour file costs no more than ``max_seconds``). With ``long_clip="windows"`` the
  whole clip is returned (decoded block by block into one mono array, never as a whole
  multichannel array) and the recorder takes its fixed windows lazily
  (:func:`dissect.audio.batch.window_starts`), a batch at a time.
* **Padding** never happens here; batching pads with zeros and returns a valid-length mask
  (:func:`dissect.audio.batch.pad_batch`).
* **Digital silence** is flagged (``Audio.is_silent``), never fatal: a model still gets the clip,
  and downstream stages can choose to ignore it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from dissect.audio.errors import (
    AudioEmptyError,
    AudioFormatError,
    AudioMissingError,
    AudioNonFiniteError,
    AudioUnreadableError,
)
from dissect.fields import POSITIVE, Range, check, option

# File extension -> libsndfile major format name (as in ``soundfile.available_formats()``).
_EXTENSION_FORMATS = {
    "wav": "WAV",
    "wave": "WAV",
    "flac": "FLAC",
    "ogg": "OGG",
    "oga": "OGG",
    "opus": "OGG",
    "mp3": "MP3",
    "aif": "AIFF",
    "aiff": "AIFF",
    "aifc": "AIFF",
    "au": "AU",
    "snd": "AU",
    "caf": "CAF",
    "w64": "W64",
    "rf64": "RF64",
}


#: Frames decoded per block: the file is read and mixed down block by block into one mono
#: array, so a long multichannel file never exists as a whole ``[n, channels]`` array.
BLOCK_FRAMES = 1 << 18


@lru_cache(maxsize=1)
def supported_extensions() -> frozenset[str]:
    """File extensions (lower case, no dot) that soundfile can decode on this machine."""
    formats = set(sf.available_formats())
    return frozenset(ext for ext, fmt in _EXTENSION_FORMATS.items() if fmt in formats)


@dataclass
class ClipPolicy:
    """How clips are decoded and cut before they reach a model (the ``audio`` section of a run
    config, :data:`dissect.config.AudioConfig`)."""

    max_seconds: float | None = option(10.0, Range(0, low_open=True, none_ok=True))
    """Longest clip kept whole, in seconds; null keeps every clip whole."""
    long_clip: str = option("crop", ("crop", "windows"))
    """Policy for clips longer than max_seconds: crop (keep one max_seconds excerpt) or windows
    (keep all audio, cut into fixed windows, :func:`~dissect.audio.batch.split_windows`)."""
    crop_anchor: str = option("start", ("start", "center"))
    """Where the crop excerpt sits in a long clip."""
    window_seconds: float = option(10.0, POSITIVE)
    """Window length in seconds for long_clip=windows."""
    window_hop_seconds: float = option(10.0, POSITIVE)
    """Hop between window starts in seconds for long_clip=windows."""
    silence_dbfs: float = -80.0
    """Peak level (dB re full scale) under which a clip is flagged as digital silence (flagged,
    never fatal)."""
    min_seconds: float = option(0.025, Range(0))
    """Shortest file kept, in seconds (before any crop); shorter files are recorded skips of
    kind too_short (a probe set's iter_audio). The default, 25 ms, is one analysis window of the
    usual front ends (a 400-sample STFT window at 16 kHz): below it no frame sees a full window
    of real audio. 0 keeps every non-empty file. load_audio itself decodes any non-empty file."""
    sample_rate: int = option(16000, Range(1, integer=True))
    """Rate in Hz at which the probe stage decodes each clip to check it (length, silence); the
    record and caption stages decode at their model's or captioner's own rate."""

    def __post_init__(self) -> None:
        check(type(self), self, "audio.")

    @classmethod
    def from_config(cls, audio: Any) -> ClipPolicy:
        """The policy of an ``audio`` config section (``AudioConfig``, a DictConfig or a plain
        mapping read back from ``config.yaml``); keys it does not know (``sample_rate``) and
        missing keys (defaults) are fine."""
        names = [f.name for f in fields(cls)]
        if isinstance(audio, Mapping):
            given = {k: audio[k] for k in names if k in audio}
        else:
            given = {k: getattr(audio, k) for k in names if hasattr(audio, k)}
        return cls(**given)

    def windows(self) -> tuple[float, float] | None:
        """``(window_s, hop_s)`` when long clips are cut into windows, else None."""
        if self.long_clip == "windows":
            return (self.window_seconds, self.window_hop_seconds)
        return None


@dataclass
class Audio:
    """A decoded clip.

    Attributes:
        waveform: mono samples, float32, shape ``[n_samples]``, nominally in [-1, 1].
        sample_rate: rate of ``waveform`` in Hz.
        path: the source file.
        source_sample_rate: the file's own rate in Hz.
        source_channels: channel count in the file (before mixdown).
        source_seconds: full duration of the file in seconds (before any crop).
        offset_seconds: where ``waveform`` starts inside the file, in seconds (non-zero after a
            centre crop).
        cropped: whether the long-clip policy cut the clip.
        peak_dbfs: peak level in dB re full scale (``-inf`` for all-zero audio).
        rms_dbfs: RMS level in dB re full scale (``-inf`` for all-zero audio).
        is_silent: ``peak_dbfs`` is below the policy's ``silence_dbfs`` (digital silence).
    """

    waveform: np.ndarray
    sample_rate: int
    path: Path
    source_sample_rate: int
    source_channels: int
    source_seconds: float
    offset_seconds: float
    cropped: bool
    peak_dbfs: float
    rms_dbfs: float
    is_silent: bool

    @property
    def seconds(self) -> float:
        """Duration of ``waveform`` in seconds."""
        return len(self.waveform) / self.sample_rate


def level_dbfs(x: np.ndarray) -> tuple[float, float]:
    """Return ``(peak_dbfs, rms_dbfs)`` of a waveform; ``-inf`` for all-zero input.

    Computed over blocks of :data:`BLOCK_FRAMES` samples (the squares in float64), so a long
    clip needs no full-length temporary arrays."""
    if x.size == 0:
        return -math.inf, -math.inf
    peak, total = 0.0, 0.0
    for i in range(0, x.size, BLOCK_FRAMES):
        block = x[i : i + BLOCK_FRAMES]
        peak = max(peak, float(np.max(np.abs(block))))
        total += float(np.sum(np.square(block, dtype=np.float64)))
    rms = math.sqrt(total / x.size)
    to_db = lambda v: 20.0 * math.log10(v) if v > 0 else -math.inf  # noqa: E731
    return to_db(peak), to_db(rms)


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Resample a mono float32 waveform with ``torchaudio.functional.resample``."""
    if orig_sr == new_sr:
        return x
    import torch
    import torchaudio.functional as AF

    y = AF.resample(torch.from_numpy(np.ascontiguousarray(x)), orig_sr, new_sr)
    return y.numpy().astype(np.float32, copy=False)


def _check_file(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except RuntimeError:  # Python < 3.13 raises RuntimeError on a loop
                raise AudioMissingError(path, "symlink loop") from None
            except OSError as exc:
                if exc.errno == 40:  # ELOOP
                    raise AudioMissingError(path, "symlink loop") from None
            raise AudioMissingError(path, f"broken symlink (to {os.readlink(path)})")
        raise AudioMissingError(path, "file not found")
    if not path.is_file():
        raise AudioMissingError(path, "not a regular file")
    ext = path.suffix.lower().lstrip(".")
    if ext not in supported_extensions():
        known = ", ".join(sorted(supported_extensions()))
        raise AudioFormatError(
            path,
            f"unsupported format '.{ext}' (soundfile {sf.__libsndfile_version__} reads: {known})",
        )
    if path.stat().st_size == 0:
        raise AudioEmptyError(path, "file is empty (0 bytes)")


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    policy: ClipPolicy | None = None,
) -> Audio:
    """Load ``path`` as mono float32 at ``sample_rate`` Hz, applying ``policy``.

    Args:
        path: an audio file soundfile can read.
        sample_rate: target rate in Hz; ``None`` keeps the file's rate.
        policy: long-clip and silence policy; defaults to ``ClipPolicy()`` (crop at 10 s).

    Returns:
        An :class:`Audio` with ``waveform`` of shape ``[n_samples]``.

    Raises:
        AudioMissingError: no such file.
        AudioFormatError: an extension soundfile cannot read here.
        AudioEmptyError: a 0-byte file, or zero decoded samples.
        AudioUnreadableError: corrupt or undecodable content.
        AudioNonFiniteError: NaN or Inf samples.
    """
    path = Path(path)
    policy = policy or ClipPolicy()
    src_sr, total = _open_info(path)

    start, stop, cropped = 0, total, False
    if policy.long_clip == "crop" and policy.max_seconds is not None:
        keep = int(round(policy.max_seconds * src_sr))
        if total > keep:
            cropped = True
            start = 0 if policy.crop_anchor == "start" else (total - keep) // 2
            stop = start + keep
    mono, channels = _read_mono(path, start, stop)
    target = int(sample_rate) if sample_rate else src_sr
    wave = resample(mono, src_sr, target)
    peak, rms = level_dbfs(wave)
    return Audio(
        waveform=wave,
        sample_rate=target,
        path=path,
        source_sample_rate=src_sr,
        source_channels=channels,
        source_seconds=total / src_sr,
        offset_seconds=start / src_sr,
        cropped=cropped,
        peak_dbfs=peak,
        rms_dbfs=rms,
        is_silent=peak < policy.silence_dbfs,
    )


#: Files at least this long (in seconds) that are cut into windows are read window by window
#: (:class:`StreamedWave`) by :func:`record_waveform`; shorter ones are decoded whole.
STREAM_SECONDS = 120.0


def audio_from_array(wave: np.ndarray, rate: int, sample_rate: int | None = None,
                     policy: ClipPolicy | None = None, name: str = "<array>") -> Audio:
    """An in-memory mono waveform as the :class:`Audio` that :func:`load_audio` gives for a file,
    so a captioner takes arrays and files alike.

    Args:
        wave: mono samples ``[n]`` (any float dtype; made float32), nominally in [-1, 1].
        rate: ``wave``'s sample rate in Hz.
        sample_rate: target rate in Hz (resampled as :func:`load_audio` does); None keeps
            ``rate``.
        policy: only its ``silence_dbfs`` is used: an array is never cropped (as
            :func:`dissect.record` feeds arrays to the model whole).
        name: what ``Audio.path`` and error messages call the array (it has no file).

    Raises:
        AudioEmptyError: zero samples. AudioNonFiniteError: NaN or Inf samples.
        ValueError: not one-dimensional, or a rate that is not a positive integer.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"{name}: want a mono array [n], got shape {list(x.shape)}")
    if int(rate) != rate or int(rate) <= 0:
        raise ValueError(f"{name}: sample rate must be a positive integer (Hz), got {rate!r}")
    if not x.size:
        raise AudioEmptyError(name, "zero samples")
    if not np.isfinite(x).all():
        raise AudioNonFiniteError(name, "non-finite samples (NaN/Inf)")
    policy = policy or ClipPolicy()
    target = int(sample_rate) if sample_rate else int(rate)
    out = resample(x, int(rate), target)
    peak, rms = level_dbfs(out)
    return Audio(waveform=out, sample_rate=target, path=Path(name), source_sample_rate=int(rate),
                 source_channels=1, source_seconds=len(x) / int(rate), offset_seconds=0.0,
                 cropped=False, peak_dbfs=peak, rms_dbfs=rms,
                 is_silent=peak < policy.silence_dbfs)


class StreamedWave:
    """A long file's mono waveform at ``sample_rate`` Hz, decoded on demand: ``len()`` is its
    length in samples and ``wave[a:b]`` (step 1) a float32 ``[b - a]`` array read from the file
    (and resampled) when asked for, so memory holds one window, never the whole file.

    At the file's own rate a slice is the file's frames exactly. At another rate the slice is
    resampled from the source span it needs plus :attr:`pad` source samples on each side, the
    span starting on a whole resampling phase period, so each output sample is computed from
    the same input samples with the same kernel as in the whole-file resample
    (:func:`resample`; equal up to float rounding, tested).

    Raises (on reading):
        AudioUnreadableError, AudioNonFiniteError: the file changed since it was opened.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, path: Path, sample_rate: int, source_rate: int, frames: int):
        self.path, self.sample_rate = Path(path), int(sample_rate)
        self.source_rate, self.frames = int(source_rate), int(frames)
        g = math.gcd(self.source_rate, self.sample_rate)
        self._o, self._n = self.source_rate // g, self.sample_rate // g
        # torchaudio's output length: ceil(new * length / orig)
        self._len = -(-self._n * self.frames // self._o)
        # 0.1 s of source samples (the sinc kernel spans a few ms), whole phase periods
        self.pad = -(-int(0.1 * self.source_rate) // self._o) * self._o

    def __len__(self) -> int:
        return self._len

    @property
    def shape(self) -> tuple[int]:
        return (self._len,)

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("StreamedWave supports contiguous slices only (wave[a:b])")
        a, b, _ = key.indices(self._len)
        if b <= a:
            return np.zeros(0, dtype=np.float32)
        if self._o == self._n:  # the file's own rate
            return _read_mono(self.path, a, b)[0]
        s = max(0, (a // self._n) * self._o - self.pad)  # a multiple of the period
        e = min(self.frames, -(-b // self._n) * self._o + self.pad)
        y = resample(_read_mono(self.path, s, e)[0], self.source_rate, self.sample_rate)
        off = (s // self._o) * self._n  # output index of the span's first sample
        return np.ascontiguousarray(y[a - off : b - off])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The whole waveform (decodes everything: only for callers that need it all)."""
        x = self[0 : self._len]
        return x if dtype is None else x.astype(dtype, copy=False)


def record_waveform(path: str | Path, sample_rate: int, policy: ClipPolicy
                    ) -> np.ndarray | StreamedWave:
    """The waveform the recorder reads for one clip: :func:`load_audio`'s, or, for a file of
    at least :data:`STREAM_SECONDS` under ``long_clip="windows"``, a :class:`StreamedWave`
    after one streaming pass that checks every sample decodes and is finite (so the
    recorder's window reads do not fail midway). A 1-hour 16 kHz file then costs one window
    instead of its 230 MB waveform.

    Raises:
        AudioError: as :func:`load_audio` (missing, unreadable, empty, non-finite, too short).
    """
    path = Path(path)
    if policy.long_clip != "windows":
        return load_audio(path, sample_rate, policy).waveform
    src_sr, total = _open_info(path)
    if total < max(STREAM_SECONDS, policy.min_seconds) * src_sr:
        return load_audio(path, sample_rate, policy).waveform
    for a in range(0, total, BLOCK_FRAMES):  # the check pass: one block in memory at a time
        _read_mono(path, a, min(total, a + BLOCK_FRAMES))
    return StreamedWave(path, int(sample_rate) if sample_rate else src_sr, src_sr, total)


def _open_info(path: Path) -> tuple[int, int]:
    """``(sample rate Hz, frames)`` of ``path`` after the checks every decode starts with.

    Raises:
        AudioMissingError, AudioFormatError: no such file, or an unreadable extension.
        AudioUnreadableError: a header libsndfile cannot read, or a truncated WAV.
        AudioEmptyError: zero frames.
    """
    _check_file(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError with its own text
        raise AudioUnreadableError(path, f"cannot decode ({_short(exc)})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioEmptyError(path, "contains zero samples")
    short = _wav_truncated(path)
    if short is not None:
        raise AudioUnreadableError(path, short)
    return int(info.samplerate), int(info.frames)


def _read_mono(path: Path, start: int, stop: int) -> tuple[np.ndarray, int]:
    """``(mono float32 [n], channels)``: frames ``[start, stop)`` of ``path``, decoded in blocks
    of :data:`BLOCK_FRAMES` and mixed down (channel mean) into one preallocated array.

    Peak memory is the mono result plus one block (a 1-hour 16 kHz file: 230 MB + 1 MB per
    channel), where reading it whole held the ``[n, channels]`` array, its finiteness mask and
    the mono copy at once. (Resampling a file at another rate then holds the source-rate mono
    array and its resampled copy together.)

    Raises:
        AudioUnreadableError, AudioEmptyError, AudioNonFiniteError: as :func:`load_audio`.
    """
    try:
        with sf.SoundFile(str(path)) as fh:
            channels = int(fh.channels)
            if start:
                fh.seek(start)
            mono = np.empty(stop - start, dtype=np.float32)
            got, bad, first_bad = 0, 0, None
            for block in fh.blocks(blocksize=BLOCK_FRAMES, frames=stop - start,
                                   dtype="float32", always_2d=True):
                n = min(len(block), len(mono) - got)
                block = block[:n]
                finite = np.isfinite(block)
                if not finite.all():
                    bad += int(block.size - finite.sum())
                    if first_bad is None:
                        first_bad = start + got + int(np.argmin(finite.all(axis=1)))
                if channels > 1:
                    np.mean(block, axis=1, dtype=np.float32, out=mono[got : got + n])
                else:
                    mono[got : got + n] = block[:, 0]
                got += n
    except Exception as exc:
        raise AudioUnreadableError(path, f"cannot decode samples ({_short(exc)})") from exc
    if got == 0:
        raise AudioEmptyError(path, "contains zero samples")
    if bad:
        raise AudioNonFiniteError(path, f"{bad} NaN/Inf sample value(s), first at frame "
                                        f"{first_bad}")
    return mono[:got], channels


def _wav_truncated(path: Path) -> str | None:
    """For a RIFF/WAVE file whose ``data`` chunk declares more bytes than the file holds (a
    cut download or copy), the problem in words; None otherwise. libsndfile reads such a file
    silently as the few samples that are there."""
    import struct

    if path.suffix.lower() not in (".wav", ".wave"):
        return None
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                have = size - (pos + 8)
                if n != 0xFFFFFFFF and n > have:  # 0xFFFFFFFF: a streamed, unsized data chunk
                    return (f"truncated: the WAV header declares {n} bytes of audio, the file "
                            f"holds {have}")
                return None
            pos += 8 + n + (n & 1)
    return None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
