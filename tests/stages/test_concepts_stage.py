"""The concepts stage's DB input: the clips' captions without captioner names."""

import numpy as np
import torch

from dissect import artifacts
from dissect.config import CaptionConfig, DescribeConfig, LLMConfig


class RecordingEmbedder:
    """Remembers every text it encodes; embeddings are a fixed function of the text."""

    name = "recording"

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen += list(texts)
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, len(t) % 4] = 1.0
            out[i, 3 - len(t) % 3] += 0.5
        return out


def test_db_embeds_captions_without_captioner_names(tmp_path, monkeypatch):
    import dissect.describe.embed
    import dissect.stages.describe as stage

    run = tmp_path / "run"
    clips = [{"id": f"c{i}", "path": f"/x/c{i}.wav"} for i in range(3)]
    artifacts.write_jsonl(run / artifacts.CLIPS, clips)
    caps = []
    for i in range(3):
        caps += [{"clip": f"c{i}", "captioner": "acoustic", "error": None,
                  "text": f"A loud sound {i}.", "terms": []},
                 {"clip": f"c{i}", "captioner": "labels", "error": None,
                  "text": f"Labels: audioset Dog{i}.", "terms": []}]
    artifacts.write_jsonl(run / artifacts.CAPTIONS, caps)
    artifacts.write_jsonl(run / artifacts.SUMMARIES, [
        {"layer": "l", "unit": 0, "high": "x", "low": "y", "llm": "rule-based (no LLM)",
         "top_clips": ["c0"]}])
    emb = RecordingEmbedder()
    monkeypatch.setattr(dissect.describe.embed, "default_embedder", lambda: emb)
    monkeypatch.setattr(stage, "load_activations",
                        lambda run_dir, layer: torch.tensor([[3.0], [1.0], [0.5]]))
    cfg = DescribeConfig(closed_methods=["db"], keywords=False)
    stage.write_concepts(run, cfg, LLMConfig(client="rules"), CaptionConfig())
    texts = [f"A loud sound {i}; Labels: audioset Dog{i}" for i in range(3)]
    assert emb.seen[:3] == texts  # the captions first, then the concept prompts
    assert not any("acoustic:" in t or "labels:" in t for t in emb.seen)
    row = artifacts.read_jsonl(run / artifacts.CONCEPTS)[0]
    assert row["closed"]["db"]  # labelled from those texts
