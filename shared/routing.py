"""Gateway → team routing: in-process, or over HTTP when ``MULTIAGENT_TEAM_URLS`` names
the team's function. The same object gives tools a team caller (``consult_team``), so a
team-to-team call takes exactly the path a client's call would.

The HTTP hop uses one keep-alive ``aiohttp`` session per instance: under 32 concurrent
requests httpx's pool collapsed to ~830 req/s with +154 ms p99 here, aiohttp held ~5,300.

Every team-to-team call (``consult_team``, a run's steps) carries a signed budget envelope
(``shared.envelope``) in ``X-Multiagent-Envelope``; the callee verifies it, whether the hop
is HTTP or in-process, so both paths refuse the same forged, expired or widened calls.
A verified envelope also authenticates the hop on its own: a run resumed by another
instance (or a queued continuation) holds no API key, only the run's tenant id.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from shared.envelope import HEADER as ENVELOPE_HEADER
from shared.envelope import Envelope, EnvelopeRefused, Keyring, KeySource, verify
from shared.errors import PROBLEM_TYPES, Forbidden, ProblemError, ToolFailure, Unavailable, recording_failure
from shared.observability.instrument import operation_finished
from shared.observability.tracing import outgoing_headers as outgoing_trace_headers
from shared.store.base import StoreUnavailable, Tenant

if TYPE_CHECKING:
    from shared.agent import AgentCall, EventSink, NestedUsage
    from shared.catalog import Operation, Team
    from shared.runtime import Runtime
    from shared.tools.base import TeamCaller

_FORWARDED_HEADERS = ("authorization", "x-api-key", "content-type", "idempotency-key", "x-session-id",
                      "x-request-id", "traceparent", "tracestate", "accept", "prefer", ENVELOPE_HEADER)
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "server", "date"}


class TeamRouter:
    """Decides where a team runs and carries calls there."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.urls = runtime.settings.team_urls
        self._session: Any = None
        settings = runtime.settings
        self.keys = KeySource(runtime.secrets, distributed=bool(settings.team_urls or settings.team))

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
        headers.update(outgoing_trace_headers())  # this hop continues the caller's trace
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

    # -- envelopes ------------------------------------------------------------------------
    async def keyring(self) -> Keyring:
        """The signing keys (the secret store is read in a worker thread, through its cache)."""
        return await anyio.to_thread.run_sync(self.keys.keyring)

    async def envelope_from(self, request: Request, team: str | None) -> Envelope | None:
        """The verified envelope of an incoming call to ``team`` (None without one; 403 when refused)."""
        token = request.headers.get(ENVELOPE_HEADER)
        if not token:
            return None
        return verify(token, await self.keyring(), tenant_id=None, team=team)

    async def tenant_of(self, envelope: Envelope) -> Tenant:
        """The live tenant a verified envelope names (a hop authenticated by its envelope)."""
        try:
            tenant = await anyio.to_thread.run_sync(self.runtime.store.get_tenant, envelope.tenant)
        except StoreUnavailable as exc:
            raise Unavailable(f"cannot check the envelope's tenant: {exc}", retry_after_s=2) from exc
        if tenant is None:
            raise EnvelopeRefused("the envelope's tenant does not exist")
        if tenant.disabled:
            raise Forbidden(f"tenant {tenant.id} is disabled")
        return tenant

    async def remaining_micros(self, envelope: Envelope) -> int:
        """What the envelope (and every ancestor) still has: budget minus settled and reserved spend."""
        lineage = envelope.lineage()
        states = await anyio.to_thread.run_sync(self.runtime.store.get_windows, envelope.tenant,
                                                [e.window_key for e in lineage])
        used = {w.key: w.spent_micros + w.reserved_micros for w in states}
        return max(0, min(e.budget_micros - used.get(e.window_key, 0) for e in lineage))

    # -- building and running an operation call -------------------------------------------------
    async def build_call(self, *, tenant: Tenant, team: Team, op: Operation, body: dict[str, Any],
                         request_id: str, envelope: Envelope | None, credentials: dict[str, str],
                         idempotency_key: str | None = None, history: list[dict[str, Any]] | None = None,
                         events: EventSink | None = None, event_context: dict[str, Any] | None = None) -> AgentCall:
        """The :class:`AgentCall` of one operation, bound to its envelope (if any): the ledger
        gets the run id, the guard the envelope's budget windows, ``consult_team`` a caller
        that signs narrower envelopes."""
        from shared.agent import AgentCall
        from shared.budget import CallIdentity

        runtime = self.runtime
        chain = envelope.chain if envelope is not None else (team.name,)
        call = AgentCall(
            store=runtime.store, settings=runtime.settings,
            identity=CallIdentity(tenant=tenant, team=team.name, operation=op.name, request_id=request_id,
                                  run_id=envelope.run_id if envelope else "", chain=chain),
            body=body, idempotency_key=idempotency_key, team_def=team, operation_def=op,
            input=op.input.model_validate(body), provider=await runtime.provider(),
            model=runtime.model_for(team.model), history=list(history or []), events=events,
            event_context=dict(event_context or {}),
            run_windows=envelope.windows() if envelope is not None else [],
            low_budget_model=team.on_low_budget_model,
        )
        call.call_team = self._caller(tenant, credentials, request_id, envelope, team.name, call.nested)
        return call

    async def call_operation(self, *, tenant: Tenant, team: str, operation: str, payload: dict[str, Any],
                             envelope: Envelope, request_id: str, credentials: dict[str, str] | None = None,
                             events: EventSink | None = None,
                             event_context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``team/operation`` under ``envelope`` where the team lives; the operation's 200
        body, or its problem as a :class:`ProblemError`. Used by the orchestrator's steps."""
        credentials = dict(credentials or {})
        if self.is_remote(team):
            return await self._call_http(team, operation, payload, envelope, credentials, request_id)
        if team not in self.runtime.catalog:
            raise ToolFailure(f"unknown team {team!r}")
        return await self._call_in_process(tenant, credentials, team, operation, payload, envelope, request_id,
                                           events, event_context)

    def _caller(self, tenant: Tenant, credentials: dict[str, str], request_id: str, parent: Envelope | None,
                origin_team: str, nested: NestedUsage | None) -> TeamCaller:
        """A ``consult_team`` caller: signs a child of ``parent`` (or of an origin envelope
        minted for this call) with what is left of its budget, and counts the callee's usage."""
        origin: list[Envelope] = []

        async def call_team(team: str, operation: str, payload: dict[str, Any],
                            chain: tuple[str, ...]) -> dict[str, Any]:
            if not self.is_remote(team) and team not in self.runtime.catalog:
                raise ToolFailure(f"unknown team {team!r}")
            keyring = await self.keyring()
            base = parent
            if base is None:
                if not origin:
                    origin.append(Envelope.root(
                        keyring, tenant=tenant.id, run_id=request_id,
                        budget_micros=min(tenant.daily_limit_micros, tenant.monthly_limit_micros),
                        deadline=time.time() + self.runtime.settings.operation_deadline_s, chain=(origin_team,)))
                base = origin[0]
            child = base.child(keyring, team, await self.remaining_micros(base),
                               deadline=time.time() + self.runtime.settings.operation_deadline_s)
            sub_id = f"{request_id}.{uuid.uuid4().hex[:6]}"
            try:
                if self.is_remote(team):
                    body = await self._call_http(team, operation, payload, child, credentials, sub_id)
                else:
                    body = await self._call_in_process(tenant, credentials, team, operation, payload, child, sub_id)
            except ProblemError as exc:
                raise ToolFailure(f"{team} refused ({exc.status} {exc.slug}): {exc.detail}") from None
            if nested is not None:
                nested.add(body.get("usage") or {})
            return dict(body["output"])

        return call_team

    async def _call_in_process(self, tenant: Tenant, credentials: dict[str, str], team: str, operation: str,
                               payload: dict[str, Any], envelope: Envelope, request_id: str,
                               events: EventSink | None = None,
                               event_context: dict[str, Any] | None = None) -> dict[str, Any]:
        from pydantic import ValidationError

        from shared.agent import run_operation
        from shared.errors import ValidationFailed

        # Verified like a remote hop, so both paths refuse the same envelopes.
        envelope = verify(envelope.token, await self.keyring(), tenant_id=tenant.id, team=team)
        team_def = self.runtime.catalog.team(team)
        op = team_def.operation(operation)
        try:
            call = await self.build_call(tenant=tenant, team=team_def, op=op, body=payload, request_id=request_id,
                                         envelope=envelope, credentials=credentials, events=events,
                                         event_context=event_context)
        except ValidationError as exc:
            raise ValidationFailed(f"input does not match {team}/{operation}",
                                   errors=[{"loc": ["body", *e["loc"]], "msg": e["msg"]}
                                           for e in exc.errors(include_url=False)]) from None
        # no HTTP request of its own: audited and measured here (see shared.observability.instrument)
        outcome: dict[str, Any] = {"team": team, "operation": operation, "tenant": tenant, "call": call}
        started = time.perf_counter()
        try:
            with recording_failure(outcome):
                result = await run_operation(call)
            outcome["status"], outcome["output"] = 200, result.get("output")
        finally:
            if "status" in outcome:
                outcome["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
                operation_finished(self.runtime.store, outcome, request_id,
                                   serve_mode=bool(self.runtime.extensions.get("serve_mode")))
        return result

    async def _call_http(self, team: str, operation: str, payload: dict[str, Any], envelope: Envelope,
                         credentials: dict[str, str], request_id: str) -> dict[str, Any]:
        import aiohttp

        base = self.urls.get(team)
        if base is None:
            raise ToolFailure(f"unknown team {team!r}")
        headers = {**credentials, "content-type": "application/json", ENVELOPE_HEADER: envelope.token,
                   "x-request-id": request_id, **outgoing_trace_headers(), **(await self.identity_headers(team))}
        url = f"{base.rstrip('/')}/v1/teams/{team}/{operation}"
        try:
            if not base.startswith("http"):  # lambda://FUNCTION: a platform transport (shared/hops)
                status, _, raw = await self._transport(team)("POST", url, headers, json.dumps(payload).encode())
                body = json.loads(raw)
            else:
                session = await self._client()
                async with session.post(url, data=json.dumps(payload), headers=headers) as resp:
                    status, body = resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise Unavailable(f"team {team!r} could not be reached: {exc}", retry_after_s=2) from None
        if status != 200:
            raise problem_from(status, body if isinstance(body, dict) else {})
        return dict(body)

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
