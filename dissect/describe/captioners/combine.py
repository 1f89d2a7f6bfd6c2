"""Combine several captioners' texts for one clip, and build captioners by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Every captioner name, in the order :func:`combine` writes them.
CAPTIONER_NAMES: tuple[str, ...] = ("acoustic", "labels", "tagger", "transcript", "audio_llm")


def combine(captions: Mapping[str, str | None]) -> str:
    """One text from several captions of a clip: ``"acoustic: ...; labels: ..."``.

    Known names come in :data:`CAPTIONER_NAMES` order, any others after them sorted by name.
    Each text is stripped of surrounding whitespace and of one final period; empty or None
    captions are left out (so a failed captioner does not leave a gap).
    """
    order = {n: i for i, n in enumerate(CAPTIONER_NAMES)}
    parts = []
    for name in sorted(captions, key=lambda n: (order.get(n, len(order)), n)):
        text = (captions[name] or "").strip()
        text = text[:-1].rstrip() if text.endswith(".") and not text.endswith("..") else text
        if text:
            parts.append(f"{name}: {text}")
    return "; ".join(parts)


def build_captioner(name: str, **kwargs: Any):
    """A captioner by name (:data:`CAPTIONER_NAMES`); ``kwargs`` go to its constructor.

    Heavy dependencies (onnxruntime, torch, openai) are imported only by the captioner that
    needs them, when it first runs.

    Raises:
        ValueError: an unknown name.
    """
    if name == "acoustic":
        from dissect.describe.captioners.acoustic import AcousticCaptioner

        return AcousticCaptioner(**kwargs)
    if name == "labels":
        from dissect.describe.captioners.labels import LabelCaptioner

        return LabelCaptioner(**kwargs)
    if name == "tagger":
        from dissect.describe.captioners.tagger import YamnetTagger

        return YamnetTagger(**kwargs)
    if name == "transcript":
        from dissect.describe.captioners.transcript import WhisperTranscript

        return WhisperTranscript(**kwargs)
    if name == "audio_llm":
        from dissect.describe.captioners.audio_llm import AudioLLMCaptioner

        return AudioLLMCaptioner(**kwargs)
    raise ValueError(f"unknown captioner {name!r}; choose one of {', '.join(CAPTIONER_NAMES)}")
