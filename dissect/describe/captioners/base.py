"""The captioner protocol: one short text per clip, cached per clip and per captioner config."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from dissect.audio import Audio
from dissect.datasets import Clip


@runtime_checkable
class Captioner(Protocol):
    """What every captioner provides.

    Attributes:
        name: short stable name (``acoustic``, ``labels``, ``tagger``, ``transcript``,
            ``audio_llm``); it prefixes the caption when captions are combined.
        sample_rate: Hz of the audio the captioner needs; None when it needs no audio.
    """

    name: str
    sample_rate: int | None

    def config(self) -> dict[str, Any]:
        """JSON-able settings that change the captions (model, thresholds, prompt...).
        Hashed, with ``name``, into the cache key; secrets never belong here."""
        ...

    def caption(self, clip: Clip, audio: Audio | None) -> str:
        """Caption one clip (``audio`` at ``sample_rate``, or None). Raise on failure."""
        ...
