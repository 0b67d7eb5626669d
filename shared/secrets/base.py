"""The secret-store protocol and a per-instance TTL cache in front of any backend."""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

from shared.errors import MultiAgentError

ANTHROPIC_API_KEY = "anthropic-api-key"
INTERNAL_SIGNING_KEY = "internal-signing-key"
ADMIN_KEY = "admin-key"  # env backend: MULTIAGENT_ADMIN_KEY; cloud: the deployment's secret


class SecretUnavailable(MultiAgentError):
    """The secret store could not be reached."""


@runtime_checkable
class SecretStore(Protocol):
    """Reads named secrets. Names are kebab-case (``anthropic-api-key``)."""

    def get(self, name: str) -> str | None:
        """The secret's current value, None when it does not exist; raises
        :class:`SecretUnavailable` when the backend cannot be reached."""


class CachedSecrets:
    """A TTL cache so a warm instance does not pay a round trip per request; a rotated
    secret is picked up within ``ttl_s``, or at once through :meth:`refresh`."""

    def __init__(self, backend: SecretStore, ttl_s: float = 300.0) -> None:
        self.backend = backend
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        """The cached value, fetched again once older than the TTL."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
        if hit and now - hit[0] < self.ttl_s:
            return hit[1]
        value = self.backend.get(name)
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def refresh(self, name: str | None = None) -> None:
        """Forget one cached secret (or all), e.g. after an authentication failure."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)
