"""The ASGI app factory: the contract's HTTP API for the gateway and for each team.

Starlette rather than FastAPI: the catalog already gives us pydantic models and the
OpenAPI document, and a team function's cold start is what users pay for (FastAPI's
import added ~0.3 s to first 200 in our measurement; Starlette adds almost nothing).

The request stack, outermost first: error boundary (every failure becomes
problem+json with the request id, never a traceback), request id + access log, CORS,
then the routes. Body limits are checked before a body is read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import Settings
from shared.errors import (
    PROBLEM_TYPES,
    InvalidJSON,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    Unavailable,
    ValidationFailed,
    recording_failure,
)
from shared.observability.access import check_path, logged_path
from shared.observability.logging import configure, log_event
from shared.pricing import usd
from shared.runtime import Runtime
from shared.store.base import StoreUnavailable, Tenant

if TYPE_CHECKING:
    from pydantic import ValidationError

    from shared.catalog import Team

log = logging.getLogger("multiagent.http")

PROBLEM_JSON = "application/problem+json"
WARM_UP_DELAY_S = 0.3


def problem_response(exc: ProblemError, request_id: str) -> JSONResponse:
    """The problem+json answer for ``exc``."""
    headers = {"x-request-id": request_id, **exc.headers()}
    body = exc.to_problem()
    body["request_id"] = request_id
    return JSONResponse(body, status_code=exc.status, headers=headers, media_type=PROBLEM_JSON)


class ErrorBoundary:
    """Outermost middleware: request id, access log, and no error escapes as a traceback.
    A path over ``max_path_bytes`` is 414 before routing; the log line carries a cut path."""

    def __init__(self, app: ASGIApp, max_path_bytes: int = Settings.max_path_bytes) -> None:
        self.app = app
        self.max_path_bytes = max_path_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.replace("-", "").replace("_", "").isalnum() else ""
        request_id = request_id or "req_" + uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            check_path(scope, self.max_path_bytes)
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the boundary: everything becomes problem+json
            if status["sent"]:
                raise
            if isinstance(exc, StoreUnavailable):
                exc = Unavailable(f"the state store is unreachable: {exc}", retry_after_s=2)
            if not isinstance(exc, ProblemError):
                log.exception("unhandled error on %s %s", scope.get("method"), logged_path(scope))
                exc = ProblemError("an unexpected error occurred; quote the request id when reporting it")
            await problem_response(exc, request_id)(scope, receive, send_with_id)
        finally:
            log_event(log, "request", request_id=request_id, method=scope.get("method"), path=logged_path(scope),
                      status=status["code"], duration_ms=round((time.perf_counter() - started) * 1000, 2))


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, enforcing the size limit before and while reading."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}", limit_bytes=limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the {limit}-byte limit", limit_bytes=limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        raise InvalidJSON(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, an integer of over 4,300 digits
        raise InvalidJSON(f"the body is not valid JSON: {str(exc)[:200]}") from None
    # Only a body with many brackets can be deep: the count is one C pass, the walk is rare.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth_over(body, MAX_JSON_DEPTH):
        raise InvalidJSON(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


MAX_JSON_DEPTH = 64  # no operation input comes close; deeper only costs CPU and stack downstream


def json_depth_over(value: Any, limit: int) -> bool:
    """True when ``value`` nests more than ``limit`` arrays/objects deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def request_key(request: Request) -> str | None:
    """The API key the caller sent, if any."""
    from shared.auth import key_from_headers

    return key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))


async def authenticate(runtime: Runtime, request: Request) -> Tenant:
    """The calling tenant (401/403 otherwise; 503 when the store is down)."""
    try:
        tenant: Tenant = await anyio.to_thread.run_sync(runtime.auth.tenant_for, request_key(request))
    except StoreUnavailable as exc:
        raise Unavailable(f"cannot check the API key: the state store is unreachable ({exc})", retry_after_s=2) from exc
    request.state.tenant = tenant
    return tenant


def _validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors(include_url=False)]


def create_app(runtime: Runtime | None = None, *, serve_mode: bool = False) -> Starlette:
    """Build the ASGI app for the gateway (all teams) or one team (``MULTIAGENT_TEAM``)."""
    runtime = runtime or Runtime()
    settings: Settings = runtime.settings
    configure(settings.log_level)
    from shared.routing import TeamRouter

    router = TeamRouter(runtime)
    runtime.extensions["team_router"] = router  # for route extensions (orchestrated runs)

    def team_or_404(name: str) -> Team:
        return runtime.catalog.team(name)

    async def health(request: Request) -> Response:
        from shared.observability.health import check_health

        body, status = await check_health(runtime, deep=request.query_params.get("deep") == "1",
                                          key=request_key(request))  # optional: a tenant's budget headroom
        # The first probe of a new instance starts loading the model SDK, after it is answered.
        return JSONResponse(body, status_code=status, background=BackgroundTask(runtime.warm_up))

    async def list_teams(request: Request) -> Response:
        return JSONResponse({"teams": [t.describe() for t in runtime.catalog]})

    async def get_team(request: Request) -> Response:
        return JSONResponse(team_or_404(request.path_params["team"]).describe())

    async def invoke(request: Request) -> Response:
        started = time.perf_counter()
        outcome: dict[str, Any] = {"team": request.path_params["team"], "operation": request.path_params["operation"]}
        try:
            with recording_failure(outcome):
                response = await _invoke(request, outcome)
            outcome["status"] = response.status_code
            return response
        finally:
            outcome["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            outcome["started"] = started
            if not outcome.get("streaming"):  # a stream runs the hooks when it ends
                await run_operation_hooks(request, outcome)

    async def run_operation_hooks(request: Request, outcome: dict[str, Any]) -> None:
        for hook in OPERATION_HOOKS:
            try:
                await hook(runtime, request, outcome)
            except Exception:  # noqa: BLE001 - observability must never fail a call
                log.exception("operation hook %s failed", getattr(hook, "__name__", hook))

    async def _invoke(request: Request, outcome: dict[str, Any]) -> Response:
        team = team_or_404(request.path_params["team"])
        op = team.operation(request.path_params["operation"])
        request_id = request.state.request_id
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {settings.max_body_bytes}",
                                  limit_bytes=settings.max_body_bytes)
        # A team-to-team hop carries a single-use hop credential (403 when forged, expired,
        # widened, too deep, a cycle, or not for this team, operation and body); without an
        # API key it names the tenant, and then it opens no client session.
        envelope = await router.envelope_from(request, team.name, op.name)
        if envelope is not None and request_key(request) is None:
            if request.headers.get("x-session-id"):
                from shared.envelope import EnvelopeRefused

                raise EnvelopeRefused("a team-to-team hop cannot open a client session (X-Session-Id)")
            tenant = await router.tenant_of(envelope)
            request.state.tenant = tenant
        else:
            tenant = await authenticate(runtime, request)
            if envelope is not None and envelope.tenant != tenant.id:
                from shared.envelope import EnvelopeRefused

                raise EnvelopeRefused("the envelope belongs to another tenant")
        outcome["tenant"] = tenant
        if router.is_remote(team.name):
            return await router.forward(request, team.name)  # the team's function claims the credential
        if envelope is not None:
            await router.claim_hop(envelope)  # single use: a replay is 403 before anything runs or is charged
        body = await read_json(request, settings.max_body_bytes)
        if not isinstance(body, dict):
            raise ValidationFailed("the body must be a JSON object", errors=[{"loc": ["body"], "msg": "not an object"}])
        # pydantic and the tool loop load on first use, not at cold start
        from pydantic import ValidationError

        from shared import sessions
        from shared.agent import run_operation
        from shared.sse import event_stream, wants_event_stream

        try:
            op.input.model_validate(body)
        except ValidationError as exc:
            raise ValidationFailed(f"input does not match {team.name}/{op.name}", errors=_validation_errors(exc)) \
                from None
        session_id = sessions.session_id_from(request.headers)
        history: list[dict[str, Any]] = []
        if session_id:
            history = sessions.as_model_messages(await sessions.load(runtime.store, tenant.id, session_id),
                                                 settings.session_token_budget)
        call = await router.build_call(tenant=tenant, team=team, op=op, body=body, request_id=request_id,
                                       envelope=envelope, history=history,
                                       idempotency_key=request.headers.get("idempotency-key"))
        outcome["call"] = call

        async def execute() -> tuple[dict[str, Any], dict[str, str]]:
            payload = await run_operation(call)  # the full body, as stored for idempotent replays
            outcome["output"] = payload.get("output")
            guard = call.guard
            assert guard is not None
            if call.replayed:
                return payload, {"idempotent-replayed": "true"}
            if session_id:
                output = payload["output"]
                await sessions.append_turn(
                    runtime.store, tenant.id, session_id, f"{team.name}/{op.name}: {json.dumps(body)}",
                    output["answer"] if op.name == "ask" and "answer" in output else json.dumps(output),
                    settings.session_token_budget)
            return payload, guard.headers()

        if wants_event_stream(request):
            async def work(emit: Any) -> dict[str, Any]:
                call.events = emit
                step = {"team": team.name, "operation": op.name, "request_id": request_id}
                await emit("step.started", step)
                with recording_failure(outcome, catch=BaseException):
                    payload, _ = await execute()
                await emit("step.completed", {**step, "status": "succeeded", "output": payload.get("output"),
                                              "usage": payload.get("usage")})
                return payload

            async def finished() -> None:
                outcome.setdefault("status", 200)
                outcome["duration_ms"] = round((time.perf_counter() - outcome["started"]) * 1000, 2)
                await run_operation_hooks(request, outcome)

            outcome["streaming"] = True
            return event_stream(work, request_id, on_close=finished)
        payload, headers = await execute()
        return JSONResponse(payload, headers=headers)

    async def usage(request: Request) -> Response:
        tenant = await authenticate(runtime, request)
        return JSONResponse(await anyio.to_thread.run_sync(usage_report, runtime, tenant))

    async def audit(request: Request) -> Response:
        tenant = await authenticate(runtime, request)
        try:
            limit = max(1, min(200, int(request.query_params.get("limit", "50"))))
        except ValueError:
            raise ValidationFailed("limit must be an integer", errors=[{"loc": ["query", "limit"],
                                                                       "msg": "not an integer"}]) from None
        before = request.query_params.get("before")
        from shared.observability.audit import page  # a cursor that survives events sharing one timestamp

        events, cursor = await anyio.to_thread.run_sync(page, runtime.store, tenant.id, limit, before)
        body: dict[str, Any] = {"events": [e.public() for e in events]}
        if cursor:
            body["next"] = cursor
        return JSONResponse(body)

    openapi_cache: dict[str, Any] = {}

    async def openapi(request: Request) -> Response:
        from shared.openapi import build_openapi, served_paths

        if "doc" not in openapi_cache:  # the catalog and routes are fixed for the instance's life
            openapi_cache["doc"] = build_openapi(runtime.catalog, settings.version, served=served_paths(request.app))
        return JSONResponse(openapi_cache["doc"])

    async def docs(request: Request) -> Response:
        from shared.observability.docs import docs_page  # page and assets load on the first request only

        return docs_page(request)

    async def docs_asset(request: Request) -> Response:
        from shared.observability.docs import docs_asset

        return docs_asset(request)

    async def problem_page(request: Request) -> Response:
        slug = request.path_params["slug"]
        for cls in PROBLEM_TYPES:
            if cls.slug == slug:
                return HTMLResponse(f"<!doctype html><title>{cls.title}</title><h1>{cls.status} {cls.title}</h1>"
                                    f"<p>Problem type <code>/problems/{slug}</code> of the multiagent-framework API."
                                    " The <code>detail</code> member of the response says what to change.</p>")
        raise NotFound(f"no problem type {slug!r}")

    async def not_found(request: Request) -> Response:
        _refuse_method(request)  # the catch-all also takes known paths asked with another method
        raise NotFound(f"no route for {request.method} {request.url.path}")

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/teams", list_teams, methods=["GET"]),
        Route("/v1/teams/{team}", get_team, methods=["GET"]),
        Route("/v1/teams/{team}/{operation}", invoke, methods=["POST"]),
        Route("/v1/usage", usage, methods=["GET"]),
        Route("/v1/audit", audit, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/assets/{name}", docs_asset, methods=["GET"]),
        Route("/problems/{slug}", problem_page, methods=["GET"]),
    ]
    for extend in EXTENSIONS:
        routes.extend(extend(runtime, serve_mode))
    routes.append(Route(CATCH_ALL, not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]))

    middleware = [Middleware(ErrorBoundary, max_path_bytes=settings.max_path_bytes)]
    middleware += [factory(runtime) for factory in MIDDLEWARE_EXTENSIONS]
    if settings.allowed_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.allowed_origins),
                                     allow_methods=["GET", "POST", "DELETE"], allow_headers=["*"],
                                     expose_headers=["x-request-id", "x-budget-remaining-usd", "retry-after"]))

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        # Load the model SDK soon after the server listens (or on the first /health), never
        # before: its import would compete with the first request for the GIL.
        asyncio.get_running_loop().call_later(WARM_UP_DELAY_S, runtime.warm_up)
        yield
        from shared.budget import drain_detached

        await drain_detached(runtime.settings.model_timeout_s)  # walked-away calls settle first
        await router.close()
        # The model client is left open: a background run still on this loop must be
        # cancelled (and so released for another instance), not fail on a closed client.

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={404: _not_found_handler, 405: _method_handler})
    app.state.runtime = runtime
    return app


async def _not_found_handler(request: Request, exc: Exception) -> Response:
    raise NotFound(f"no route for {request.method} {request.url.path}")


CATCH_ALL = "/{path:path}"


def _refuse_method(request: Request) -> None:
    """Raise :class:`MethodNotAllowed` when a route other than the catch-all serves this path."""
    allowed: set[str] = set()
    for route in request.app.routes:
        if getattr(route, "path", None) == CATCH_ALL:
            continue
        match, _ = route.matches(request.scope)  # PARTIAL: the path matches, the method does not
        if match is not Match.NONE:
            allowed |= getattr(route, "methods", None) or set()
    if allowed:
        allow = sorted(allowed)
        raise MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}; use {', '.join(allow)}",
                               allow=allow)


async def _method_handler(request: Request, exc: Exception) -> Response:
    _refuse_method(request)
    raise NotFound(f"{request.method} is not served on {request.url.path}")


# Route factories added by other modules (admin API, metrics, dashboard, runs):
# each is (runtime, serve_mode) -> list of routes. Registered at import of shared.extensions.
RouteFactory = Callable[[Runtime, bool], list[Route]]
EXTENSIONS: list[RouteFactory] = []
# Middleware factories (runtime) -> Middleware, placed inside the error boundary.
MIDDLEWARE_EXTENSIONS: list[Callable[[Runtime], Middleware]] = []
# Called after every operation call, success or failure, with
# outcome = {team, operation, status, duration_ms, tenant?, call? (AgentCall with .guard), problem?}.
OPERATION_HOOKS: list[Callable[[Runtime, Request, dict[str, Any]], Awaitable[None]]] = []


def usage_report(runtime: Runtime, tenant: Tenant) -> dict[str, Any]:
    """``GET /v1/usage``: settled spend per window and the month's ledger by team, day and model."""
    from shared.budget import day_key, month_key, reset_at, window_name

    now = time.time()
    keys = [day_key(now), month_key(now)] + [f"team:{t}:{day_key(now)}" for t in sorted(tenant.team_daily_limit_micros)]
    runtime.store.reclaim_expired(tenant.id, now)  # report what crashed instances no longer hold
    windows = {window_name(w.key): w for w in runtime.store.get_windows(tenant.id, keys)}
    month_start = month_key(now)[len("month:"):] + "-01"
    entries = runtime.store.list_ledger(tenant.id, since=month_start)
    by_team: dict[str, dict[str, Any]] = {}
    by_day: dict[str, dict[str, Any]] = {}
    by_model: dict[str, dict[str, Any]] = {}
    today = day_key(now)[len("day:"):]
    # Charged at the worst case because their outcome is unknown (crash, pause, timeout): part
    # of spent_usd, shown apart until a late settle replaces them by the real cost.
    unsettled = {"day": 0, "month": 0}
    for e in entries:
        for table, key, name in ((by_team, e.team, "team"), (by_day, e.at[:10], "day"), (by_model, e.model, "model")):
            row = table.setdefault(key, {name: key, "calls": 0, "input_tokens": 0, "output_tokens": 0, "micros": 0,
                                         "unsettled": 0})
            row["calls"] += 1
            row["input_tokens"] += e.input_tokens
            row["output_tokens"] += e.output_tokens
            row["micros"] += e.cost_micros
            row["unsettled"] += e.cost_micros if e.unsettled else 0
        if e.unsettled:
            unsettled["month"] += e.cost_micros
            unsettled["day"] += e.cost_micros if e.at[:10] == today else 0

    def rows(table: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**{k: v for k, v in r.items() if k not in ("micros", "unsettled")}, "cost_usd": usd(r["micros"]),
                 "unsettled_usd": usd(r["unsettled"])} for _, r in sorted(table.items())]

    def spent(name: str) -> float:
        return usd(windows[name].spent_micros) if name in windows else 0.0

    def window_row(name: str, limit_micros: int) -> dict[str, Any]:  # one budget window, for the dashboard
        w = windows.get(name)
        spent_m, reserved_m = (w.spent_micros, w.reserved_micros) if w else (0, 0)
        return {"window": name, "limit_usd": usd(limit_micros), "spent_usd": usd(spent_m),
                "unsettled_usd": usd(unsettled.get(name, 0)), "reserved_usd": usd(reserved_m),
                "remaining_usd": usd(max(0, limit_micros - spent_m - reserved_m)),
                "alert_at_usd": usd(round(limit_micros * tenant.alert_threshold)),
                "reset_at": reset_at("month:" if name == "month" else "day", now)}

    return {
        "tenant_id": tenant.id,
        "spent_usd": {"day": spent("day"), "month": spent("month")},
        "unsettled_usd": {"day": usd(unsettled["day"]), "month": usd(unsettled["month"])},
        "reserved_usd": {name: usd(w.reserved_micros) for name, w in windows.items()},
        "limits": {
            "daily_usd": usd(tenant.daily_limit_micros), "monthly_usd": usd(tenant.monthly_limit_micros),
            "rpm": tenant.rpm, "tpm": tenant.tpm, "alert_threshold": tenant.alert_threshold,
            "team_daily_usd": {t: usd(v) for t, v in tenant.team_daily_limit_micros.items()},
        },
        "windows": [window_row("day", tenant.daily_limit_micros), window_row("month", tenant.monthly_limit_micros)]
        + [window_row(f"team:{t}:day", v) for t, v in sorted(tenant.team_daily_limit_micros.items())],
        "by_team": rows(by_team),
        "by_day": rows(by_day),
        "by_model": rows(by_model),
    }


__all__ = ["EXTENSIONS", "MIDDLEWARE_EXTENSIONS", "OPERATION_HOOKS", "create_app", "problem_response", "usage_report"]
