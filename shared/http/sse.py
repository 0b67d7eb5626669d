"""Server-Sent Events for ``Accept: text/event-stream`` on an operation or a run.

The work runs in its own task and reports through an :data:`~shared.agent.EventSink`; the
response streams each event as it happens (``event: NAME`` / ``data: JSON``, with an
``id``), then ``done`` carrying the same body as the non-streaming answer, or ``error``
carrying the problem+json. A comment line every :data:`KEEPALIVE_S` keeps proxies from
closing a quiet stream. If the client goes away, the work is cancelled, so its model call
is cancelled and its budget reservation released.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from shared.errors import ProblemError, Unavailable
from shared.http.request import headers_of
from shared.store.base import StoreUnavailable

log = logging.getLogger("multiagent.sse")

KEEPALIVE_S = 15.0
EVENT_TYPES = ("step.started", "model.delta", "tool.called", "step.completed", "usage", "done", "error")

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


def wants_event_stream(request: Request) -> bool:
    """True when the client asked for ``text/event-stream``."""
    return "text/event-stream" in (headers_of(request).get("accept") or "").lower()


def frame(event_id: int, event: str, data: Any) -> bytes:
    """One SSE frame (JSON data on a single line)."""
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def problem_of(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The problem+json body for an error raised by streamed work."""
    if isinstance(exc, StoreUnavailable):
        exc = Unavailable(f"the state store is unreachable: {exc}", retry_after_s=2)
    if not isinstance(exc, ProblemError):
        log.error("streamed work failed (%s): %s", request_id, exc, exc_info=exc)
        exc = ProblemError("an unexpected error occurred; quote the request id when reporting it")
    body = exc.to_problem()
    body["request_id"] = request_id
    return body


def event_stream(work: Callable[[Emit], Awaitable[dict[str, Any]]], request_id: str,
                 headers: dict[str, str] | None = None,
                 on_close: Callable[[], Awaitable[None]] | None = None) -> StreamingResponse:
    """A streaming response that runs ``work(emit)`` and sends its events, then ``done``."""
    queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()

    async def emit(event: str, data: dict[str, Any]) -> None:
        await queue.put((event, data))

    async def produce() -> None:
        try:
            body = await work(emit)
            await queue.put(("done", body))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an `error` event
            await queue.put(("error", problem_of(exc, request_id)))
        finally:
            await queue.put(None)

    async def stream() -> AsyncIterator[bytes]:
        task = asyncio.get_running_loop().create_task(produce())
        n = 0
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    break
                n += 1
                yield frame(n, item[0], item[1])
        finally:
            with anyio.CancelScope(shield=True):  # runs even when the client went away mid-stream
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                if on_close is not None:
                    await on_close()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})})


__all__ = ["EVENT_TYPES", "event_stream", "frame", "problem_of", "wants_event_stream"]
