"""A disk cache in front of any LLM client.

Key: sha256 of the canonical JSON of ``{"llm": client.name, "chat": chat, "params": params}``.
One small JSON file per key at ``<cache_dir>/<key[:2]>/<key>.json``, written atomically, holding
the request (LLM name, chat, params), the reply text and ``sha256``, the checksum of the text.
Only successful, non-empty replies are stored. An entry is used only when it is valid: its key,
LLM name, chat and params are the request's, its text is non-empty and its checksum matches;
anything else (a corrupt, truncated, edited or pre-checksum file) counts as a miss and is
overwritten by the next success.
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from dissect.artifacts import canonical_json, hash_config, write_text
from dissect.description.llm.base import Chat, Completion, GenerationParams, LLMClient


def cache_key(llm_name: str, chat: Chat, params: GenerationParams,
              decoding: dict | None = None) -> str:
    """sha256 hex of (LLM name, chat, decoding params, client-level decoding settings)."""
    key = {"llm": llm_name, "chat": list(chat), "params": params.to_dict()}
    if decoding:
        key["decoding"] = dict(decoding)
    return hash_config(key)


def text_checksum(text: str) -> str:
    """sha256 hex of the UTF-8 reply text (stored beside it, checked on every read)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedClient:
    """Wraps ``client``; serves repeated (chat, params) from ``cache_dir``.

    Attributes:
        name: the inner client's name (the cache does not change what is generated).
        hits, misses: lookups served from disk / passed to the inner client, since construction.
    """

    def __init__(self, client: LLMClient, cache_dir: str | Path):
        self.client = client
        self.name = client.name
        self.cache_dir = Path(cache_dir)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedClient({self.client!r}, cache_dir={str(self.cache_dir)!r})"

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _read(self, key: str, chat: Chat, params: GenerationParams) -> str | None:
        """The cached reply for ``key``, or None when there is none or it fails validation."""
        p = self.path_for(key)
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict):
            return None
        text = entry.get("text")
        valid = (isinstance(text, str) and text.strip() != ""
                 and entry.get("key") == key and entry.get("llm") == self.name
                 and entry.get("chat") == list(chat) and entry.get("params") == params.to_dict()
                 and entry.get("sha256") == text_checksum(text))
        return text if valid else None

    def _write(self, key: str, chat: Chat, params: GenerationParams, text: str) -> None:
        entry = {
            "key": key,
            "llm": self.name,
            "chat": list(chat),
            "params": params.to_dict(),
            "text": text,
            "sha256": text_checksum(text),
        }
        try:
            write_text(self.path_for(key), canonical_json(entry) + "\n")
        except OSError as exc:  # the cache is optional: a full or read-only disk only warns
            warnings.warn(f"LLM cache: cannot write {self.path_for(key)}: {exc}", stacklevel=2)

    def generate(self, chats: Sequence[Chat], params: GenerationParams) -> list[Completion]:
        """Hits come back with ``cached=True``; misses go to the inner client in one batch."""
        chats = list(chats)
        out: list[Completion | None] = [None] * len(chats)
        decoding = getattr(self.client, "decoding", None)
        keys = [cache_key(self.name, c, params, decoding) for c in chats]
        todo = []
        for i, key in enumerate(keys):
            text = self._read(key, chats[i], params)
            if text is None:
                todo.append(i)
            else:
                out[i] = Completion(text=text, llm=self.name, cached=True)
        with self._lock:
            self.hits += len(chats) - len(todo)
            self.misses += len(todo)
        if todo:
            fresh = self.client.generate([chats[i] for i in todo], params)
            if len(fresh) != len(todo):
                raise RuntimeError(
                    f"{self.name}: returned {len(fresh)} completions for {len(todo)} chats"
                )
            for i, comp in zip(todo, fresh, strict=True):
                if comp.ok and comp.text.strip():
                    self._write(keys[i], chats[i], params, comp.text)
                out[i] = comp
        return out  # type: ignore[return-value]
