"""API keys: format, hashing, lookup (with a short per-instance cache)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from shared.errors import Forbidden, Unauthenticated
from shared.store.base import ApiKeyRecord, Store, Tenant

KEY_PREFIX = "mak_"
# Disabling a tenant or revoking a key takes effect on every warm instance within this
# many seconds; in exchange a warm request skips two store reads.
AUTH_CACHE_S = 1.0


def generate_key() -> str:
    """A new random API key (shown once; only its hash is stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 of the key: keys are 256-bit random, so no slow KDF is needed."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer`` or ``x-api-key``."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return (x_api_key or "").strip() or None


class Authenticator:
    """Turns an API key into its tenant, or raises 401/403."""

    def __init__(self, store: Store, cache_s: float = AUTH_CACHE_S) -> None:
        self.store = store
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, Tenant]] = {}
        self._lock = threading.Lock()

    def issue_key(self, tenant_id: str) -> str:
        """Create and store a key for the tenant; returns the key itself."""
        key = generate_key()
        self.store.put_api_key(ApiKeyRecord(key_hash=hash_key(key), tenant_id=tenant_id, prefix=key[:10]))
        return key

    def cached_tenant(self, key: str | None) -> Tenant | None:
        """The tenant of ``key`` when this instance looked it up less than ``cache_s`` ago
        (no store call: safe on the event loop), checked like :meth:`tenant_for`; else None."""
        if not key:
            return None
        hit = self._cache.get(hash_key(key))
        if hit is None or time.monotonic() - hit[0] >= self.cache_s:
            return None
        return _live(hit[1])

    def tenant_for(self, key: str | None) -> Tenant:
        """The tenant of a live key (sync; run it in a worker thread)."""
        if not key:
            raise Unauthenticated("send your API key as 'Authorization: Bearer KEY' or 'x-api-key: KEY'")
        digest = hash_key(key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit and now - hit[0] < self.cache_s:
            tenant = hit[1]
        else:
            record = self.store.get_api_key(digest)
            # the lookup is by hash; compare again in constant time so no timing tells
            if record is None or not hmac.compare_digest(record.key_hash, digest) or record.revoked:
                raise Unauthenticated("unknown or revoked API key")
            found = self.store.get_tenant(record.tenant_id)
            if found is None:
                raise Unauthenticated("the key's tenant no longer exists")
            tenant = found
            with self._lock:
                self._cache[digest] = (now, tenant)
        return _live(tenant)


def _live(tenant: Tenant) -> Tenant:
    """``tenant``, or 403 when it is disabled."""
    if tenant.disabled:
        raise Forbidden(f"tenant {tenant.id} is disabled")
    return tenant


def check_team_allowed(tenant: Tenant, team: str) -> None:
    """403 when the tenant may not use ``team``."""
    if tenant.teams is not None and team not in tenant.teams:
        raise Forbidden(f"tenant {tenant.id} may not use team {team!r} (allowed: {', '.join(tenant.teams)})")
