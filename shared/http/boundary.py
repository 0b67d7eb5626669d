"""The outermost layer of every request: request id, access log, a path limit, and no error
ever escaping as a traceback (every failure becomes problem+json with the request id).

Only ``shared.http_limits.guard`` (the request head, outside the app) runs before it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import Settings
from shared.errors import ProblemError, Unavailable
from shared.observability.access import check_path, logged_path
from shared.observability.logging import log_event
from shared.store.base import StoreUnavailable, new_id

log = logging.getLogger("multiagent.http")

PROBLEM_JSON = "application/problem+json"


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
        incoming = next((v for k, v in scope.get("headers") or () if k == b"x-request-id"), b"").decode("latin-1")
        request_id = incoming[:64] if incoming.replace("-", "").replace("_", "").isalnum() else ""
        request_id = request_id or new_id("req")
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


__all__ = ["PROBLEM_JSON", "ErrorBoundary", "problem_response"]
