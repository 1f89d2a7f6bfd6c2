"""The concepts stage's DB input: the clips' captions without captioner names."""

import numpy as np
import torch

from dissect import artifacts
from dissect.config import CaptionConfig, ConceptsConfig, ExplainConfig, LLMConfig


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
    import dissect.description.embed
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
    monkeypatch.setattr(dissect.description.embed, "default_embedder", lambda: emb)
    monkeypatch.setattr(stage, "load_activations",
                        lambda run_dir, layer: torch.tensor([[3.0], [1.0], [0.5]]))
    # every clip in the fit split (closed-set labels are chosen on fit clips only)
    cfg = ConceptsConfig(closed_methods=["db"], keywords=False)
    stage.write_concepts(run, cfg, ExplainConfig(splits=[1.0, 0.0, 0.0]), LLMConfig(client="rules"),
                         CaptionConfig())
    texts = [f"A loud sound {i}; Labels: audioset Dog{i}" for i in range(3)]
    assert emb.seen[:3] == texts  # the captions first, then the concept prompts
    assert not any("acoustic:" in t or "labels:" in t for t in emb.seen)
    row = artifacts.read_jsonl(run / artifacts.CONCEPTS)[0]
    assert row["closed"]["db"]  # labelled from those texts


def test_closed_set_label_ignores_validation_and_test_clips(tmp_path, monkeypatch):
    """DB sees the captions of the explain stage's fit clips only, and the label follows the
    fit clips' activations: changing a test clip's activation changes nothing."""
    import dissect.description.embed
    import dissect.stages.describe as stage
    from dissect.explain.splits import assign_splits, split_keys

    run = tmp_path / "run"
    n = 40
    clips = [{"id": f"c{i:02d}", "path": f"/x/c{i}.wav"} for i in range(n)]
    artifacts.write_jsonl(run / artifacts.CLIPS, clips)
    artifacts.write_jsonl(run / artifacts.CAPTIONS, [
        {"clip": f"c{i:02d}", "captioner": "acoustic", "error": None,
         "text": f"A {'loud' if i % 2 else 'quiet'} sound {i}.", "terms": []}
        for i in range(n)])
    artifacts.write_jsonl(run / artifacts.SUMMARIES, [
        {"layer": "l", "unit": 0, "high": "x", "low": "y", "llm": "rule-based (no LLM)",
         "top_clips": []}])
    emb = RecordingEmbedder()
    monkeypatch.setattr(dissect.description.embed, "default_embedder", lambda: emb)
    split = assign_splits([c["id"] for c in clips], (0.6, 0.2, 0.2), 0, *split_keys(clips))
    acts = torch.arange(n, dtype=torch.float32)[:, None]
    labels = []
    for poke in (0.0, 1e6):
        a = acts.clone()
        a[int(np.flatnonzero(split == "test")[0]), 0] = poke
        monkeypatch.setattr(stage, "load_activations", lambda run_dir, layer, a=a: a)
        emb.seen.clear()
        stage.write_concepts(run, ConceptsConfig(closed_methods=["db"], keywords=False),
                             ExplainConfig(),
                             LLMConfig(client="rules"), CaptionConfig())
        fit_caps = {f"A {'loud' if i % 2 else 'quiet'} sound {i}" for i in range(n)
                    if split[i] == "fit"}
        seen = set(emb.seen) & {f"A {'loud' if i % 2 else 'quiet'} sound {i}"
                                for i in range(n)}
        assert seen == fit_caps
        labels.append(artifacts.read_jsonl(run / artifacts.CONCEPTS)[0]["closed"]["db"])
    assert labels[0] == labels[1]


def test_db_without_a_captioned_fit_clip_is_a_recorded_skip(tmp_path, monkeypatch, capsys):
    """No fit clip (all clips in val/test): DB labels nothing and says why; the run goes on."""
    import dissect.description.embed
    import dissect.stages.describe as stage

    run = tmp_path / "run"
    artifacts.write_jsonl(run / artifacts.CLIPS, [{"id": "c0", "path": "/x/c0.wav"},
                                                  {"id": "c1", "path": "/x/c1.wav"}])
    artifacts.write_jsonl(run / artifacts.CAPTIONS, [
        {"clip": f"c{i}", "captioner": "acoustic", "error": None, "text": "A sound.",
         "terms": []} for i in range(2)])
    artifacts.write_jsonl(run / artifacts.SUMMARIES, [
        {"layer": "l", "unit": 0, "high": "x", "low": "y", "llm": "rule-based (no LLM)",
         "top_clips": []}])
    emb = RecordingEmbedder()
    monkeypatch.setattr(dissect.description.embed, "default_embedder", lambda: emb)
    monkeypatch.setattr(stage, "load_activations",
                        lambda run_dir, layer: torch.tensor([[3.0], [1.0]]))
    cfg = ConceptsConfig(closed_methods=["db"], keywords=False)
    info = stage.write_concepts(run, cfg, ExplainConfig(splits=[0.0, 0.5, 0.5]),
                                LLMConfig(client="rules"), CaptionConfig())
    assert info["method_notes"]["db"] == ("DB skipped: none of the 0 fit-split clips (of 2) "
                                          "has a caption, so no closed-set label is chosen")
    assert "[concepts] DB skipped" in capsys.readouterr().err
    assert emb.seen == []  # nothing embedded
    assert not artifacts.read_jsonl(run / artifacts.CONCEPTS)[0]["closed"].get("db")
