"""Combine several captioners' texts for one clip, and build captioners by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dissect.registry import Registry

#: Every captioner name, in the order :func:`combine` writes them.
CAPTIONER_NAMES: tuple[str, ...] = ("acoustic", "labels", "tagger", "transcript", "audio_llm")


def combine(captions: Mapping[str, str | None], named: bool = True) -> str:
    """One text from several captions of a clip: ``"acoustic: ...; labels: ..."``.

    Known names come in :data:`CAPTIONER_NAMES` order, any others after them sorted by name.
    Each text is stripped of surrounding whitespace and of one final period; empty or None
    captions are left out (so a failed captioner does not leave a gap). ``named=False`` leaves
    out the captioner names (``"...; ..."``): the text DB embeds, where a name is no sound
    word ("acoustic:" in every caption made MiniLM put "Acoustic guitar" first for 480 of
    YAMNet's 521 head units).
    """
    order = {n: i for i, n in enumerate(CAPTIONER_NAMES)}
    parts = []
    for name in sorted(captions, key=lambda n: (order.get(n, len(order)), n)):
        text = (captions[name] or "").strip()
        text = text[:-1].rstrip() if text.endswith(".") and not text.endswith("..") else text
        if text:
            parts.append(f"{name}: {text}" if named else text)
    return "; ".join(parts)


#: Captioner factories by name: ``CAPTIONERS.get(name)(**kwargs)`` -> a captioner. Heavy
#: dependencies (onnxruntime, torch, openai) are imported only by the captioner that needs them,
#: when it first runs.
CAPTIONERS: Registry[Callable[..., Any]] = Registry("captioner")


@CAPTIONERS.register("acoustic")
def _acoustic(**kwargs: Any):
    from dissect.description.captioners.acoustic import AcousticCaptioner

    return AcousticCaptioner(**kwargs)


@CAPTIONERS.register("labels")
def _labels(**kwargs: Any):
    from dissect.description.captioners.labels import LabelCaptioner

    return LabelCaptioner(**kwargs)


@CAPTIONERS.register("tagger")
def _tagger(**kwargs: Any):
    from dissect.description.captioners.tagger import YamnetTagger

    return YamnetTagger(**kwargs)


@CAPTIONERS.register("transcript")
def _transcript(**kwargs: Any):
    from dissect.description.captioners.transcript import WhisperTranscript

    return WhisperTranscript(**kwargs)


@CAPTIONERS.register("audio_llm")
def _audio_llm(**kwargs: Any):
    from dissect.description.captioners.audio_llm import AudioLLMCaptioner

    return AudioLLMCaptioner(**kwargs)


def build_captioner(name: str, **kwargs: Any):
    """A captioner by name (:data:`CAPTIONERS`); ``kwargs`` go to its constructor.

    Raises:
        dissect.registry.UnknownNameError: (a ``ValueError``) an unknown name.
    """
    return CAPTIONERS.get(name)(**kwargs)


def fit_probe_set(captioners: Sequence[Any], clips: Sequence[Any], log: bool = True
                  ) -> dict[str, dict[str, str]]:
    """Give every captioner that has one (``fit_probe_set(clips)``) the whole probe set before
    any clip is captioned: settings that need all clips, such as the label captioner's
    redundant label columns
    (:func:`~dissect.description.captioners.labels.redundant_label_columns`).

    Args:
        captioners: built captioners (changed in place).
        clips: every clip of the probe set (``Clip`` objects or ``clips.jsonl`` rows).
        log: print one line per dropped column to stderr, with the reason.

    Returns:
        ``{captioner name: what it decided}`` for the captioners that decided something
        (labels: ``{dropped column: the named column it is a function of}``).
    """
    import sys

    from dissect.description.captioners.labels import redundancy_reason

    out: dict[str, dict[str, str]] = {}
    for cap in captioners:
        fit = getattr(cap, "fit_probe_set", None)
        if fit is None:
            continue
        found = dict(fit(clips) or {})
        if found:
            out[cap.name] = found
            if log:
                for col, named in found.items():
                    print(f"[caption] {cap.name}: {redundancy_reason(col, named)}",
                          file=sys.stderr)
    return out
