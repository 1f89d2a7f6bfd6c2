"""Audio loading: soundfile decode, mono mixdown, torchaudio resampling, long-clip policy, padding.

The public entry point is :func:`load_audio`; bad input raises a subclass of :class:`AudioError`.
"""

from dissect.audio.batch import pad_batch, split_windows
from dissect.audio.errors import (
    AudioEmptyError,
    AudioError,
    AudioFormatError,
    AudioMissingError,
    AudioNonFiniteError,
    AudioTooShortError,
    AudioUnreadableError,
)
from dissect.audio.load import (
    Audio,
    ClipPolicy,
    StreamedWave,
    audio_from_array,
    load_audio,
    record_waveform,
    supported_extensions,
)

__all__ = [
    "Audio",
    "AudioEmptyError",
    "AudioError",
    "AudioFormatError",
    "AudioMissingError",
    "AudioNonFiniteError",
    "AudioTooShortError",
    "AudioUnreadableError",
    "ClipPolicy",
    "StreamedWave",
    "audio_from_array",
    "load_audio",
    "pad_batch",
    "record_waveform",
    "split_windows",
    "supported_extensions",
]
