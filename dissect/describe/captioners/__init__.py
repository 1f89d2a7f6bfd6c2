"""Captioners: one short text per clip (acoustic descriptors, dataset labels, AudioSet tags,
a Whisper transcript, an audio LLM), combined per clip with :func:`combine`."""

from dissect.describe.captioners.acoustic import AcousticCaptioner
from dissect.describe.captioners.audio_llm import AudioLLMCaptioner, AudioLLMError
from dissect.describe.captioners.base import Captioner
from dissect.describe.captioners.combine import CAPTIONER_NAMES, build_captioner, combine
from dissect.describe.captioners.labels import LabelCaptioner
from dissect.describe.captioners.tagger import TaggerError, YamnetTagger
from dissect.describe.captioners.transcript import WhisperTranscript

__all__ = [
    "CAPTIONER_NAMES",
    "AcousticCaptioner",
    "AudioLLMCaptioner",
    "AudioLLMError",
    "Captioner",
    "LabelCaptioner",
    "TaggerError",
    "WhisperTranscript",
    "YamnetTagger",
    "build_captioner",
    "combine",
]
