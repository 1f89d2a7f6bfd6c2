"""LLM clients for neuron summaries: OpenAI-compatible HTTP, local transformers (incl. GGUF),
rule-based (no LLM), and a disk cache in front of any of them. All follow
:class:`~dissect.describe.llm.base.LLMClient`: ``generate(chats, params) -> [Completion]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dissect.describe.llm.base import Chat, Completion, GenerationParams, LLMClient, Message
from dissect.describe.llm.cache import CachedClient, cache_key
from dissect.describe.llm.http import OpenAIHTTPClient
from dissect.describe.llm.local import SMOLLM2_GGUF, TransformersClient, smollm2_gguf_path
from dissect.describe.llm.rules import (
    BOTTOM_HEADER,
    TOP_HEADER,
    RuleBasedClient,
    describe_contrast,
    format_captions,
    parse_captions,
)

CLIENT_KINDS = ("openai", "transformers", "rules")


def build_client(kind: str, cache_dir: str | Path | None = None, **kwargs: Any) -> LLMClient:
    """Make a client by kind: ``"openai"`` -> :class:`OpenAIHTTPClient` (``base_url``, ``model``,
    ...), ``"transformers"`` -> :class:`TransformersClient` (``source``, ``gguf_file``, ...),
    ``"rules"`` -> :class:`RuleBasedClient`. With ``cache_dir`` the client is wrapped in a
    :class:`CachedClient`. Other keyword arguments go to the client's constructor."""
    if kind == "openai":
        client: LLMClient = OpenAIHTTPClient(**kwargs)
    elif kind == "transformers":
        client = TransformersClient(**kwargs)
    elif kind == "rules":
        client = RuleBasedClient(**kwargs)
    else:
        raise ValueError(f"unknown LLM client kind {kind!r}; expected one of {CLIENT_KINDS}")
    return CachedClient(client, cache_dir) if cache_dir is not None else client


__all__ = [
    "BOTTOM_HEADER",
    "CLIENT_KINDS",
    "SMOLLM2_GGUF",
    "TOP_HEADER",
    "CachedClient",
    "Chat",
    "Completion",
    "GenerationParams",
    "LLMClient",
    "Message",
    "OpenAIHTTPClient",
    "RuleBasedClient",
    "TransformersClient",
    "build_client",
    "cache_key",
    "describe_contrast",
    "format_captions",
    "parse_captions",
    "smollm2_gguf_path",
]
