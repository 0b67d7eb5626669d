"""The observability extension of the app: middleware, operation hook and routes.

- :class:`ObservabilityMiddleware` (inside the error boundary): puts every request in a
  trace (incoming ``traceparent`` or a new one), collects its audit events and writes
  them in one store call after the response is sent.
- :func:`on_operation` (an ``OPERATION_HOOKS`` entry): the ``operation`` audit event,
  metrics and, in the cloud, the metric log line.
- :func:`observability_routes`: ``GET /metrics`` (serve mode), ``GET /v1/stats``,
  the dashboard (gateway only) and the admin views ``/v1/admin/overview`` and
  ``/v1/admin/tenants/{id}/usage|stats|audit``.

Registered by ``shared.extensions``. Like ``shared.admin`` this sits at the app's level
(it reuses ``shared.app.usage_report`` and ``authenticate``, imported when called).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import anyio
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.observability import audit, instrument, metrics, tracing
from shared.observability.stats import MAX_HOURS, operation_stats, since_iso
from shared.runtime import Runtime
from shared.store.base import Tenant

OPERATION_PREFIX = "/v1/teams/"
OPERATION_ROUTE = "/v1/teams/{team}/{operation}"  # the route template (http.route), as shared/app.py routes it


class ObservabilityMiddleware:
    """Trace context and batched audit writes for every HTTP request."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope.get("headers") or [] if k == b"traceparent"), b"").decode("latin-1")
        trace_token = tracing.activate(tracing.parse_traceparent(incoming) or tracing.new_trace())
        buffer, audit_token = audit.begin()
        path: str = scope.get("path", "")
        parts = path[len(OPERATION_PREFIX):].split("/") if path.startswith(OPERATION_PREFIX) else []
        prom = metrics.prometheus() if self.runtime.extensions.get("serve_mode") else None
        is_operation = len(parts) == 2 and scope.get("method") == "POST"
        if prom is not None and is_operation:
            prom.inflight.inc()
        try:
            if is_operation:
                # named and described per the OpenTelemetry HTTP server conventions: the route
                # template, never the concrete path, in the name and http.route
                attributes: dict[str, Any] = {"http.request.method": "POST", "http.route": OPERATION_ROUTE,
                                              "url.path": path, "url.scheme": scope.get("scheme", "http"),
                                              "multiagent.team": parts[0], "multiagent.operation": parts[1]}
                with tracing.span(f"POST {OPERATION_ROUTE}", kind="server", **attributes) as server_span:
                    await self.app(scope, receive, _status_recorder(send, server_span))
            else:
                await self.app(scope, receive, send)
        finally:
            if prom is not None and is_operation:
                prom.inflight.dec()
            audit.end(audit_token)
            tracing.deactivate(trace_token)
            if buffer.events:
                tenant = (scope.get("state") or {}).get("tenant")
                # after the response; finished even if the client left or shutdown cancels the task
                await audit.write(self.runtime.store, buffer.finalize(tenant))


def _status_recorder(send: Send, span: Any) -> Send:
    """``send`` that puts the response status on ``span`` (``http.response.status_code``;
    a 5xx is an error of the server span, a 4xx is not: the client's)."""
    if span is None:
        return send

    async def recording_send(message: Any) -> None:
        if message.get("type") == "http.response.start":
            try:
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    from opentelemetry.trace import Status, StatusCode

                    span.set_attribute("error.type", str(status))
                    span.set_status(Status(StatusCode.ERROR))
            except Exception:  # noqa: BLE001 - a span attribute never breaks a response
                pass
        await send(message)

    return recording_send


async def on_operation(runtime: Runtime, request: Request, outcome: dict[str, Any]) -> None:
    """``OPERATION_HOOKS`` entry: audit event, metrics, cloud metric line."""
    # a call the gateway forwarded is audited and measured by the team function that ran it (one fact,
    # one metric line), unless it never got there
    if outcome["team"] in runtime.settings.team_urls and outcome.get("problem") is None:
        return
    instrument.operation_finished(runtime.store, outcome, request.state.request_id,
                                  serve_mode=bool(runtime.extensions.get("serve_mode")))


def observability_middleware(runtime: Runtime) -> Middleware:
    """``MIDDLEWARE_EXTENSIONS`` entry."""
    return Middleware(ObservabilityMiddleware, runtime=runtime)


def _hours(request: Request) -> float:
    raw = request.query_params.get("hours", "24")
    try:
        hours = float(raw)
    except ValueError:
        hours = -1
    if not 0 < hours <= MAX_HOURS:
        raise ValidationFailed(f"hours must be a number in (0, {MAX_HOURS}]",
                               errors=[{"loc": ["query", "hours"], "msg": f"not in (0, {MAX_HOURS}]"}])
    return hours


def _limit(request: Request, default: int = 50) -> int:
    try:
        return max(1, min(200, int(request.query_params.get("limit", str(default)))))
    except ValueError:
        raise ValidationFailed("limit must be an integer",
                               errors=[{"loc": ["query", "limit"], "msg": "not an integer"}]) from None


def tenant_stats(runtime: Runtime, tenant_id: str, hours: float) -> dict[str, Any]:
    """``GET /v1/stats`` for one tenant: latency percentiles and error rates over ``hours``."""
    since = since_iso(hours)
    events = audit.recent(runtime.store, tenant_id, since)
    return {"tenant_id": tenant_id, "hours": hours, "since": since, **operation_stats(events)}


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


def _check_admin(runtime: Runtime, request: Request) -> None:
    from shared.admin import check_admin_key

    check_admin_key(runtime, request)


def _merge_usage(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum tenants' usage reports (spend per window, by day, team and model)."""
    out: dict[str, Any] = {"spent_usd": {"day": 0.0, "month": 0.0}}
    for table, key in (("by_day", "day"), ("by_team", "team"), ("by_model", "model")):
        merged: dict[str, dict[str, Any]] = {}
        for r in reports:
            for row in r.get(table, []):
                acc = merged.setdefault(row[key], {key: row[key], "calls": 0, "input_tokens": 0, "output_tokens": 0,
                                                   "cost_usd": 0.0})
                for field in ("calls", "input_tokens", "output_tokens", "cost_usd"):
                    acc[field] += row[field]
        out[table] = [{**v, "cost_usd": round(v["cost_usd"], 6)} for _, v in sorted(merged.items())]
    for r in reports:
        out["spent_usd"]["day"] += r["spent_usd"]["day"]
        out["spent_usd"]["month"] += r["spent_usd"]["month"]
    out["spent_usd"] = {k: round(v, 6) for k, v in out["spent_usd"].items()}
    return out


def admin_overview(runtime: Runtime, hours: float, max_tenants: int = 500) -> dict[str, Any]:
    """Every tenant's spend, budget windows and service levels, and the fleet's totals."""
    from shared.app import usage_report
    from shared.tenants import public_tenant

    since = since_iso(hours)
    tenants: list[Tenant] = runtime.store.list_tenants()[:max_tenants]
    rows, reports, all_events, recent_audit = [], [], [], []
    for t in tenants:
        report = usage_report(runtime, t)
        events = audit.recent(runtime.store, t.id, since)
        s = operation_stats(events)
        reports.append(report)
        all_events += events
        recent_audit += [{"tenant_id": t.id, **e.public()} for e in events[:30]]
        rows.append({**public_tenant(t), "spent_usd": report["spent_usd"], "windows": report["windows"],
                     "operations": s["operations"], "errors": s["errors"], "error_rate": s["error_rate"],
                     "latency_ms": s["latency_ms"]})
    recent_audit.sort(key=lambda e: e["at"], reverse=True)
    if len(recent_audit) < 30:  # quiet fleet: show admin actions and older events too
        for t in tenants:
            recent_audit += [{"tenant_id": t.id, **e.public()} for e in runtime.store.list_audit(t.id, 30)
                             if e.at < since]
        recent_audit.sort(key=lambda e: e["at"], reverse=True)
    return {"hours": hours, "since": since, "tenants": rows, "usage": _merge_usage(reports),
            "stats": operation_stats(all_events), "audit": recent_audit[:30],
            "truncated": len(tenants) >= max_tenants}


def observability_routes(runtime: Runtime, serve_mode: bool) -> list[Route]:
    """The routes of this extension (see the module docstring)."""
    from shared.observability.dashboard import dashboard_routes

    runtime.extensions["serve_mode"] = serve_mode
    if serve_mode:
        metrics.enable_prometheus()

    async def run(fn: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    async def metrics_endpoint(request: Request) -> Response:
        prom = metrics.prometheus()
        if prom is None:
            raise NotFound("metrics are served in `multiagent serve` mode only")
        if runtime.admin_key():
            _check_admin(runtime, request)
        elif not _is_loopback(request):
            raise Forbidden("set MULTIAGENT_ADMIN_KEY and scrape with it, or scrape from this machine")
        body, content_type = prom.exposition()
        return Response(body, media_type=content_type)

    async def stats(request: Request) -> Response:
        from shared.app import authenticate

        tenant = await authenticate(runtime, request)
        body = await run(tenant_stats, runtime, tenant.id, _hours(request))
        return JSONResponse({**body, "tenant_name": tenant.name})

    async def overview(request: Request) -> Response:
        _check_admin(runtime, request)
        return JSONResponse(await run(admin_overview, runtime, _hours(request)))

    async def tenant_view(request: Request) -> Response:
        from shared.app import usage_report

        _check_admin(runtime, request)
        tenant_id, view = request.path_params["tenant_id"], request.path_params["view"]
        tenant = await run(runtime.store.get_tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        if view == "usage":
            return JSONResponse(await run(usage_report, runtime, tenant))
        if view == "stats":
            return JSONResponse(await run(tenant_stats, runtime, tenant.id, _hours(request)))
        if view == "audit":
            events, cursor = await run(audit.page, runtime.store, tenant.id, _limit(request),
                                       request.query_params.get("before"))
            body: dict[str, Any] = {"events": [e.public() for e in events]}
            if cursor:
                body["next"] = cursor
            return JSONResponse(body)
        raise NotFound(f"no admin view {view!r}; use usage, stats or audit")

    routes = [
        Route("/v1/stats", stats, methods=["GET"]),
        Route("/v1/admin/overview", overview, methods=["GET"]),
        Route("/v1/admin/tenants/{tenant_id}/{view}", tenant_view, methods=["GET"]),
    ]
    if serve_mode:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    if runtime.settings.team is None:
        routes += dashboard_routes()
    return routes


__all__ = ["ObservabilityMiddleware", "admin_overview", "observability_middleware", "observability_routes",
           "on_operation", "tenant_stats"]
