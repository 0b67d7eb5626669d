"""Trace context and batched audit writes for every HTTP request (inside the error boundary).

Every request runs in a trace (its incoming ``traceparent`` or a new one) and collects its
audit events, written in one store call after the response is sent; an operation call is
also a server span named by its route template, and counted in flight under ``serve``.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.observability import audit, metrics, tracing
from shared.runtime import Runtime

OPERATION_PREFIX = "/v1/teams/"
OPERATION_ROUTE = "/v1/teams/{team}/{operation}"  # the route template (http.route), as shared/http/teams.py routes it


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
        prom = metrics.prometheus() if self.runtime.serve_mode else None
        is_operation = len(parts) == 2 and scope.get("method") == "POST"
        if prom is not None and is_operation:
            prom.inflight.inc()
        try:
            if is_operation and tracing.enabled():
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


__all__ = ["OPERATION_ROUTE", "ObservabilityMiddleware"]
