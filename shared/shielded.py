"""Store writes that must finish even when the calling task is cancelled.

Settling a reservation (money spent), releasing one (money held) and writing an audit
batch cannot be left half-done because a client went away, a deadline passed or the
server is shutting down. ``anyio.CancelScope(shield=True)`` alone does not cover it:
it shields from anyio cancel scopes but not from a native ``Task.cancel()`` (uvicorn
cancels in-flight requests at the end of its graceful-shutdown period, and
``asyncio.run`` cancels every task left), and a worker-thread job cancelled before it
starts never runs. :func:`run_to_completion` runs the write in a thread, keeps waiting
through any number of cancellations, and re-raises the cancellation once it is done.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


async def run_to_completion(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, finished whatever cancellation arrives meanwhile."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, functools.partial(fn, *args))
    cancelled = False
    with anyio.CancelScope(shield=True):  # anyio-level cancellation: not delivered at all
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:  # native cancellation: noted, honoured after the write
                cancelled = True
            except Exception:  # noqa: BLE001 - the write's own error, re-raised below by result()
                break
    if cancelled:
        raise asyncio.CancelledError
    return future.result()


__all__ = ["run_to_completion"]
