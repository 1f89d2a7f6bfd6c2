"""Captioners: one short text per clip (acoustic descriptors, dataset labels, AudioSet tags,
a Whisper transcript, an audio LLM), combined per clip with :func:`combine`."""

from dissect.description.captioners.acoustic import AcousticCaptioner
from dissect.description.captioners.audio_llm import AudioLLMCaptioner, AudioLLMError
from dissect.description.captioners.base import Captioner
from dissect.description.captioners.combine import CAPTIONER_NAMES, build_captioner, combine
from dissect.description.captioners.labels import LabelCaptioner
from dissect.description.captioners.tagger import TaggerError, YamnetTagger
from dissect.description.captioners.transcript import WhisperTranscript

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
