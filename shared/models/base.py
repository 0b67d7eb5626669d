"""The model-provider protocol: one Messages API call, in, out, and its usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from shared.errors import ProblemError


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
    tools: Sequence[dict[str, Any]] = ()
    tool_choice: dict[str, Any] | None = None
    timeout_s: float = 60.0


@dataclass
class ModelResponse:
    """A Messages API answer reduced to what the agent loop needs."""

    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    usage: Usage
    elapsed_s: float = 0.0  # how long the provider took (set by the instrumentation)
    id: str | None = None  # the provider's id of this answer (Messages API ``message.id``), for traces


def failed_request(error: ProblemError, *, may_have_billed: bool, retry: bool,
                   retry_after_s: float | None = None) -> ProblemError:
    """Say of a provider error whether its request may have been billed (a timeout or a
    broken connection after sending: yes; an error answer or a refused connection: no)
    and whether another attempt may help. The budget guard charges or releases the
    attempt's reservation on that word; an error without it counts as maybe billed."""
    error.may_have_billed = may_have_billed  # type: ignore[attr-defined]
    error.retry = retry  # type: ignore[attr-defined]
    error.retry_delay_s = retry_after_s  # type: ignore[attr-defined]  # the provider's own hint, unrounded
    return error


def may_have_billed(error: BaseException) -> bool:
    """True unless the provider said the failed request was never billed."""
    return bool(getattr(error, "may_have_billed", True))


@runtime_checkable
class ModelProvider(Protocol):
    """Something that answers Messages API calls."""

    name: str

    async def create(self, request: ModelRequest) -> ModelResponse:
        """One model turn, one provider request (no retries inside: the budget guard
        retries, each attempt under its own reservation). Raises ModelError (502),
        Unavailable (503) or Timeout (504), marked with :func:`failed_request`.
        ``usage`` is passed on as the provider reported it; the guard validates it."""

    async def count_tokens(self, request: ModelRequest) -> int | None:
        """The provider's own count of the request's input tokens, or None when it has no
        counting endpoint (the guard then keeps the byte bound)."""

    def resolve_model(self, model: str) -> str:
        """The model id this provider really bills (``offline`` for the offline one)."""

    async def aclose(self) -> None:
        """Close the provider's connections (on the event loop that used them)."""
