"""``GET /docs``: the interactive API reference (Swagger UI) over ``/openapi.json``.

Swagger UI is vendored from the npm package ``swagger-ui-dist`` by
``scripts/vendor_docs_ui.sh`` into ``shared/observability/docs_assets/`` (see
``docs_assets/SOURCE.txt``), so the page needs no internet and no npm at run time. The
page has an Authorize box for the document's security schemes (``bearer`` /
``apiKey``), "Try it out" on every operation starting from the example body the
document carries, and the curl line of each call. A key can also come in the URL
fragment (``/docs#key=KEY``, never sent to a server), as on ``/dashboard``; it is kept in
the page's memory only.

Nothing here runs when the app is built (:mod:`shared.http.meta`): the route imports this module on the
first ``/docs`` request and each asset file is read on its first request (a team
function's cold start does not pay for it).
"""

from __future__ import annotations

import gzip
import hashlib
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import NotFound

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
    "NOTICE": "text/plain; charset=utf-8",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
    "SOURCE.txt": "text/plain; charset=utf-8",
}
# Swagger UI sets style attributes from React, hence 'unsafe-inline' for styles only; scripts,
# requests and images stay on this origin (the online spec validator is switched off).
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "connect-src 'self'; img-src 'self' data:; font-src 'self' data:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>multiagent-framework API</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
<style>#docs-intro{margin:1.2rem 0 0}.swagger-ui .information-container .info{margin:1.2rem 0}</style>
</head><body data-state="loading">
<div class="swagger-ui"><div class="wrapper"><p id="docs-intro" class="info">
Try any operation here: <b>Authorize</b> with your API key (<code>multiagent tenants create NAME</code> prints one),
open an operation, edit the example body and press <b>Execute</b>; the answer and its curl line appear below it.
Machine-readable: <a href="openapi.json">/openapi.json</a>.
Swagger UI (<a href="docs/assets/LICENSE">Apache-2.0</a>).</p></div></div>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/docs.js"></script>
</body></html>
"""


@cache
def _asset(name: str) -> tuple[bytes, bytes, str]:
    """The file, its gzip form and its ETag, read once on first request."""
    body = resources.files("shared.observability.docs_assets").joinpath(name).read_bytes()
    return body, gzip.compress(body, compresslevel=6, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def docs_page(request: Request) -> Response:
    """The HTML page."""
    return Response(PAGE, media_type="text/html; charset=utf-8", headers={**SECURITY_HEADERS,
                                                                           "cache-control": "no-cache"})


def docs_asset(request: Request) -> Response:
    """One of :data:`ASSETS` (gzip when the client takes it; 304 on a matching ``If-None-Match``)."""
    name = request.path_params["name"]
    if name not in ASSETS:
        raise NotFound(f"no docs asset {name!r}")
    body, zipped, etag = _asset(name)
    headers = {**SECURITY_HEADERS, "cache-control": "no-cache", "etag": etag, "vary": "accept-encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(zipped, media_type=ASSETS[name], headers={**headers, "content-encoding": "gzip"})
    return Response(body, media_type=ASSETS[name], headers=headers)


__all__ = ["docs_asset", "docs_page"]
