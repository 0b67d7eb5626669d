"""Gateway → team routing: in-process, or over HTTP when ``MULTIAGENT_TEAM_URLS`` names
the team's function. The same object gives tools a team caller (``consult_team``), so a
team-to-team call takes exactly the path a client's call would.

The HTTP hop uses one keep-alive ``aiohttp`` session per instance: under 32 concurrent
requests httpx's pool collapsed to ~830 req/s with +154 ms p99 here, aiohttp held ~5,300.

Every team-to-team call (``consult_team``, a run's steps) runs under a budget envelope
(``shared.envelope``). An HTTP hop carries a fresh *hop credential* in
``X-Multiagent-Envelope`` (:meth:`Envelope.for_hop`): bound to the team, the operation and
the SHA-256 of the exact body sent, accepted for 30 s at most, and single use (the callee
claims its ``jti`` in the store, :meth:`TeamRouter.claim_hop`). It authenticates the hop on
its own, which is how a run resumed by another instance (or a queued continuation), holding
no API key, still reaches remote teams: each step's hop is minted when it is sent. The
client's ``Authorization``/``X-Api-Key`` never leaves the gateway on a hop, and its budget
is the caller's remaining run/operation budget, never the tenant's cap. An in-process hop
never leaves the process: it passes the :class:`Envelope` itself, checked without a
signature or a claim (:func:`shared.envelope.check`).
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
from shared.envelope import Envelope, EnvelopeRefused, Keyring, KeySource, check, replay_marker, verify
from shared.errors import (
    PROBLEM_TYPES,
    ConfigurationError,
    Forbidden,
    PayloadTooLarge,
    ProblemError,
    ToolFailure,
    Unavailable,
    recording_failure,
)
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
        """Platform identity for the hop (a Google ID token on Cloud Run); none locally. Where
        the settings ask for one (``MULTIAGENT_TEAM_AUTH``), a hop never goes without it."""
        provider = self.runtime.extensions.get("identity_headers")
        if provider is None:
            if self.runtime.settings.team_auth not in ("", "none"):
                raise ConfigurationError(f"MULTIAGENT_TEAM_AUTH={self.runtime.settings.team_auth} but no platform "
                                         "identity is installed for team hops (shared.hops.install)")
            return {}
        headers: dict[str, str] = await provider(self.urls[team])
        return headers

    async def forward(self, request: Request, team: str) -> Response:
        """Send the request unchanged to the team's function and relay its answer. The body
        is read under the same running limit as a local team's (413 ``payload-too-large`` as
        soon as it passes ``max_body_bytes``, nothing more read; the response then closes the
        connection, ``shared.http_limits``), so a remote team costs the gateway no more memory."""
        import aiohttp

        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_HEADERS}
        headers["x-request-id"] = request.state.request_id
        headers.update(outgoing_trace_headers())  # this hop continues the caller's trace
        headers.update(await self.identity_headers(team))
        url = self.urls[team].rstrip("/") + request.url.path
        body = await self.raw_body(request)  # counted as it arrives: 413 past max_body_bytes, no further read
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

    async def envelope_from(self, request: Request, team: str | None,
                            operation: str | None = None) -> Envelope | None:
        """The verified envelope of an incoming call (None without one; 403 when refused).

        A call of ``team``/``operation`` needs a hop credential for exactly that team, that
        operation and the SHA-256 of the raw body received (read here, within the body limit,
        and kept for the handler), not past its ``exp``. Single use is claimed separately,
        where the operation runs (:meth:`claim_hop`): a gateway relaying the hop to the team's
        function checks it too, and the function claims it. Without ``team`` (resuming a
        run) only an origin envelope is wanted."""
        token = request.headers.get(ENVELOPE_HEADER)
        if not token:
            return None
        keyring = await self.keyring()
        if team is None:
            return verify(token, keyring, tenant_id=None, team=None)
        if operation is None:
            raise TypeError("an operation call's envelope is checked against its operation")
        body = await self.raw_body(request)
        return verify(token, keyring, tenant_id=None, team=team, operation=operation, body=body)

    async def raw_body(self, request: Request) -> bytes:
        """The request's raw body (413 past ``max_body_bytes``), kept on the request so the
        handler reads the same bytes the hop credential was checked against."""
        cached: bytes | None = getattr(request, "_body", None)
        if cached is not None:
            return cached
        limit = self.runtime.settings.max_body_bytes
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is over the {limit}-byte limit", limit_bytes=limit)
            chunks.append(chunk)
        request._body = b"".join(chunks)  # Request.stream()/body() serve these bytes from now on
        return request._body

    async def claim_hop(self, envelope: Envelope) -> None:
        """Use a verified hop credential up: the first claim of its ``jti`` wins (atomic on
        every store); any later one is a replay, 403, before anything runs or is charged."""
        marker, expires_at = replay_marker(envelope)
        try:
            first = await anyio.to_thread.run_sync(self.runtime.store.claim_marker, envelope.tenant, marker,
                                                   expires_at)
        except StoreUnavailable as exc:
            raise Unavailable(f"cannot check the hop credential: {exc}", retry_after_s=2) from exc
        if not first:
            raise EnvelopeRefused("the hop credential was already used (a replay)")

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

    async def tenant_remaining_micros(self, tenant: Tenant, team: str) -> int:
        """What the tenant can still spend on ``team`` right now (day, month and team windows,
        settled and reserved spend deducted): the most a call without a run may hand on."""
        from shared.budget import window_limits

        limits = window_limits(tenant, team, time.time())
        try:
            states = await anyio.to_thread.run_sync(self.runtime.store.get_windows, tenant.id,
                                                    [w.key for w in limits])
        except StoreUnavailable as exc:
            raise Unavailable(f"cannot read the tenant's budget: {exc}", retry_after_s=2) from exc
        used = {w.key: w.spent_micros + w.reserved_micros for w in states}
        return max(0, min(w.limit_micros - used.get(w.key, 0) for w in limits))

    async def remaining_micros(self, envelope: Envelope) -> int:
        """What the envelope (and every ancestor) still has: budget minus settled and reserved spend."""
        lineage = envelope.lineage()
        states = await anyio.to_thread.run_sync(self.runtime.store.get_windows, envelope.tenant,
                                                [e.window_key for e in lineage])
        used = {w.key: w.spent_micros + w.reserved_micros for w in states}
        return max(0, min(e.budget_micros - used.get(e.window_key, 0) for e in lineage))

    # -- building and running an operation call -------------------------------------------------
    async def build_call(self, *, tenant: Tenant, team: Team, op: Operation, body: dict[str, Any],
                         request_id: str, envelope: Envelope | None, credentials: dict[str, str] | None = None,
                         idempotency_key: str | None = None, history: list[dict[str, Any]] | None = None,
                         events: EventSink | None = None, event_context: dict[str, Any] | None = None) -> AgentCall:
        """The :class:`AgentCall` of one operation, bound to its envelope (if any): the ledger
        gets the run id, the guard the envelope's budget windows, ``consult_team`` a caller
        that signs narrower envelopes. ``credentials`` is accepted and ignored: the client's
        key never travels on a hop."""
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
        call.call_team = self._caller(tenant, request_id, envelope, team.name, call.nested)
        return call

    async def call_operation(self, *, tenant: Tenant, team: str, operation: str, payload: dict[str, Any],
                             envelope: Envelope, request_id: str, credentials: dict[str, str] | None = None,
                             events: EventSink | None = None,
                             event_context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``team/operation`` under ``envelope`` where the team lives; the operation's 200
        body, or its problem as a :class:`ProblemError`. Used by the orchestrator's steps (a
        remote step gets a fresh hop credential each time, so a resumed run works too).
        ``credentials`` is ignored: no client key travels on a hop."""
        if self.is_remote(team):
            return await self._call_http(team, operation, payload, envelope, request_id)
        if team not in self.runtime.catalog:
            raise ToolFailure(f"unknown team {team!r}")
        return await self._call_in_process(tenant, team, operation, payload, envelope, request_id,
                                           events, event_context)

    def _caller(self, tenant: Tenant, request_id: str, parent: Envelope | None, origin_team: str,
                nested: NestedUsage | None) -> TeamCaller:
        """A ``consult_team`` caller: signs a child of ``parent`` (or of an origin envelope
        minted for this call, holding what the tenant can still spend, not its whole cap)
        with what is left of its budget, and counts the callee's usage."""
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
                        budget_micros=await self.tenant_remaining_micros(tenant, origin_team),
                        deadline=time.time() + self.runtime.settings.operation_deadline_s, chain=(origin_team,)))
                base = origin[0]
            child = base.child(keyring, team, await self.remaining_micros(base),
                               deadline=time.time() + self.runtime.settings.operation_deadline_s)
            sub_id = f"{request_id}.{uuid.uuid4().hex[:6]}"
            try:
                if self.is_remote(team):
                    body = await self._call_http(team, operation, payload, child, sub_id)
                else:
                    body = await self._call_in_process(tenant, team, operation, payload, child, sub_id)
            except ProblemError as exc:
                raise ToolFailure(f"{team} refused ({exc.status} {exc.slug}): {exc.detail}") from None
            if nested is not None:
                nested.add(body.get("usage") or {})
            return dict(body["output"])

        return call_team

    async def _call_in_process(self, tenant: Tenant, team: str, operation: str,
                               payload: dict[str, Any], envelope: Envelope, request_id: str,
                               events: EventSink | None = None,
                               event_context: dict[str, Any] | None = None) -> dict[str, Any]:
        from pydantic import ValidationError

        from shared.agent import run_operation
        from shared.errors import ValidationFailed

        # The Envelope object never left this process: its claims are checked like a remote
        # hop's (deadline, depth, tenant, addressee, cycle); no signature, no single-use claim.
        check(envelope, tenant_id=tenant.id, team=team)
        team_def = self.runtime.catalog.team(team)
        op = team_def.operation(operation)
        try:
            call = await self.build_call(tenant=tenant, team=team_def, op=op, body=payload, request_id=request_id,
                                         envelope=envelope, events=events,
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
                         request_id: str) -> dict[str, Any]:
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
                status, _, raw = await self._transport(team)("POST", url, headers, data)
                body = json.loads(raw)
            else:
                session = await self._client()
                async with session.post(url, data=data, headers=headers) as resp:
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
