"""Captions are cut to the caption limit where they are made (annotate) and where they are read
back (captions_by_clip), with a visible marker and a warning naming the captioner / file and
the clip."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from dissect import artifacts
from dissect.datasets import Clip
from dissect.description.captioners.base import Annotation, annotate
from dissect.description.captions import captions_by_clip
from dissect.limits import CUT_MARKER, MAX_CAPTION_CHARS, TextCutWarning

CLIP = Clip("dogs/bark_01", Path("bark_01.wav"))


class Wordy:
    name = "audio_llm"
    sample_rate = None

    def __init__(self, text, terms=()):
        self.text, self.terms = text, list(terms)

    def config(self):
        return {}

    def annotate(self, clip, audio):
        return Annotation(self.text, self.terms)


class CaptionOnly:
    name = "plain"
    sample_rate = None

    def config(self):
        return {}

    def caption(self, clip, audio):
        return "word " * 400  # 2000 characters


def test_annotate_cuts_a_long_caption_and_names_captioner_and_clip():
    text = "".join(str(i % 10) for i in range(50_000))
    with pytest.warns(TextCutWarning) as record:
        ann = annotate(Wordy(text, ["tag=x", "word=" + "y" * 300]), CLIP, None)
    assert MAX_CAPTION_CHARS == 1000 and len(ann.text) == 1000
    assert ann.text == text[: 1000 - len(CUT_MARKER)] + CUT_MARKER
    assert ann.terms == ["tag=x", ("word=" + "y" * 300)[:194] + CUT_MARKER]
    msgs = [str(w.message) for w in record]
    assert "captioner 'audio_llm'" in msgs[0] and "clip 'dogs/bark_01'" in msgs[0]
    assert "caption has 50,000 characters" in msgs[0]
    assert "term has 305 characters" in msgs[1]
    with pytest.warns(TextCutWarning, match="captioner 'plain'"):
        plain = annotate(CaptionOnly(), CLIP, None)
    assert len(plain.text) == 1000 and plain.text.endswith(CUT_MARKER)


def test_short_captions_are_untouched():
    with warnings.catch_warnings():
        warnings.simplefilter("error", TextCutWarning)
        ann = annotate(Wordy("x" * 1000, ["a=b"]), CLIP, None)
    assert ann.text == "x" * 1000 and ann.terms == ["a=b"]


def test_captions_read_back_are_cut_and_name_the_file(tmp_path):
    artifacts.write_jsonl(tmp_path / artifacts.CAPTIONS, [
        {"clip": "c1", "captioner": "labels", "text": "Labels: dog.", "error": None},
        {"clip": "c1", "captioner": "audio_llm", "text": "z" * 3000, "error": None},
        {"clip": "c2", "captioner": "labels", "text": "Labels: cat.", "error": None}])
    with pytest.warns(TextCutWarning) as record:
        caps = captions_by_clip(tmp_path)
    assert caps["c2"] == "labels: Labels: cat"
    assert caps["c1"] == "labels: Labels: dog; audio_llm: " + "z" * 994 + CUT_MARKER
    (msg,) = [str(w.message) for w in record]
    assert str(tmp_path / artifacts.CAPTIONS) in msg and "clip 'c1'" in msg


class Informed(Wordy):
    name = "transcript"

    def annotate(self, clip, audio):
        return Annotation(self.text, self.terms, {"agreement": {"bye": False}})


def test_annotation_info_reaches_the_caption_row(tmp_path, monkeypatch):
    from dissect.config import AudioConfig, CaptionConfig
    from dissect.stages import caption as stage

    assert annotate(Informed("t", ["a=b"]), CLIP, None).info == {"agreement": {"bye": False}}
    assert annotate(Wordy("t"), CLIP, None).info == {}
    artifacts.write_jsonl(tmp_path / artifacts.CLIPS, [
        {"id": "c1", "path": "c1.wav", "sha256": "1", "labels": {}}])
    monkeypatch.setattr(stage, "build_captioners", lambda cfg: [Informed("t"), Wordy("u")])
    stage.write_captions(tmp_path, CaptionConfig(captioners=["transcript", "audio_llm"]),
                         AudioConfig(), progress=False)
    rows = artifacts.read_jsonl(tmp_path / artifacts.CAPTIONS)
    assert rows[0]["info"] == {"agreement": {"bye": False}} and "info" not in rows[1]
