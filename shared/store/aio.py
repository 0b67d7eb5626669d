"""Store calls from async code: on the store's threads, a store outage as the contract's 503.

Every store method is blocking (SQLite, boto3, the Firestore client), so async code hands
it to a thread, here and nowhere else:

- :func:`in_thread` runs it and waits (a cancellation stops the wait, not the work);
- :func:`store_call` is that, with a :class:`~shared.store.base.StoreUnavailable` turned
  into :class:`~shared.errors.Unavailable` (``retry_after_s=2``) on the way to a caller;
- :func:`finished` and :func:`run_to_completion` wait for the end whatever cancellation
  arrives meanwhile, for writes that cannot be left half-known: a reservation, a settle,
  a release, an audit batch.

A store whose call takes microseconds and can tell, without waiting, that it would have
to wait offers ``run_now(fn, args)`` (SQLite): the call then runs at once on the loop,
and only goes to a thread when it would wait. Everything else goes to a thread.

The threads are a plain executor (``loop.run_in_executor``): about a third of the event
loop's time per hand-off that ``anyio.to_thread`` takes (its cancel scope and capacity
limiter), which a budgeted call pays three times. A store that runs one call at a time
anyway says so with ``parallel_calls = 1`` (SQLite: one connection under a lock) and gets
a thread of its own, so its calls queue on the executor instead of waking many threads
to wait on its lock.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio

from shared.errors import Unavailable
from shared.store.base import StoreUnavailable

T = TypeVar("T")

# A network store's call mostly waits on the wire: as many in flight as anyio allowed.
DEFAULT_PARALLEL_CALLS = 40

_executors: dict[int, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def executor_for(fn: Callable[..., Any]) -> ThreadPoolExecutor:
    """The threads for ``fn``: its store's own when it is a method of a store that declares
    ``parallel_calls``, the shared pool otherwise."""
    owner = getattr(fn, "__self__", None)
    parallel = getattr(owner, "parallel_calls", None)
    key = id(owner) if isinstance(parallel, int) else 0
    pool = _executors.get(key)
    if pool is None:
        with _executors_lock:
            pool = _executors.get(key)
            if pool is None:
                workers = parallel if isinstance(parallel, int) and key else DEFAULT_PARALLEL_CALLS
                pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="store")
                _executors[key] = pool
                if key:  # the store's own threads end with it
                    weakref.finalize(owner, _retire, key, pool)
    return pool


def _retire(key: int, pool: ThreadPoolExecutor) -> None:
    with _executors_lock:
        if _executors.get(key) is pool:
            del _executors[key]
    pool.shutdown(wait=False)


def _run_now(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    """``fn(*args)`` right here when its store can run it without waiting (SQLite's
    ``run_now``): ``(True, result)``; else ``(False, None)``."""
    run_now = getattr(getattr(fn, "__self__", None), "run_now", None)
    return run_now(fn, args) if run_now is not None else (False, None)


def _submit(fn: Callable[..., T], args: tuple[Any, ...]) -> asyncio.Future[T]:
    call = functools.partial(fn, *args) if args else fn
    return asyncio.get_running_loop().run_in_executor(executor_for(fn), call)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a store thread (or at once, when it cannot wait: see the module docstring)."""
    done, result = _run_now(fn, args)
    if done:
        return result  # type: ignore[no-any-return]
    return await _submit(fn, args)


async def store_call(fn: Callable[..., T], *args: Any, doing: str = "") -> T:
    """``fn(*args)`` on a store thread; a store outage is a 503 that says what was being done."""
    try:
        return await in_thread(fn, *args)
    except StoreUnavailable as exc:
        what = f"cannot {doing}: " if doing else ""
        raise Unavailable(f"{what}the state store is unreachable: {exc}", retry_after_s=2) from exc


async def finished(fn: Callable[..., T], *args: Any) -> tuple[T, bool]:
    """``fn(*args)`` on a store thread, waited for to its end through any cancellation:
    its result, and whether the caller was cancelled meanwhile (the caller decides what
    that means, then re-raises). ``anyio.CancelScope(shield=True)`` alone is not enough:
    it does not stop a native ``Task.cancel()`` (uvicorn's at the end of a graceful
    shutdown, ``asyncio.run``'s on the tasks left)."""
    done, result = _run_now(fn, args)
    if done:
        return result, False
    future = _submit(fn, args)
    cancelled = False
    with anyio.CancelScope(shield=True):  # anyio-level cancellation: not delivered at all
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:  # native cancellation: noted, honoured after the write
                cancelled = True
            except Exception:  # noqa: BLE001 - the call's own error, re-raised below by result()
                break
    return future.result(), cancelled


async def run_to_completion(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a store thread, finished whatever cancellation arrives meanwhile,
    which is re-raised once it is done."""
    result, cancelled = await finished(fn, *args)
    if cancelled:
        raise asyncio.CancelledError
    return result


__all__ = ["executor_for", "finished", "in_thread", "run_to_completion", "store_call"]
