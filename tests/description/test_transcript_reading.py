"""The transcript captioner's second reading: beam search against the greedy decode (on a
random-init tiny Whisper and on a hand-made toy model), and the evidence terms two readings
support."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from dissect.description.captioners.transcript import WhisperTranscript, same_word

SOT = 100


def _captioner(model, eot: int, beam_size: int = 5, max_new_tokens: int = 12):
    """A captioner around ``model`` without loading anything: prompt ``[SOT, SOT + 1]``, every
    id from ``SOT`` on special, no suppressed tokens."""
    w = WhisperTranscript(max_new_tokens=max_new_tokens, beam_size=beam_size,
                          second_reading="beam")
    w._model = model
    w._ids = {"<|endoftext|>": eot, "<|startoftranscript|>": SOT}
    w._prompt = [SOT, SOT + 1]
    w._suppress, w._begin_suppress, w._no_speech = [], [], None
    return w


@pytest.fixture(scope="module")
def tiny():
    """A random-init tiny Whisper (vocabulary 120) and an encoded random input."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=120, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=96,
        decoder_ffn_dim=96, max_source_positions=1500, max_target_positions=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=0, decoder_start_token_id=1,
        suppress_tokens=[], begin_suppress_tokens=[])
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
        encoded = model.model.encoder(input_features=torch.randn(1, 80, 3000)).last_hidden_state
    return model, encoded


def _rescored(w, encoded, tokens, n_logprobs):
    """A hypothesis's summed log-probability recomputed in one pass, without the KV cache
    (the end of text counted when ``n_logprobs`` says it was)."""
    ids = w._prompt + tokens
    with torch.inference_mode():
        logits = w._model(encoder_outputs=(encoded,),
                          decoder_input_ids=torch.tensor([ids])).logits[0]
    start = len(w._prompt) - 1
    total = sum(float(w._scores(logits[start + i], i)[t]) for i, t in enumerate(tokens))
    if n_logprobs == len(tokens) + 1:
        total += float(w._scores(logits[start + len(tokens)], len(tokens))[w._ids[
            "<|endoftext|>"]])
    return total


def test_beam_of_one_is_greedy(tiny):
    model, encoded = tiny
    free = _captioner(model, eot=99, max_new_tokens=10)
    path, _, _ = free.greedy(encoded)  # no end of text: runs to max_new_tokens
    assert len(path) == 10
    for eot, n in ((99, 10), (path[2], 2), (path[6], 6)):  # end of text at step n
        if eot in path[:n]:
            continue
        w = _captioner(model, eot=eot, max_new_tokens=10)
        tokens, logprobs, _ = w.greedy(encoded)
        assert tokens == path[:n]
        btoks, total, count = w.beam(encoded, beam_size=1)
        assert btoks == tokens
        assert count == len(logprobs) == n + (n < 10)
        assert total == pytest.approx(sum(logprobs), abs=1e-4)


def test_beam_hypotheses_match_an_uncached_rescoring(tiny):
    """The KV cache is expanded and reordered per step: a hypothesis's summed log-probability
    is what one uncached pass over its tokens gives."""
    model, encoded = tiny
    free = _captioner(model, eot=99, max_new_tokens=8)
    path, _, _ = free.greedy(encoded)
    for eot in (99, path[3]):
        w = _captioner(model, eot=eot, max_new_tokens=8)
        w._begin_suppress = [eot]  # as Whisper's: never an empty transcript
        tokens, total, count = w.beam(encoded, beam_size=5)
        assert 1 <= len(tokens) <= 8 and eot not in tokens
        assert total == pytest.approx(_rescored(w, encoded, tokens, count), abs=1e-3)


class _ToyCache:
    """Each hypothesis's tokens so far; ``reorder_cache`` as transformers' caches do it."""

    def __init__(self, rows):
        self.rows = [list(r) for r in rows]

    def reorder_cache(self, idx):
        self.rows = [list(self.rows[int(i)]) for i in idx]


class _ToyModel:
    """Next-token probabilities by prefix (after the prompt); vocabulary A=0, B=1, C=2, EOT=3,
    SOT=4 (special)."""

    A, B, C, EOT = 0, 1, 2, 3
    table = {
        (): {A: 0.5, B: 0.4, C: 0.09},
        (A,): {A: 0.4, B: 0.32, EOT: 0.27},
        (A, A): {EOT: 0.5, C: 0.5 - 1e-3},
        (B,): {EOT: 0.99},
    }

    def _logits(self, prefix):
        """Log-probabilities: the table's, the rest shared by the other non-special tokens."""
        probs = self.table.get(tuple(prefix), {self.EOT: 0.9})
        rest = (1.0 - sum(probs.values())) / (4 - len(probs))
        return torch.tensor([math.log(probs.get(t, rest)) for t in range(4)] + [-1e9])

    def __call__(self, encoder_outputs, decoder_input_ids, past_key_values=None,
                 use_cache=True):
        ids = decoder_input_ids.tolist()
        if past_key_values is None:
            past_key_values = _ToyCache([[] for _ in ids])  # the prompt
        else:
            assert encoder_outputs[0].shape[0] == len(ids) == len(past_key_values.rows)
            for row, new in zip(past_key_values.rows, ids, strict=True):
                row.extend(new)
        logits = torch.stack([self._logits(r) for r in past_key_values.rows])[:, None]
        return SimpleNamespace(logits=logits.expand(-1, len(ids[0]), -1),
                               past_key_values=past_key_values)


def test_beam_finds_the_better_sequence_greedy_misses():
    w = _captioner(_ToyModel(), eot=_ToyModel.EOT, beam_size=2)
    w._ids["<|startoftranscript|>"] = 4
    w._prompt = [4]
    encoded = torch.zeros(1, 1, 1)
    tokens, logprobs, _ = w.greedy(encoded)
    A, B = _ToyModel.A, _ToyModel.B
    assert tokens == [A, A]  # 0.5, then 0.4, then end of text at 0.5
    assert sum(logprobs) == pytest.approx(math.log(0.5 * 0.4 * 0.5))
    # finished: [B] (log 0.4 + log 0.99) / 1 = -0.926 beats [A, B] (log 0.5 + log 0.32 +
    # log 0.9) / 2 = -0.97; greedy's [A, A] (-1.15) is pruned
    btoks, total, count = w.beam(encoded)
    assert btoks == [B] and count == 2
    assert total == pytest.approx(math.log(0.4 * 0.99))
    assert w.beam(encoded, beam_size=1)[0] == [A, A]


class _LongerToy(_ToyModel):
    table = {**_ToyModel.table, (_ToyModel.B,): {_ToyModel.EOT: 0.45}}


def test_beam_ranks_finished_hypotheses_by_mean_log_probability():
    """[B] (log 0.4 + log 0.45 = -1.71) has the higher sum, [A, B] (log 0.5 + log 0.32 +
    log 0.9 = -1.94, over 2 tokens -0.97) the higher mean: the mean wins."""
    w = _captioner(_LongerToy(), eot=_ToyModel.EOT, beam_size=2)
    w._ids["<|startoftranscript|>"] = 4
    w._prompt = [4]
    btoks, total, count = w.beam(torch.zeros(1, 1, 1))
    assert btoks == [_ToyModel.A, _ToyModel.B] and count == 3
    assert total == pytest.approx(math.log(0.5 * 0.32 * 0.9))


def _result(greedy: str, beam: str | None, avg_logprob: float = -0.2) -> dict:
    out = {"text": greedy, "no_speech_prob": 0.01, "avg_logprob": avg_logprob, "n_tokens": 2}
    if beam is not None:
        out["beam"] = {"text": beam, "avg_logprob": -0.1, "n_tokens": 2}
    return out


@pytest.fixture
def espeak():
    from dissect.description.phonemes import phonemiser

    if phonemiser() is None:
        pytest.skip("espeak-ng is not installed")


def test_two_readings_keep_only_what_both_support(espeak):
    w = WhisperTranscript(second_reading="beam")
    # different words: no word term, only the phoneme terms both give
    assert w.word_terms(_result("Bye.", "Five.")) == ["phone=/aɪ/", "nucleus=/aɪ/"]
    info = w.info(_result("Bye.", "Five."))
    assert info["agreement"] == {"bye": False}
    assert info["second_reading"] == {"kind": "beam", "text": "Five.", "avg_logprob": -0.1}
    assert info["confidence"]["confident"] is True
    # a numeral and its number word agree; the term keeps the greedy spelling
    assert w.word_terms(_result("5", "Five.")) == [
        "word=5", "phone=/f/", "phone=/aɪ/", "phone=/v/", "nucleus=/aɪ/"]
    assert w.word_terms(_result("Five nine", "five")) == [
        "word=five", "phone=/f/", "phone=/aɪ/", "phone=/v/", "nucleus=/aɪ/"]
    assert w.info(_result("Five nine", "five"))["agreement"] == {"five": True, "nine": False}
    assert w.word_terms(_result("For.", "4")) == ["phone=/f/"]
    # no second reading: every word, as before; not confident: nothing
    assert w.word_terms(_result("Bye.", None)) == ["word=bye", "phone=/b/", "phone=/aɪ/",
                                                    "nucleus=/aɪ/"]
    assert "agreement" not in w.info(_result("Bye.", None))
    assert w.word_terms(_result("Five.", "Five.", avg_logprob=-1.5)) == []


def test_second_reading_option():
    assert same_word("5") == "five" and same_word("12") == "12" and same_word("x") == "x"
    beam = WhisperTranscript(second_reading="beam").config()
    none = WhisperTranscript().config()
    assert beam["version"] == 3
    assert beam["second_reading"] == {"kind": "beam", "beam_size": 5, "ranker": "sum/len"}
    assert none["second_reading"] == "none"
    with pytest.raises(ValueError, match="second_reading"):
        WhisperTranscript(second_reading="pocketsphinx")
    with pytest.raises(ValueError, match="beam_size"):
        WhisperTranscript(beam_size=0)
