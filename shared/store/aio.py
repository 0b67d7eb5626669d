"""Store calls from async code: in a worker thread, a store outage as the contract's 503.

The one place a :class:`~shared.store.base.StoreUnavailable` becomes
:class:`~shared.errors.Unavailable` (``retry_after_s=2``) on the way to a caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from shared.errors import Unavailable
from shared.store.base import StoreUnavailable

T = TypeVar("T")


async def store_call(fn: Callable[..., T], *args: Any, doing: str = "") -> T:
    """``fn(*args)`` in a worker thread; a store outage is a 503 that says what was being done."""
    try:
        return await anyio.to_thread.run_sync(fn, *args)
    except StoreUnavailable as exc:
        what = f"cannot {doing}: " if doing else ""
        raise Unavailable(f"{what}the state store is unreachable: {exc}", retry_after_s=2) from exc


__all__ = ["store_call"]
