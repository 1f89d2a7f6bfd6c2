"""A user's metadata column named ``tag`` reads as the user's column; only the AudioSet
tagger's own terms (``audioset_tag=...``) read as "AudioSet tag"."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dissect.audio import Audio
from dissect.datasets import Clip
from dissect.description.captioners.base import annotate
from dissect.description.captioners.labels import LabelCaptioner
from dissect.description.captioners.tagger import TAG_ATTRIBUTE, VERSION, YamnetTagger
from dissect.explain.candidates import render_term


def test_user_tag_column_is_not_called_an_audioset_tag():
    clip = Clip("c", Path("c.wav"), labels={"tag": "rock", "category": "guitar"})
    ann = annotate(LabelCaptioner(), clip, None)
    assert ann.terms == ["tag=rock", "category=guitar"]
    assert [render_term(t) for t in ann.terms] == ["tag rock", "guitar"]
    assert "AudioSet" not in " ".join(render_term(t) for t in ann.terms)


def test_tagger_terms_are_audioset_tags():
    tagger = YamnetTagger(top_k=2, min_prob=0.1)
    tagger.top = lambda audio, k=None: [("Speech", 0.8), ("Music", 0.05)]
    audio = Audio(np.zeros(16000, np.float32), 16000, Path("c.wav"), 16000, 1, 1.0, 0.0, False,
                  -np.inf, -np.inf, True)
    ann = annotate(tagger, Clip("c", Path("c.wav")), audio)
    # the tag, then its AudioSet-ontology ancestors (nearest first)
    assert TAG_ATTRIBUTE == "audioset_tag" and ann.terms == [
        "audioset_tag=Speech", "audioset_tag=Human voice", "audioset_tag=Human sounds"]
    assert render_term(ann.terms[0]) == "AudioSet tag 'Speech'"
    assert ann.text == "Tagged as: Speech (0.80)."
    assert VERSION == 3  # the caption cache key changes, so old terms are recomputed
    assert YamnetTagger(ontology=False).ontology is False
