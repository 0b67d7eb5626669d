"""The calling tenant's own views: ``GET /v1/usage``, ``/v1/audit`` and ``/v1/stats``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.http.request import authenticate, hours_param, limit_param
from shared.observability import audit as audit_trail
from shared.runtime import Runtime
from shared.store.aio import store_call
from shared.usage import tenant_stats, usage_report


async def audit_page(runtime: Runtime, tenant_id: str, request: Request) -> Response:
    """One page of a tenant's audit trail, ``next`` when there is more (a cursor that
    survives events sharing one timestamp)."""
    events, cursor = await store_call(audit_trail.page, runtime.store, tenant_id, limit_param(request),
                                      request.query_params.get("before"))
    body: dict[str, Any] = {"events": [e.public() for e in events]}
    if cursor:
        body["next"] = cursor
    return JSONResponse(body)


def routes(runtime: Runtime) -> list[Route]:
    """The account routes."""

    async def usage(request: Request) -> Response:
        tenant = await authenticate(runtime, request)
        return JSONResponse(await store_call(usage_report, runtime, tenant))

    async def audit(request: Request) -> Response:
        tenant = await authenticate(runtime, request)
        return await audit_page(runtime, tenant.id, request)

    async def stats(request: Request) -> Response:
        tenant = await authenticate(runtime, request)
        body = await store_call(tenant_stats, runtime, tenant.id, hours_param(request))
        return JSONResponse({**body, "tenant_name": tenant.name})

    return [
        Route("/v1/usage", usage, methods=["GET"]),
        Route("/v1/audit", audit, methods=["GET"]),
        Route("/v1/stats", stats, methods=["GET"]),
    ]


__all__ = ["audit_page", "routes"]
