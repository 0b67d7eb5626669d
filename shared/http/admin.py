"""``/v1/admin/*``: tenant administration and the operator's views, on only when an admin
key is set (``MULTIAGENT_ADMIN_KEY`` or the ``admin-key`` secret): 404 otherwise."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.errors import NotFound, ValidationFailed
from shared.http.account import audit_page
from shared.http.request import check_admin_key, hours_param, read_json
from shared.runtime import Runtime
from shared.store.aio import store_call
from shared.tenants import TenantAdmin, public_tenant
from shared.usage import admin_overview, tenant_stats, usage_report


def routes(runtime: Runtime) -> list[Route]:
    """The admin routes, answering 404 when the admin API is off."""
    _admin: list[TenantAdmin] = []

    def admin_() -> TenantAdmin:  # built on first use: the catalog is not loaded at cold start
        if not _admin:
            _admin.append(TenantAdmin(runtime.store, runtime.settings, runtime.catalog, actor="admin-api"))
        return _admin[0]

    async def run(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def fields_of(request: Request) -> dict[str, Any]:
        """The JSON object of a POST/PATCH; TenantAdmin validates each field (shared/limits.py)."""
        body = await read_json(request, runtime.settings.max_body_bytes)
        if not isinstance(body, dict):
            raise ValidationFailed("the body must be a JSON object of tenant fields",
                                   errors=[{"loc": ["body"], "msg": "not an object"}])
        return body

    async def tenants(request: Request) -> Response:
        check_admin_key(runtime, request)
        if request.method == "GET":
            items = await run(runtime.store.list_tenants)
            return JSONResponse({"tenants": [public_tenant(t) for t in items]})
        body = await fields_of(request)
        tenant, key = await run(admin_().create, body.pop("name", ""), **body)
        return JSONResponse({**public_tenant(tenant), "api_key": key}, status_code=201)

    async def tenant(request: Request) -> Response:
        check_admin_key(runtime, request)
        tenant_id = request.path_params["tenant_id"]
        if request.method == "GET":
            return JSONResponse(public_tenant(await run(admin_().get, tenant_id)))
        body = await fields_of(request)
        return JSONResponse(public_tenant(await run(admin_().update, tenant_id, **body)))

    async def keys(request: Request) -> Response:
        check_admin_key(runtime, request)
        tenant_id = request.path_params["tenant_id"]
        if request.method == "DELETE":
            return JSONResponse({"revoked": await run(admin_().revoke_keys, tenant_id)})
        return JSONResponse({"tenant_id": tenant_id, "api_key": await run(admin_().issue_key, tenant_id)},
                            status_code=201)

    async def overview(request: Request) -> Response:
        check_admin_key(runtime, request)
        return JSONResponse(await store_call(admin_overview, runtime, hours_param(request)))

    async def tenant_view(request: Request) -> Response:
        check_admin_key(runtime, request)
        tenant_id, view = request.path_params["tenant_id"], request.path_params["view"]
        found = await store_call(runtime.store.get_tenant, tenant_id)
        if found is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        if view == "usage":
            return JSONResponse(await store_call(usage_report, runtime, found))
        if view == "stats":
            return JSONResponse(await store_call(tenant_stats, runtime, found.id, hours_param(request)))
        if view == "audit":
            return await audit_page(runtime, found.id, request)
        raise NotFound(f"no admin view {view!r}; use usage, stats or audit")

    return [
        Route("/v1/admin/tenants", tenants, methods=["GET", "POST"]),
        Route("/v1/admin/tenants/{tenant_id}", tenant, methods=["GET", "PATCH"]),
        Route("/v1/admin/tenants/{tenant_id}/keys", keys, methods=["POST", "DELETE"]),
        Route("/v1/admin/overview", overview, methods=["GET"]),
        Route("/v1/admin/tenants/{tenant_id}/{view}", tenant_view, methods=["GET"]),
    ]


__all__ = ["routes"]
