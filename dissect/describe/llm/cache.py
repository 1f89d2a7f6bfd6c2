"""A disk cache in front of any LLM client.

Key: sha256 of the canonical JSON of ``{"llm": client.name, "chat": chat, "params": params}``.
One small JSON file per key at ``<cache_dir>/<key[:2]>/<key>.json``, written atomically. Only
successful completions are stored; a corrupt or unreadable file counts as a miss and is
overwritten by the next success.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

from dissect.artifacts import canonical_json, hash_config, write_text
from dissect.describe.llm.base import Chat, Completion, GenerationParams, LLMClient


def cache_key(llm_name: str, chat: Chat, params: GenerationParams,
              decoding: dict | None = None) -> str:
    """sha256 hex of (LLM name, chat, decoding params, client-level decoding settings)."""
    key = {"llm": llm_name, "chat": list(chat), "params": params.to_dict()}
    if decoding:
        key["decoding"] = dict(decoding)
    return hash_config(key)


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

    def _read(self, key: str) -> str | None:
        p = self.path_for(key)
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        text = entry.get("text") if isinstance(entry, dict) else None
        return text if isinstance(text, str) and entry.get("key") == key else None

    def _write(self, key: str, chat: Chat, params: GenerationParams, text: str) -> None:
        entry = {
            "key": key,
            "llm": self.name,
            "chat": list(chat),
            "params": params.to_dict(),
            "text": text,
        }
        write_text(self.path_for(key), canonical_json(entry) + "\n")

    def generate(self, chats: Sequence[Chat], params: GenerationParams) -> list[Completion]:
        """Hits come back with ``cached=True``; misses go to the inner client in one batch."""
        chats = list(chats)
        out: list[Completion | None] = [None] * len(chats)
        decoding = getattr(self.client, "decoding", None)
        keys = [cache_key(self.name, c, params, decoding) for c in chats]
        todo = []
        for i, key in enumerate(keys):
            text = self._read(key)
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
                if comp.ok:
                    self._write(keys[i], chats[i], params, comp.text)
                out[i] = comp
        return out  # type: ignore[return-value]
