"""The model-provider protocol: one Messages API call, in, out, and its usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Usage:
    """Tokens of one or more model calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    def __iadd__(self, other: Usage) -> Usage:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cache_read_tokens += other.cache_read_tokens
        return self


@dataclass
class ModelRequest:
    """The parameters of one Messages API call."""

    model: str
    system: str
    messages: list[dict[str, Any]]
    max_tokens: int
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: dict[str, Any] | None = None
    timeout_s: float = 60.0


@dataclass
class ModelResponse:
    """A Messages API answer reduced to what the agent loop needs."""

    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    usage: Usage


@runtime_checkable
class ModelProvider(Protocol):
    """Something that answers Messages API calls."""

    name: str

    async def create(self, request: ModelRequest) -> ModelResponse:
        """One model turn. Raises ModelError (502), Unavailable (503) or Timeout (504)."""

    def resolve_model(self, model: str) -> str:
        """The model id this provider really bills (``offline`` for the offline one)."""

    async def aclose(self) -> None:
        """Close the provider's connections (on the event loop that used them)."""
