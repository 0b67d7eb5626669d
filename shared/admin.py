"""``/v1/admin/*``: tenant administration over HTTP, on only when MULTIAGENT_ADMIN_KEY is set."""

from __future__ import annotations

import hmac
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.errors import Forbidden, NotFound, Unauthenticated, ValidationFailed
from shared.runtime import Runtime
from shared.tenants import TenantAdmin, public_tenant


def check_admin_key(runtime: Runtime, request: Request) -> None:
    """404 when the admin API is off, 401 without a key, 403 with another key."""
    from shared.app import request_key

    expected = runtime.admin_key()
    if not expected:
        raise NotFound("the admin API is off; set MULTIAGENT_ADMIN_KEY to enable it")
    key = request_key(request)
    if not key:
        raise Unauthenticated("send the admin key as 'Authorization: Bearer KEY'")
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise Forbidden("that is not the admin key")


def admin_routes(runtime: Runtime, serve_mode: bool) -> list[Route]:
    """The admin routes, answering 404 when the admin API is off."""
    _admin: list[TenantAdmin] = []

    def admin_() -> TenantAdmin:  # built on first use: the catalog is not loaded at cold start
        if not _admin:
            _admin.append(TenantAdmin(runtime.store, runtime.settings, runtime.catalog, actor="admin-api"))
        return _admin[0]

    async def guard(request: Request) -> None:
        check_admin_key(runtime, request)

    async def run(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def fields_of(request: Request) -> dict[str, Any]:
        """The JSON object of a POST/PATCH; TenantAdmin validates each field (shared/limits.py)."""
        from shared.app import read_json

        body = await read_json(request, runtime.settings.max_body_bytes)
        if not isinstance(body, dict):
            raise ValidationFailed("the body must be a JSON object of tenant fields",
                                   errors=[{"loc": ["body"], "msg": "not an object"}])
        return body

    async def tenants(request: Request) -> Response:
        await guard(request)
        if request.method == "GET":
            items = await run(runtime.store.list_tenants)
            return JSONResponse({"tenants": [public_tenant(t) for t in items]})
        body = await fields_of(request)
        tenant, key = await run(admin_().create, body.pop("name", ""), **body)
        return JSONResponse({**public_tenant(tenant), "api_key": key}, status_code=201)

    async def tenant(request: Request) -> Response:
        await guard(request)
        tenant_id = request.path_params["tenant_id"]
        if request.method == "GET":
            return JSONResponse(public_tenant(await run(admin_().get, tenant_id)))
        body = await fields_of(request)
        return JSONResponse(public_tenant(await run(admin_().update, tenant_id, **body)))

    async def keys(request: Request) -> Response:
        await guard(request)
        tenant_id = request.path_params["tenant_id"]
        if request.method == "DELETE":
            return JSONResponse({"revoked": await run(admin_().revoke_keys, tenant_id)})
        return JSONResponse({"tenant_id": tenant_id, "api_key": await run(admin_().issue_key, tenant_id)},
                            status_code=201)

    return [
        Route("/v1/admin/tenants", tenants, methods=["GET", "POST"]),
        Route("/v1/admin/tenants/{tenant_id}", tenant, methods=["GET", "PATCH"]),
        Route("/v1/admin/tenants/{tenant_id}/keys", keys, methods=["POST", "DELETE"]),
    ]
