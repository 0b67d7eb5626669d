"""What is not a tenant's business: ``/health``, ``/openapi.json``, ``/docs``,
``/problems/{slug}``, ``/metrics`` (``multiagent serve`` only) and ``/dashboard`` (gateway only)."""

from __future__ import annotations

from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from shared.errors import PROBLEM_TYPES, Forbidden, NotFound
from shared.http.request import check_admin_key, is_loopback, request_key
from shared.observability import metrics
from shared.runtime import Runtime


def routes(runtime: Runtime) -> list[Route]:
    """The meta routes."""
    settings = runtime.settings
    openapi_cache: dict[str, Any] = {}

    async def health(request: Request) -> Response:
        from shared.observability.health import check_health

        body, status = await check_health(runtime, deep=request.query_params.get("deep") == "1",
                                          key=request_key(request))  # optional: a tenant's budget headroom
        # The first probe of a new instance starts loading the model SDK, after it is answered.
        return JSONResponse(body, status_code=status, background=BackgroundTask(runtime.warm_up))

    async def openapi(request: Request) -> Response:
        from shared.openapi import build_openapi, served_paths

        if "doc" not in openapi_cache:  # the catalog and routes are fixed for the instance's life
            openapi_cache["doc"] = build_openapi(runtime.catalog, settings.version, served=served_paths(request.app))
        return JSONResponse(openapi_cache["doc"])

    async def docs(request: Request) -> Response:
        from shared.http.docs import docs_page  # page and assets load on the first request only

        return docs_page(request)

    async def docs_asset(request: Request) -> Response:
        from shared.http.docs import docs_asset

        return docs_asset(request)

    async def problem_page(request: Request) -> Response:
        slug = request.path_params["slug"]
        for cls in PROBLEM_TYPES:
            if cls.slug == slug:
                return HTMLResponse(f"<!doctype html><title>{cls.title}</title><h1>{cls.status} {cls.title}</h1>"
                                    f"<p>Problem type <code>/problems/{slug}</code> of the multiagent-framework API."
                                    " The <code>detail</code> member of the response says what to change.</p>")
        raise NotFound(f"no problem type {slug!r}")

    async def metrics_endpoint(request: Request) -> Response:
        prom = metrics.prometheus()
        if prom is None:
            raise NotFound("metrics are served in `multiagent serve` mode only")
        if runtime.admin_key():
            check_admin_key(runtime, request)
        elif not is_loopback(request):
            raise Forbidden("set MULTIAGENT_ADMIN_KEY and scrape with it, or scrape from this machine")
        body, content_type = prom.exposition()
        return Response(body, media_type=content_type)

    found = [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/assets/{name}", docs_asset, methods=["GET"]),
        Route("/problems/{slug}", problem_page, methods=["GET"]),
    ]
    if runtime.serve_mode:
        metrics.enable_prometheus()
        found.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    if settings.team is None:
        from shared.http.dashboard import dashboard_routes

        found += dashboard_routes()
    return found


__all__ = ["routes"]
