"""``GET /dashboard``: the operator page, static files served by the gateway.

No build step and no third-party code: ``dashboard.html``, ``dashboard.css`` and
``dashboard.js`` in ``shared/observability/``. The page reads the key from the URL fragment
(``/dashboard#key=KEY``, which browsers never send to a server) or a form, keeps it in
the tab's ``sessionStorage`` and sends it only as the ``Authorization`` header of the
JSON endpoints it reads (``/v1/usage``, ``/v1/stats``, ``/v1/audit``; with the admin key
``/v1/admin/overview`` and ``/v1/admin/tenants/{id}/...``). A strict Content Security
Policy allows nothing but this origin's own files.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ASSETS = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


@cache
def _read(name: str) -> bytes:
    return resources.files("shared.observability").joinpath(name).read_bytes()


def dashboard_routes() -> list[Route]:
    """``/dashboard`` and its two assets."""

    async def page(request: Request) -> Response:
        return Response(_read("dashboard.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            from shared.errors import NotFound

            raise NotFound(f"no dashboard asset {name!r}")
        return Response(_read(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)

    return [Route("/dashboard", page, methods=["GET"]), Route("/dashboard/{name}", asset, methods=["GET"])]


__all__ = ["dashboard_routes"]
