"""The ASGI app of a function: the gateway (all teams) or one team (``MULTIAGENT_TEAM``).

Starlette rather than FastAPI: the catalog already gives us pydantic models and the
OpenAPI document, and a team function's cold start is what users pay for (FastAPI's
import added ~0.3 s to first 200 in our measurement; Starlette adds almost nothing).

:func:`build_app` is the only place the app is composed: the feature modules of
:data:`FEATURES` (each ``routes(runtime) -> list[Route]``), then the catch-all; the
middleware stack in one list, outermost first: error boundary (request id, access log,
the path limit, problem+json for every failure), observability (trace, audit batch),
CORS when origins are configured. The request-head limits (``shared.http_limits.guard``)
wrap the whole app where it is served, before any of this runs.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp

from shared.errors import MethodNotAllowed, NotFound
from shared.http import account, admin, meta, runs, teams
from shared.http.boundary import ErrorBoundary
from shared.http.observability import ObservabilityMiddleware
from shared.observability.logging import configure
from shared.runtime import Runtime

FEATURES = (meta, teams, account, admin, runs)
CATCH_ALL = "/{path:path}"
WARM_UP_DELAY_S = 0.3


def build_app(runtime: Runtime | None = None, *, serve_mode: bool = False) -> Starlette:
    """The app for ``runtime`` (``serve_mode``: ``multiagent serve``, with ``/metrics``)."""
    runtime = runtime or Runtime()
    runtime.serve_mode = runtime.serve_mode or serve_mode
    settings = runtime.settings
    configure(settings.log_level)

    routes: list[Route] = [route for feature in FEATURES for route in feature.routes(runtime)]
    # The router tries routes in order: the operation route, the one called for real work,
    # goes first (no other route matches its paths, so the order changes no answer).
    routes.sort(key=lambda route: getattr(route, "path", None) != teams.PATH)
    routes.append(Route(CATCH_ALL, _not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]))

    middleware = [Middleware(ErrorBoundary, max_path_bytes=settings.max_path_bytes),
                  Middleware(ObservabilityMiddleware, runtime=runtime)]
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

        await drain_detached(settings.model_timeout_s)  # walked-away calls settle first
        await runtime.operations.close()
        # The model client is left open: a background run still on this loop must be
        # cancelled (and so released for another instance), not fail on a closed client.

    app = _App(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={404: _not_found_handler, 405: _method_handler})
    app.state.runtime = runtime
    return app


class _App(Starlette):
    """Starlette without its outermost ``ServerErrorMiddleware``: :class:`ErrorBoundary`
    is outermost here and already answers every error as problem+json (and re-raises one
    that comes after the response started, for the server to log), so that layer's only
    effect was one more wrapper around every message sent."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack.app if isinstance(stack, ServerErrorMiddleware) else stack


async def _not_found(request: Request) -> Response:
    _refuse_method(request)  # the catch-all also takes known paths asked with another method
    raise NotFound(f"no route for {request.method} {request.url.path}")


async def _not_found_handler(request: Request, exc: Exception) -> Response:
    raise NotFound(f"no route for {request.method} {request.url.path}")


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


__all__ = ["CATCH_ALL", "FEATURES", "build_app"]
