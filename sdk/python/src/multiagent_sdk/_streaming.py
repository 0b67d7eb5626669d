"""Server-Sent Events of an operation or a run (``Accept: text/event-stream``).

The server sends ``step.started``, ``model.delta``, ``tool.called``, ``step.completed`` and
``usage`` events as the work happens, then ``done`` (the same body as the non-streaming
answer) or ``error`` (a problem+json). Iterating a :class:`Stream` yields every event up to
and including ``done``; an ``error`` event is raised as the typed
:class:`~multiagent_sdk.APIStatusError` (``BudgetExceededError``, ``ModelError``...), and a
stream that ends before either is an :class:`~multiagent_sdk.APIConnectionError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import httpx

from ._base import Attempt
from ._exceptions import APIConnectionError, APITimeoutError, error_from_problem

__all__ = ["EVENT_TYPES", "AsyncStream", "SSEDecoder", "Stream", "StreamEvent"]

EVENT_TYPES = ("step.started", "model.delta", "tool.called", "step.completed", "usage", "done", "error")


@dataclass(frozen=True)
class StreamEvent:
    """One event: ``event`` is its name (``model.delta``...), ``data`` its JSON (wire names), ``id`` its number."""

    event: str
    data: Any
    id: str | None = None


class SSEDecoder:
    """Turns the lines of a ``text/event-stream`` body into events (comments and keep-alives skipped)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> StreamEvent | None:
        """One line (without its end); an event when the line ends one."""
        if not line:
            if not self._data and not self._event:
                return None
            raw = "\n".join(self._data)
            try:
                data: Any = json.loads(raw) if raw else None
            except ValueError:
                data = raw
            event = StreamEvent(self._event or "message", data, self._id)
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


class _StreamState:
    """What the sync and async streams share: the response, the decoder and the end rules."""

    def __init__(self, response: httpx.Response, attempt: Attempt | None) -> None:
        self.response = response
        self.retries = attempt.retries if attempt else 0
        self.idempotency_key = attempt.idempotency_key if attempt else None
        self.decoder = SSEDecoder()
        self.done: Any = None
        self.finished = False

    @property
    def request_id(self) -> str | None:
        """``x-request-id`` of the streaming answer."""
        value: str | None = self.response.headers.get("x-request-id")
        return value

    def take(self, line: str) -> StreamEvent | None:
        """Feed one line of the body (``""`` past its end); the event it ends, checked, else ``None``."""
        event = self.decoder.feed(line)
        if event is not None:
            self.check(event)
        return event

    def check(self, event: StreamEvent) -> None:
        """Raise an ``error`` event as its typed error; remember ``done``."""
        if event.event == "error":
            self.finished = True
            problem = event.data if isinstance(event.data, dict) else {"detail": str(event.data)}
            raise error_from_problem(problem, headers=self.response.headers)
        if event.event == "done":
            self.finished = True
            self.done = event.data

    def ended_early(self) -> APIConnectionError:
        self.finished = True
        return APIConnectionError(f"the event stream of {self.response.request.url} ended before its `done` event",
                                  request=self.response.request)

    def cut(self, exc: httpx.HTTPError) -> APIConnectionError:
        self.finished = True
        request = self.response.request
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"the event stream of {request.url} went quiet past the timeout", request=request)
        return APIConnectionError(f"the event stream of {request.url} was cut: {exc}", request=request)

    def final(self) -> Any:
        if self.done is None:
            raise self.ended_early()
        return self.done


async def _then_blank(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The body's lines, then the blank line that ends an event the body left open (as ``chain(lines, ("",))``)."""
    async for line in lines:
        yield line
    yield ""


class Stream:
    """The events of one streamed operation or run: iterate it, or call :meth:`final`.

    ``with framework.stream("finance", "analyze_investment", amount=1000, risk_tolerance="low") as events:``
    closes the connection at the end of the block (an unfinished stream cancels the work server side).
    """

    def __init__(self, response: httpx.Response, attempt: Attempt | None = None) -> None:
        self._state = _StreamState(response, attempt)
        self.response = response
        self._events = self._iterate()

    @property
    def request_id(self) -> str | None:
        """``x-request-id`` of the call; the ``done`` body's ``id`` for an operation."""
        return self._state.request_id

    @property
    def retries(self) -> int:
        """How many retries the request took before the stream began."""
        return self._state.retries

    @property
    def done(self) -> Any:
        """The ``done`` event's body once it arrived (the non-streaming answer), else ``None``."""
        return self._state.done

    def _iterate(self) -> Iterator[StreamEvent]:
        state = self._state
        try:
            for line in chain(self.response.iter_lines(), ("",)):
                if (event := state.take(line)) is not None:
                    yield event
                    if state.finished:
                        return
            raise state.ended_early()
        except httpx.HTTPError as exc:
            raise state.cut(exc) from exc
        finally:
            self.close()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        return next(self._events)

    def final(self) -> Any:
        """Read the rest of the stream; the ``done`` body (an ``error`` event raises)."""
        for _ in self:
            pass
        return self._state.final()

    def close(self) -> None:
        """Close the connection (the server cancels unfinished work and releases its reservation)."""
        self.response.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream:
    """The async twin of :class:`Stream`; the request is sent when iteration (or ``async with``) starts.

    ``async for event in framework.stream("finance", "analyze_investment", {...}):``
    """

    def __init__(self, connect: Callable[[], Awaitable[tuple[httpx.Response, Attempt]]]) -> None:
        self._connect = connect
        self._state: _StreamState | None = None
        self._events: AsyncIterator[StreamEvent] | None = None

    async def _open(self) -> _StreamState:
        if self._state is None:
            response, attempt = await self._connect()
            self._state = _StreamState(response, attempt)
        return self._state

    @property
    def response(self) -> httpx.Response | None:
        """The streaming response, once the request was sent."""
        return self._state.response if self._state else None

    @property
    def request_id(self) -> str | None:
        """``x-request-id`` of the call, once the request was sent."""
        return self._state.request_id if self._state else None

    @property
    def retries(self) -> int:
        """How many retries the request took before the stream began."""
        return self._state.retries if self._state else 0

    @property
    def done(self) -> Any:
        """The ``done`` event's body once it arrived, else ``None``."""
        return self._state.done if self._state else None

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        state = await self._open()
        try:
            async for line in _then_blank(state.response.aiter_lines()):
                if (event := state.take(line)) is not None:
                    yield event
                    if state.finished:
                        return
            raise state.ended_early()
        except httpx.HTTPError as exc:
            raise state.cut(exc) from exc
        finally:
            await state.response.aclose()

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._events is None:
            self._events = self._iterate()
        return await self._events.__anext__()

    async def final(self) -> Any:
        """Read the rest of the stream; the ``done`` body (an ``error`` event raises)."""
        async for _ in self:
            pass
        return (await self._open()).final()

    async def close(self) -> None:
        """Close the connection (the server cancels unfinished work and releases its reservation)."""
        if self._state is not None:
            await self._state.response.aclose()

    async def __aenter__(self) -> AsyncStream:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

