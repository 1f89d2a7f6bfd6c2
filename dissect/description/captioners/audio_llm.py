"""Audio-LLM captioner: an OpenAI-compatible chat endpoint that listens to the clip.

One request per clip to ``<base_url>/chat/completions`` (the ``openai`` package) with a single
user message of two content parts: the text ``prompt`` and an ``input_audio`` part holding the
clip as base64 WAV (16-bit PCM, mono, ``sample_rate``; ``"format": "wav"``). That is how vLLM
serves Qwen2-Audio and similar models, e.g. ``base_url="http://localhost:8000/v1"``,
``model="Qwen/Qwen2-Audio-7B-Instruct"``. The reply's text, with whitespace collapsed, is the
caption. Decoding is greedy (``temperature`` 0) unless configured.

Secrets: the API key is read from the environment variable named by ``api_key_env`` when the
client is created and is only ever sent in the ``Authorization`` header. It is not stored on
the captioner, not part of :meth:`AudioLLMCaptioner.config` (which names the endpoint's host,
not its full URL, so credentials in a URL stay out too), and it is masked in every error message.
Errors are raised outside the client's exception context, so no traceback carries the client's
request objects (whose headers hold the key). Without the variable, the placeholder key
``"EMPTY"`` is sent (what a local vLLM server expects when it has no key).

Failures: connection errors, timeouts, HTTP 408/409/429 and 5xx are retried ``max_retries``
times with exponential back-off (``retry_backoff_s * 2**attempt``); other HTTP errors and an
empty reply are not. The raised :class:`AudioLLMError` names the endpoint URL (without
credentials) and the last status.
"""

from __future__ import annotations

import base64
import io
import os
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from dissect.audio import Audio
from dissect.datasets import Clip

#: Bump when a change alters the request or the caption text (part of ``config()``).
VERSION = 1

DEFAULT_PROMPT = (
    "Describe this sound in one short sentence: what produces it (instrument, voice, machine, "
    "animal...), its pitch, loudness, timbre and rhythm."
)
PLACEHOLDER_KEY = "EMPTY"
_RETRY_STATUS = {408, 409, 429}


class AudioLLMError(RuntimeError):
    """A clip could not be captioned by the audio LLM endpoint (after retries)."""


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def wav_base64(waveform: np.ndarray, sample_rate: int) -> str:
    """Mono 16-bit PCM WAV of ``waveform`` (clipped to [-1, 1]), base64-encoded."""
    import soundfile as sf

    x = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, x, int(sample_rate), format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class AudioLLMCaptioner:
    """Caption clips with an audio LLM behind an OpenAI-compatible chat endpoint.

    Args:
        base_url: the API root, e.g. ``"http://localhost:8000/v1"``.
        model: the served model name.
        api_key_env: environment variable that holds the API key (never the key itself).
        prompt: the text sent with every clip.
        timeout_s: per-request timeout in seconds.
        max_retries: retries after the first attempt for retryable failures.
        sample_rate: rate (Hz) of the audio sent (16 kHz for Qwen2-Audio).
        max_tokens: longest reply, in tokens.
        temperature: 0 for greedy decoding.
        retry_backoff_s: first back-off delay; doubles after each retry.
    """

    name = "audio_llm"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        prompt: str = DEFAULT_PROMPT,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        sample_rate: int = 16000,
        max_tokens: int = 96,
        temperature: float = 0.0,
        retry_backoff_s: float = 0.5,
    ):
        if not base_url or not model:
            raise ValueError("audio_llm: base_url and model are required")
        if max_retries < 0:
            raise ValueError(f"audio_llm: max_retries must be >= 0, got {max_retries}")
        self.base_url = str(base_url).rstrip("/")
        self.model = str(model)
        self.api_key_env = str(api_key_env)
        self.prompt = str(prompt)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.sample_rate = int(sample_rate)
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.retry_backoff_s = float(retry_backoff_s)
        self._client = None

    def __repr__(self) -> str:
        return (f"AudioLLMCaptioner(endpoint={self.endpoint!r}, model={self.model!r}, "
                f"api_key_env={self.api_key_env!r})")

    @property
    def endpoint(self) -> str:
        """The chat-completions URL, without credentials."""
        return _public_url(self.base_url) + "/chat/completions"

    @property
    def host(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)

    def config(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "host": self.host,
            "model": self.model,
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "sample_rate": self.sample_rate,
            "audio_format": "wav/pcm16",
        }

    def _key(self) -> str:
        return os.environ.get(self.api_key_env) or PLACEHOLDER_KEY

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        if key:
            text = text.replace(key, "***")
        return text.replace(self.base_url, self.endpoint.rsplit("/chat/completions", 1)[0])

    def _get_client(self):
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key=self._key(),
                                  timeout=self.timeout_s, max_retries=0)
        return self._client

    def messages(self, audio: Audio) -> list[dict[str, Any]]:
        """The chat sent for one clip."""
        return [{
            "role": "user",
            "content": [
                {"type": "text", "text": self.prompt},
                {"type": "input_audio",
                 "input_audio": {"data": wav_base64(audio.waveform, audio.sample_rate),
                                 "format": "wav"}},
            ],
        }]

    def caption(self, clip: Clip, audio: Audio | None) -> str:
        """The model's reply for one clip.

        Raises:
            AudioLLMError: after the retries, for a non-retryable HTTP error, or for an empty
                reply; the message names the endpoint and never holds the key.
            ValueError: no audio, or audio at another rate than ``sample_rate``.
        """
        import openai

        if audio is None:
            raise ValueError(f"audio_llm: clip {clip.id!r} needs audio")
        if audio.sample_rate != self.sample_rate:
            raise ValueError(f"audio_llm: audio is at {audio.sample_rate} Hz, expected "
                             f"{self.sample_rate} Hz (load clips at the captioner's sample_rate)")
        client = self._get_client()
        messages = self.messages(audio)
        attempts = self.max_retries + 1
        problem = "no attempt made"
        for attempt in range(attempts):
            retry = False
            try:
                response = client.chat.completions.create(
                    model=self.model, messages=messages, max_tokens=self.max_tokens,
                    temperature=self.temperature,
                )
            except openai.APIStatusError as exc:
                problem = f"HTTP {exc.status_code}: {_short(exc.message)}"
                retry = exc.status_code in _RETRY_STATUS or exc.status_code >= 500
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                problem = f"{type(exc).__name__}: {_short(str(exc))}"
                retry = True
            except openai.OpenAIError as exc:
                problem = f"{type(exc).__name__}: {_short(str(exc))}"
            else:
                text = _reply_text(response)
                if text:
                    return text
                problem = "the reply has no text"
            if not retry or attempt + 1 == attempts:
                break
            time.sleep(self.retry_backoff_s * 2**attempt)
        n = attempt + 1
        # Raised here, outside the except blocks: no exception context keeps the request.
        raise AudioLLMError(self._redact(
            f"audio_llm: {self.endpoint} (model {self.model!r}) failed for clip {clip.id!r} "
            f"after {n} attempt{'s' if n > 1 else ''}: {problem}"
        ))


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reply_text(response: Any) -> str:
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return ""
    if isinstance(content, list):  # some servers return content parts
        content = " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return " ".join(str(content or "").split())
