"""OpenAI-compatible chat completions over HTTP (OpenAI, vLLM, llama.cpp server, Ollama, ...).

Every chat is one ``POST {base_url}/chat/completions`` through the official ``openai`` package.
The package's own retries are switched off; this module retries itself so that timeouts,
connection errors, 5xx/408/409/429 answers *and* malformed response bodies are all retried with
exponential backoff, then recorded as ``Completion(error=...)`` rather than raised.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from dissect.description.llm.base import Chat, Completion, GenerationParams

#: Key used when the environment variable is unset (local servers ignore the key).
PLACEHOLDER_KEY = "EMPTY"

# HTTP statuses worth retrying; any other 4xx (bad key, bad request, unknown model) is final.
_RETRY_STATUSES = frozenset({408, 409, 425, 429})


class _Malformed(Exception):
    """The server answered 2xx but the body is not a usable chat completion."""


class OpenAIHTTPClient:
    """Chat completions from an OpenAI-compatible server.

    Args:
        base_url: the API root, e.g. ``"http://127.0.0.1:8000/v1"`` (vLLM, llama.cpp server),
            ``"http://localhost:11434/v1"`` (Ollama) or ``"https://api.openai.com/v1"``.
        model: the model name the server expects.
        api_key_env: NAME of the environment variable holding the API key, read once here. When
            it is unset the placeholder key ``"EMPTY"`` is sent, which local servers accept. The key
            is kept only inside the private ``openai`` client object: never in ``name``, ``repr``,
            cache keys, error texts (scrubbed) or pickles (the private client is not pickled and
            is rebuilt from the environment on unpickling).
        timeout_s: per-request timeout in seconds (connect + read).
        max_retries: retries after the first attempt, so at most ``max_retries + 1`` requests
            per chat.
        backoff_s: wait before retry ``i`` (0-based) is ``backoff_s * 2**i`` seconds.
        concurrency: at most this many requests in flight (thread pool size).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        concurrency: int = 4,
    ):
        if not base_url or not urlsplit(base_url).hostname:
            raise ValueError(f"OpenAIHTTPClient: base_url {base_url!r} has no host")
        if not model:
            raise ValueError("OpenAIHTTPClient: model must be a non-empty name")
        if max_retries < 0 or concurrency < 1 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError(
                "OpenAIHTTPClient: need max_retries >= 0, concurrency >= 1, timeout_s > 0, "
                "backoff_s >= 0"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.concurrency = int(concurrency)
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        # Host (and port) only: no user-info, path or query, which may carry tokens.
        self.name = f"openai-http:{model}@{host}"
        self._client = self._make_client()

    # -- the private openai client holds the key; keep it out of repr and pickles ------------

    def _make_client(self):
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a declared dependency here
            raise ImportError(
                "OpenAIHTTPClient needs the `openai` package: pip install openai"
            ) from exc
        key = os.environ.get(self.api_key_env) or PLACEHOLDER_KEY
        return openai.OpenAI(
            base_url=self.base_url, api_key=key, timeout=self.timeout_s, max_retries=0
        )

    def __repr__(self) -> str:
        return f"OpenAIHTTPClient(name={self.name!r}, api_key_env={self.api_key_env!r})"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_client", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._client = self._make_client()

    def _scrub(self, text: str) -> str:
        key = self._client.api_key
        if key and key != PLACEHOLDER_KEY:
            text = text.replace(key, "***")
        return text

    # -- requests --------------------------------------------------------------------------

    def _once(self, chat: Chat, params: GenerationParams) -> str:
        resp = self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": m["role"], "content": m["content"]} for m in chat],
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
        )
        try:
            text = resp.choices[0].message.content
        except (AttributeError, IndexError, TypeError, KeyError) as exc:
            raise _Malformed(f"no choices[0].message.content in the response ({exc})") from exc
        if not isinstance(text, str):
            raise _Malformed(f"choices[0].message.content is {type(text).__name__}, not text")
        return text

    def _one(self, chat: Chat, params: GenerationParams) -> Completion:
        import openai

        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return Completion(text=self._once(chat, params).strip(), llm=self.name)
            except openai.APIStatusError as exc:
                last = f"HTTP {exc.status_code}: {exc.message}"
                if exc.status_code < 500 and exc.status_code not in _RETRY_STATUSES:
                    break
            except openai.APITimeoutError:
                last = f"timeout after {self.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                last = f"connection error: {exc.__cause__ or exc}"
            except Exception as exc:  # malformed body (JSON decode, validation) and the like
                last = f"malformed response: {type(exc).__name__}: {exc}"
        error = f"{self.name}: failed after {attempt + 1} attempt(s): {last}"
        return Completion(text="", llm=self.name, error=self._scrub(error)[:2000])

    def generate(self, chats: Sequence[Chat], params: GenerationParams) -> list[Completion]:
        """One completion per chat, in order; at most ``concurrency`` requests in flight."""
        chats = list(chats)
        if not chats:
            return []
        if len(chats) == 1 or self.concurrency == 1:
            return [self._one(c, params) for c in chats]
        workers = min(self.concurrency, len(chats))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-http") as pool:
            return list(pool.map(lambda c: self._one(c, params), chats))
