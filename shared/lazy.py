"""A value built on first use, once, whichever thread asks first.

Cloud clients are made this way so a cold start pays for an SDK only when the first call
needs it, and concurrent first calls do not build two clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """``Lazy(build).get()`` calls ``build`` once; an injected ``value`` is used as is."""

    def __init__(self, build: Callable[[], T], value: T | None = None) -> None:
        self._build = build
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value, built now if it does not exist yet (double-checked under a lock)."""
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value
