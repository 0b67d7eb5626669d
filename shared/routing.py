"""Gateway → team routing: in-process, or over HTTP when ``MULTIAGENT_TEAM_URLS`` names
the team's function. The same object gives tools a team caller (``consult_team``), so a
team-to-team call takes exactly the path a client's call would.

The HTTP hop uses one keep-alive ``aiohttp`` session per instance: under 32 concurrent
requests httpx's pool collapsed to ~830 req/s with +154 ms p99 here, aiohttp held ~5,300.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import ProblemError, ToolFailure, Unavailable
from shared.store.base import Tenant

if TYPE_CHECKING:
    from shared.runtime import Runtime
    from shared.tools.base import TeamCaller

CHAIN_HEADER = "x-multiagent-chain"
_FORWARDED_HEADERS = ("authorization", "x-api-key", "content-type", "idempotency-key", "x-session-id",
                      "x-request-id", "traceparent", "tracestate", "accept", "prefer", "x-multiagent-envelope",
                      CHAIN_HEADER)
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "server", "date"}


class TeamRouter:
    """Decides where a team runs and carries calls there."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.urls = runtime.settings.team_urls
        self._session: Any = None

    def is_remote(self, team: str) -> bool:
        """True when ``team`` is served by another function."""
        return team in self.urls

    async def _client(self) -> Any:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(total=self.runtime.settings.operation_deadline_s + 10),
            )
        return self._session

    async def identity_headers(self, team: str) -> dict[str, str]:
        """Platform identity for the hop (a Google ID token on Cloud Run); none locally."""
        provider = self.runtime.extensions.get("identity_headers")
        return await provider(self.urls[team]) if provider else {}

    async def forward(self, request: Request, team: str) -> Response:
        """Send the request unchanged to the team's function and relay its answer."""
        import aiohttp

        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_HEADERS}
        headers["x-request-id"] = request.state.request_id
        headers.update(await self.identity_headers(team))
        url = self.urls[team].rstrip("/") + request.url.path
        body = await request.body()
        if not url.startswith("http"):  # lambda://FUNCTION: a platform transport (shared/hops)
            status, resp_headers, content = await self._transport(team)("POST", url, headers, body)
            out = {k: v for k, v in resp_headers.items() if k.lower() not in _HOP_HEADERS}
            return Response(content, status_code=status, headers=out)
        session = await self._client()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                content = await resp.read()
                out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP_HEADERS}
                return Response(content, status_code=resp.status, headers=out_headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"team {team!r} could not be reached: {exc}", retry_after_s=2) from exc

    def chain_from(self, request: Request, team: str) -> tuple[str, ...]:
        """The consultation chain this call is part of (ending with ``team``)."""
        raw = request.headers.get(CHAIN_HEADER, "")
        chain = tuple(p for p in raw.split(",") if p) if raw else ()
        return chain if chain and chain[-1] == team else chain + (team,)

    def caller(self, request: Request, tenant: Tenant, chain: tuple[str, ...]) -> TeamCaller:
        """A ``consult_team`` caller bound to this request's tenant and credentials."""
        credentials = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")}
        return self._caller(tenant, credentials, request.state.request_id)

    def _caller(self, tenant: Tenant, credentials: dict[str, str], request_id: str) -> TeamCaller:
        async def call_team(team: str, operation: str, payload: dict[str, Any], chain: tuple[str, ...]) -> dict:
            if self.is_remote(team):
                return await self._call_http(team, operation, payload, chain, credentials, request_id)
            if team in self.runtime.catalog:
                return await self._call_in_process(tenant, credentials, team, operation, payload, chain, request_id)
            raise ToolFailure(f"unknown team {team!r}")

        return call_team

    async def _call_in_process(self, tenant: Tenant, credentials: dict[str, str], team: str, operation: str,
                               payload: dict[str, Any], chain: tuple[str, ...], parent_request_id: str) -> dict:
        from shared.agent import AgentCall, run_operation
        from shared.budget import CallIdentity

        runtime = self.runtime
        team_def = runtime.catalog.team(team)
        op = team_def.operation(operation)
        call = AgentCall(
            store=runtime.store, settings=runtime.settings,
            identity=CallIdentity(tenant=tenant, team=team, operation=operation, chain=chain,
                                  request_id=f"{parent_request_id}.{uuid.uuid4().hex[:6]}"),
            body=payload, team_def=team_def, operation_def=op, input=op.input.model_validate(payload),
            provider=await runtime.provider(), call_team=self._caller(tenant, credentials, parent_request_id),
            model=runtime.model_for(team_def.model),
        )
        try:
            result = await run_operation(call)
        except ProblemError as exc:
            raise ToolFailure(f"{team} refused: {exc.detail}") from None
        return dict(result["output"])

    async def _call_http(self, team: str, operation: str, payload: dict[str, Any], chain: tuple[str, ...],
                         credentials: dict[str, str], request_id: str) -> dict[str, Any]:
        import aiohttp

        base = self.urls.get(team)
        if base is None:
            raise ToolFailure(f"unknown team {team!r}")
        headers = {**credentials, "content-type": "application/json", CHAIN_HEADER: ",".join(chain),
                   "x-request-id": f"{request_id}.{uuid.uuid4().hex[:6]}", **(await self.identity_headers(team))}
        url = f"{base.rstrip('/')}/v1/teams/{team}/{operation}"
        try:
            if not base.startswith("http"):  # lambda://FUNCTION: a platform transport (shared/hops)
                status, _, raw = await self._transport(team)("POST", url, headers, json.dumps(payload).encode())
                body = json.loads(raw)
            else:
                session = await self._client()
                async with session.post(url, data=json.dumps(payload), headers=headers) as resp:
                    status, body = resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, Unavailable) as exc:
            raise ToolFailure(f"team {team!r} could not be reached: {exc}") from None
        if status != 200:
            raise ToolFailure(f"{team} refused ({status}): {body.get('detail', body)}")
        return dict(body["output"])

    def _transport(self, team: str) -> Any:
        """The registered transport for a non-HTTP team URL (``runtime.extensions["team_transport"]``)."""
        transport = self.runtime.extensions.get("team_transport")
        if transport is None:
            raise Unavailable(f"team {team!r} is at {self.urls[team]!r} but no transport for it is registered",
                              retry_after_s=2)
        return transport

    async def close(self) -> None:
        """Close the keep-alive session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
