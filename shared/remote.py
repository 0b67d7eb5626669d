"""Teams served by other functions (``MULTIAGENT_TEAM_URLS``): where they are and how a call
gets there.

The HTTP hop uses one keep-alive ``aiohttp`` session per instance: under 32 concurrent
requests httpx's pool collapsed to ~830 req/s with +154 ms p99 here, aiohttp held ~5,300.
A ``lambda://FUNCTION`` URL goes through the platform transport of :mod:`shared.hops`, and
the platform identity of the hop (a Google ID token on Cloud Run) is added to every one.

A team-to-team call (:meth:`RemoteTeams.post`) carries only its own single-use hop
credential (:meth:`shared.envelope.Envelope.for_hop`): never the client's key or session.
The gateway's raw relay of a client's own call is ``shared.http.teams.forward``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio

from shared.envelope import HEADER as ENVELOPE_HEADER
from shared.envelope import Envelope, Keyring, KeySource
from shared.errors import PROBLEM_TYPES, ConfigurationError, ProblemError, ToolFailure, Unavailable
from shared.observability.tracing import outgoing_headers as outgoing_trace_headers

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.secrets import CachedSecrets

# (method, url, headers, body) -> (status, headers, body): a platform transport (shared/hops)
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "server", "date"}


class RemoteTeams:
    """The other functions' teams, the hop's identity and transport, and the signing keys."""

    def __init__(self, settings: Settings, secrets: CachedSecrets) -> None:
        from shared.hops import platform_hops

        self.settings = settings
        self.urls = settings.team_urls
        self.keys = KeySource(secrets, distributed=settings.distributed)
        self.identity, self.transport = platform_hops(settings)
        self._session: Any = None

    def is_remote(self, team: str) -> bool:
        """True when ``team`` is served by another function."""
        return team in self.urls

    async def keyring(self) -> Keyring:
        """The signing keys (the secret store is read in a worker thread, through its cache)."""
        return await anyio.to_thread.run_sync(self.keys.keyring)

    async def client(self) -> Any:
        """The keep-alive ``aiohttp`` session, opened on first use."""
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(total=self.settings.operation_deadline_s + 10),
            )
        return self._session

    async def identity_headers(self, team: str) -> dict[str, str]:
        """Platform identity for the hop (a Google ID token on Cloud Run); none locally. Where
        the settings ask for one (``MULTIAGENT_TEAM_AUTH``), a hop never goes without it."""
        if self.identity is None:
            if self.settings.team_auth not in ("", "none"):
                raise ConfigurationError(f"MULTIAGENT_TEAM_AUTH={self.settings.team_auth} but no platform "
                                         "identity is available for team hops (shared.hops)")
            return {}
        headers: dict[str, str] = await self.identity(self.urls[team])
        return headers

    def platform_transport(self, team: str) -> Any:
        """The transport for a non-HTTP team URL (``lambda://``)."""
        if self.transport is None:
            raise Unavailable(f"team {team!r} is at {self.urls[team]!r} but no transport for it is available",
                              retry_after_s=2)
        return self.transport

    async def post(self, team: str, operation: str, payload: dict[str, Any], envelope: Envelope,
                   request_id: str) -> dict[str, Any]:
        """Run ``team/operation`` in its function under a fresh hop credential; its 200 body,
        or the problem it answered as a :class:`ProblemError`."""
        import aiohttp

        base = self.urls.get(team)
        if base is None:
            raise ToolFailure(f"unknown team {team!r}")
        data = json.dumps(payload).encode()
        # This hop's own credential: this team, this operation, these bytes, once, for seconds.
        # Only these headers leave: never the client's Authorization / X-Api-Key / session.
        credential = envelope.for_hop(await self.keyring(), operation, data)
        headers = {"content-type": "application/json", ENVELOPE_HEADER: credential.token, "x-request-id": request_id,
                   **outgoing_trace_headers(), **(await self.identity_headers(team))}
        url = f"{base.rstrip('/')}/v1/teams/{team}/{operation}"
        try:
            if not base.startswith("http"):  # lambda://FUNCTION: a platform transport (shared/hops)
                status, _, raw = await self.platform_transport(team)("POST", url, headers, data)
                body = json.loads(raw)
            else:
                session = await self.client()
                async with session.post(url, data=data, headers=headers) as resp:
                    status, body = resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise Unavailable(f"team {team!r} could not be reached: {exc}", retry_after_s=2) from None
        if status != 200:
            raise problem_from(status, body if isinstance(body, dict) else {})
        return dict(body)

    async def close(self) -> None:
        """Close the keep-alive session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def problem_from(status: int, body: dict[str, Any]) -> ProblemError:
    """Rebuild the problem a team answered with (its class from the slug, its members kept)."""
    slug = str(body.get("type", "")).rsplit("/", 1)[-1]
    cls = next((c for c in PROBLEM_TYPES if c.slug == slug), None) or next(
        (c for c in PROBLEM_TYPES if c.status == status), ProblemError)
    extra = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail", "instance", "request_id")}
    exc = cls.__new__(cls)
    ProblemError.__init__(exc, str(body.get("detail") or f"the team answered {status}"), **extra)
    if "retry_after_s" in extra:
        exc.retry_after_s = extra["retry_after_s"]  # type: ignore[attr-defined]
    return exc


__all__ = ["HOP_HEADERS", "RemoteTeams", "problem_from"]
