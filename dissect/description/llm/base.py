"""The LLM client protocol shared by every client (HTTP, local transformers, rule-based).

A prompt is a chat: a list of ``{"role": "system"|"user"|"assistant", "content": str}``.
Clients take a batch of chats and return one :class:`Completion` per chat, in order, never
raising for a single failed call: the failure is recorded in ``Completion.error`` so a run goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

Message = dict[str, str]
Chat = list[Message]


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. Temperature 0 (greedy) by default; the seed is always recorded.

    Attributes:
        temperature: 0 means greedy decoding.
        max_tokens: maximum new tokens per completion.
        top_p: nucleus sampling mass (ignored when greedy).
        seed: sampling seed (recorded in every output even when greedy).
    """

    temperature: float = 0.0
    max_tokens: int = 96
    top_p: float = 1.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Completion:
    """One chat's result.

    Attributes:
        text: the generated text ("" on failure).
        llm: the name of the LLM that wrote it (client kind and model), e.g.
            ``"transformers:SmolLM2-135M-Instruct (Q4_1 GGUF)"``; never empty.
        error: None on success, else a short description of the failure (after retries).
        cached: True when served from the disk cache.
    """

    text: str
    llm: str
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class LLMClient(Protocol):
    """What every client provides."""

    #: Stable identity of client + model, used in outputs and in cache keys.
    name: str

    def generate(self, chats: Sequence[Chat], params: GenerationParams) -> list[Completion]:
        """One completion per chat, in order; failures are recorded, not raised."""
        ...


class TooManyLLMFailures(RuntimeError):
    """More LLM calls of a stage failed than ``llm.max_failed_fraction`` allows."""


def check_failures(stage: str, client_name: str, errors: Sequence[str], total: int,
                   max_fraction: float, what: str = "neurons") -> None:
    """Raise :class:`TooManyLLMFailures` when ``len(errors) / total > max_fraction``.

    Args:
        stage: the stage name, for the message.
        client_name: the LLM client's name.
        errors: one error text per failed item (after the client's own retries).
        total: items sent to the LLM.
        max_fraction: tolerated failed fraction, in [0, 1].
        what: what the items are ("LLM neurons", "LLM phrasings"), for the message.
    """
    if not errors or total <= 0 or len(errors) / total <= max_fraction:
        return
    raise TooManyLLMFailures(
        f"[{stage}] {len(errors)} of {total} {what} failed at {client_name} "
        f"({len(errors) / total:.0%}, more than llm.max_failed_fraction={max_fraction:g}); "
        f"first error: {errors[0]}. Successful calls are cached: fix the server (or raise "
        "llm.max_failed_fraction) and rerun the same command; only the failed calls are repeated")
