"""Google ID tokens for gateway → Cloud Run team calls (``MULTIAGENT_TEAM_AUTH=google-id-token``).

The token comes from ``google.oauth2.id_token.fetch_id_token``: on Cloud Run, the metadata
server's identity endpoint for the function's own service account (``GCE_METADATA_HOST``
and ``GCE_METADATA_IP`` point google-auth at another server); with
``GOOGLE_APPLICATION_CREDENTIALS`` naming a service-account key, a self-signed exchange.
One token per audience (the team service's origin) is cached until shortly before it
expires, so a warm gateway fetches one per team per hour.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from shared.errors import Unavailable

HEADER = "x-serverless-authorization"
_REFRESH_BEFORE_S = 300.0
_FALLBACK_LIFETIME_S = 600.0


def audience_for(url: str) -> str:
    """The ID-token audience Cloud Run accepts for ``url``: its ``scheme://host``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read, not verified: we minted nothing, we only cache)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class GoogleIdTokens:
    """``identity_headers`` for :class:`~shared.remote.RemoteTeams`: ``{x-serverless-authorization: Bearer …}``."""

    def __init__(self, request: Any = None) -> None:
        self._request = request
        self._tokens: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def _transport_request(self) -> Any:
        if self._request is None:
            import google.auth.transport.requests

            self._request = google.auth.transport.requests.Request()
        return self._request

    def token(self, audience: str) -> str:
        """A valid ID token for ``audience`` (cached; blocking on a miss)."""
        now = time.time()
        with self._lock:
            hit = self._tokens.get(audience)
        if hit and hit[0] - _REFRESH_BEFORE_S > now:
            return hit[1]
        import google.auth.exceptions
        import google.oauth2.id_token

        try:
            token = google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
                self._transport_request(), audience
            )
        except google.auth.exceptions.GoogleAuthError as exc:
            raise Unavailable(f"no Google ID token for {audience}: {exc}", retry_after_s=2) from None
        expiry = token_expiry(token) or now + _FALLBACK_LIFETIME_S
        with self._lock:
            self._tokens[audience] = (expiry, token)
            self.fetches += 1
        return str(token)

    async def __call__(self, url: str) -> dict[str, str]:
        """The identity header for a call to ``url``."""
        audience = audience_for(url)
        with self._lock:
            hit = self._tokens.get(audience)
        if hit and hit[0] - _REFRESH_BEFORE_S > time.time():
            token = hit[1]
        else:
            token = await asyncio.to_thread(self.token, audience)
        return {HEADER: f"Bearer {token}"}
