"""``/v1/teams``: the catalog, and ``POST /v1/teams/{team}/{operation}``.

An operation call is read here (body limit, hop credential or API key, tenant, session,
``Idempotency-Key``, ``Accept: text/event-stream``) and run by the operation service
(:mod:`shared.operations`), which validates the input once and records the outcome. A team
served by another function (``MULTIAGENT_TEAM_URLS``) gets the request relayed unchanged
(:func:`forward`); that function audits it, so the gateway records it only when it never
got there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from shared.envelope import HEADER as ENVELOPE_HEADER
from shared.envelope import EnvelopeRefused
from shared.errors import Unavailable, recording_failure
from shared.http.request import (
    authenticate,
    check_declared_length,
    envelope_from,
    headers_of,
    raw_body,
    read_json,
    request_key,
)
from shared.observability.tracing import outgoing_headers as outgoing_trace_headers
from shared.operations import OperationOutcome, OperationRequest
from shared.remote import HOP_HEADERS
from shared.runtime import Runtime

if TYPE_CHECKING:
    from shared.operations import OperationResult

_FORWARDED_HEADERS = ("authorization", "x-api-key", "content-type", "idempotency-key", "x-session-id",
                      "x-request-id", "traceparent", "tracestate", "accept", "prefer", ENVELOPE_HEADER)

PATH = "/v1/teams/{team}/{operation}"


def routes(runtime: Runtime) -> list[Route]:
    """The catalog and operation routes."""
    settings = runtime.settings
    ops = runtime.operations

    async def list_teams(request: Request) -> Response:
        return JSONResponse({"teams": [t.describe() for t in runtime.catalog]})

    async def get_team(request: Request) -> Response:
        return JSONResponse(runtime.catalog.team(request.path_params["team"]).describe())

    async def invoke(request: Request) -> Response:
        outcome = OperationOutcome(request.path_params["team"], request.path_params["operation"])
        streaming = False
        try:
            with recording_failure(outcome):
                response = await _invoke(request, outcome)
            streaming = isinstance(response, StreamingResponse)  # it records its outcome when it ends
            outcome.status = response.status_code
            return response
        finally:
            if not streaming:
                finish(request, outcome)

    def finish(request: Request, outcome: OperationOutcome) -> None:
        outcome.finish()
        # a call the gateway relayed is recorded by the team function that ran it (one fact,
        # one metric line), unless it never got there
        if runtime.remote.is_remote(outcome.team) and outcome.problem is None:
            return
        ops.record(outcome, request.state.request_id)

    async def _invoke(request: Request, outcome: OperationOutcome) -> Response:
        team = runtime.catalog.team(request.path_params["team"])
        op = team.operation(request.path_params["operation"])
        request_id = request.state.request_id
        check_declared_length(request, settings.max_body_bytes)
        # A team-to-team hop carries a single-use hop credential (403 when forged, expired,
        # widened, too deep, a cycle, or not for this team, operation and body); without an
        # API key it names the tenant, and then it opens no client session.
        envelope = await envelope_from(runtime, request, team.name, op.name)
        key = request_key(request)
        if envelope is not None and key is None:
            if headers_of(request).get("x-session-id"):
                raise EnvelopeRefused("a team-to-team hop cannot open a client session (X-Session-Id)")
            tenant = await ops.tenant_of(envelope)
            request.state.tenant = tenant
        else:
            tenant = await authenticate(runtime, request, key)
            if envelope is not None and envelope.tenant != tenant.id:
                raise EnvelopeRefused("the envelope belongs to another tenant")
        outcome.tenant = tenant
        if runtime.remote.is_remote(team.name):
            return await forward(runtime, request, team.name)  # the team's function claims the credential
        if envelope is not None:
            await ops.claim_hop(envelope)  # single use: a replay is 403 before anything runs or is charged
        body = await read_json(request, settings.max_body_bytes)
        parsed = ops.parse_input(team, op, body)  # the one validation of the body
        from shared import sessions
        from shared.http.sse import event_stream, wants_event_stream

        call = OperationRequest(tenant, team, op, body, request_id, envelope,
                                session_id=sessions.session_id_from(headers_of(request)),
                                idempotency_key=headers_of(request).get("idempotency-key"))
        if wants_event_stream(request):
            async def work(emit: Any) -> dict[str, Any]:
                call.events = emit
                step = {"team": team.name, "operation": op.name, "request_id": request_id}
                await emit("step.started", step)
                with recording_failure(outcome, catch=BaseException):
                    result = await ops.invoke(call, outcome, parsed)
                await emit("step.completed", {**step, "status": "succeeded", "output": result.body.get("output"),
                                              "usage": result.body.get("usage")})
                return result.body

            async def finished() -> None:
                if outcome.status is None:
                    outcome.status = 200
                finish(request, outcome)

            return event_stream(work, request_id, on_close=finished)
        result: OperationResult = await ops.invoke(call, outcome, parsed)
        return JSONResponse(result.body, headers=result.headers)

    return [
        Route("/v1/teams", list_teams, methods=["GET"]),
        Route("/v1/teams/{team}", get_team, methods=["GET"]),
        Route(PATH, invoke, methods=["POST"]),
    ]


async def forward(runtime: Runtime, request: Request, team: str) -> Response:
    """Send the request unchanged to the team's function and relay its answer. The body is
    read under the same running limit as a local team's (413 ``payload-too-large`` as soon
    as it passes ``max_body_bytes``, nothing more read; the response then closes the
    connection, ``shared.http_limits``), so a remote team costs the gateway no more memory."""
    import aiohttp

    remote = runtime.remote
    headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_HEADERS}
    headers["x-request-id"] = request.state.request_id
    headers.update(outgoing_trace_headers())  # this hop continues the caller's trace
    headers.update(await remote.identity_headers(team))
    url = remote.urls[team].rstrip("/") + request.url.path
    body = await raw_body(request, runtime.settings.max_body_bytes)  # 413 past max_body_bytes, no further read
    if not url.startswith("http"):  # lambda://FUNCTION: a platform transport (shared/hops)
        status, resp_headers, content = await remote.platform_transport(team)("POST", url, headers, body)
        out = {k: v for k, v in resp_headers.items() if k.lower() not in HOP_HEADERS}
        return Response(content, status_code=status, headers=out)
    session = await remote.client()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            content = await resp.read()
            out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS}
            return Response(content, status_code=resp.status, headers=out_headers)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(f"team {team!r} could not be reached: {exc}", retry_after_s=2) from exc


__all__ = ["PATH", "forward", "routes"]
