"""The MCP server's entry points.

- :func:`run_stdio`: ``multiagent mcp`` (Claude Desktop and other local MCP clients);
- ``app``: a stateless streamable-HTTP ASGI app (``POST /mcp``), deployable as one more
  function (uvicorn / Cloud Run container); ``handler``: the same app for AWS Lambda
  (Mangum); ``mcp``: the functions-framework target
  (``functions-framework --asgi --target mcp``). Built on first access, like the gateway.

Configuration: ``MULTIAGENT_API_URL`` (the gateway), ``MULTIAGENT_API_KEY`` (stdio only: the
tenant key ``multiagent mcp`` uses; the HTTP app never falls back to it, a keyless HTTP
request is 401), ``MULTIAGENT_MCP_TEAMS`` (comma-separated filter) and, for the HTTP app,
``MULTIAGENT_MCP_ALLOWED_HOSTS`` (comma-separated ``Host`` values, ``host:*`` for any port;
default: the listening address — ``127.0.0.1``, ``localhost``, ``[::1]`` with its port;
set it to the public name when deployed) and ``MULTIAGENT_MCP_ALLOWED_ORIGINS``
(comma-separated ``Origin`` values; default: ``http(s)://`` of the allowed hosts). A
foreign ``Host`` is 421 and a foreign ``Origin`` 403 (DNS-rebinding protection).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import key_from_headers
from shared.entrypoints import lazy_entry_points

__all__ = ["create_http_app", "run_stdio"]


def run_stdio(api_url: str | None = None, api_key: str | None = None, teams: Iterable[str] | None = None) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    import anyio
    from mcp.server.stdio import stdio_server

    from functions.mcp.server import build_server, settings_from_env

    url, key, selected = settings_from_env(api_url, api_key, teams)
    server = build_server(url, key, selected)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers,
                        media_type="application/problem+json" if status >= 400 else None)


def _csv(value: str | None) -> list[str]:
    return [h.strip() for h in (value or "").split(",") if h.strip()]


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def loopback_hosts(server: tuple[str, int] | list[Any] | None) -> list[str]:
    """The default ``Host`` values: the loopback names with the listening port (and the
    listening IP literal itself); any port when the ASGI server does not say which."""
    if not server or len(server) < 2 or server[1] is None:
        return [f"{name}:*" for name in LOOPBACK_NAMES] + list(LOOPBACK_NAMES)
    address, port = str(server[0]), int(server[1])
    names = list(LOOPBACK_NAMES)
    try:  # the socket's own IP literal (uvicorn): a literal cannot be rebound to another host
        ip = ipaddress.ip_address(address)
    except ValueError:  # a name (Mangum copies the Host header here): not trusted
        ip = None
    if ip is not None and not ip.is_unspecified:
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        if literal not in names:
            names.append(literal)
    hosts = [f"{name}:{port}" for name in names]
    if port in (80, 443):
        hosts += names
    return hosts


class StatelessMCPApp:
    """ASGI app: ``/mcp`` (and ``/``) speak streamable HTTP, statelessly, with JSON answers.

    Each request gets its own session manager, so the app needs no lifespan (Lambda via
    Mangum with ``lifespan="off"``, functions-framework) and no instance affinity.

    Every request on ``/mcp`` must carry the caller's own key (``Authorization: Bearer`` or
    ``x-api-key``): a keyless one is 401 — ``MULTIAGENT_API_KEY`` is the stdio fallback
    only, never used here. Before that, ``Host`` and ``Origin`` are checked by the SDK's
    DNS-rebinding protection (:class:`mcp.server.transport_security.TransportSecuritySettings`):
    a foreign ``Host`` is 421, a foreign ``Origin`` 403. Allowed hosts default to the
    listening address (``127.0.0.1``/``localhost``/``[::1]`` with its port); allowed
    origins to ``http://`` and ``https://`` of the allowed hosts.
    """

    def __init__(self, api_url: str | None = None, teams: Iterable[str] | None = None,
                 allowed_hosts: Iterable[str] | None = None, allowed_origins: Iterable[str] | None = None) -> None:
        from functions.mcp.server import build_server, settings_from_env

        url, _stdio_key, selected = settings_from_env(api_url, None, teams)
        self.server = build_server(url, None, selected)  # no fallback key over HTTP
        self.allowed_hosts = list(allowed_hosts) if allowed_hosts is not None else \
            _csv(os.environ.get("MULTIAGENT_MCP_ALLOWED_HOSTS"))
        self.allowed_origins = list(allowed_origins) if allowed_origins is not None else \
            _csv(os.environ.get("MULTIAGENT_MCP_ALLOWED_ORIGINS"))

    def security(self, scope: Scope) -> Any:
        """The SDK's transport security settings for this request (default hosts need the port)."""
        from mcp.server.transport_security import TransportSecuritySettings

        hosts = self.allowed_hosts or loopback_hosts(scope.get("server"))
        origins = self.allowed_origins or [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
        return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                         allowed_origins=origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to start: each request is self-contained
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "/").rstrip("/") or "/"
        if path == "/health":
            await _json(200, {"status": "healthy", "tools": "see POST /mcp tools/list"})(scope, receive, send)
            return
        if path not in ("/mcp", "/"):
            await _json(404, {"type": "/problems/not-found", "title": "Not found", "status": 404,
                              "detail": "the MCP endpoint is POST /mcp"})(scope, receive, send)
            return
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecurityMiddleware
        from starlette.requests import Request

        from functions.mcp.server import REQUEST_KEY

        security = self.security(scope)
        # Host and Origin first (a DNS-rebinding page learns nothing, not even that a key is needed)
        refused = await TransportSecurityMiddleware(security).validate_request(Request(scope, receive))
        if refused is not None:
            await refused(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        key = key_from_headers(headers.get(b"authorization", b"").decode("latin-1"),
                               headers.get(b"x-api-key", b"").decode("latin-1"))
        if not key:
            await _json(401, {"type": "/problems/unauthenticated", "title": "Unauthenticated", "status": 401,
                              "detail": "send your tenant API key: Authorization: Bearer <key> (or x-api-key)"},
                        {"www-authenticate": 'Bearer realm="multiagent-mcp"'})(scope, receive, send)
            return
        token = REQUEST_KEY.set(key)
        try:
            manager = StreamableHTTPSessionManager(app=self.server, json_response=True, stateless=True,
                                                   security_settings=security)
            async with manager.run():
                await manager.handle_request(scope, receive, send)
        finally:
            REQUEST_KEY.reset(token)


def create_http_app(api_url: str | None = None, *, teams: Iterable[str] | None = None,
                    allowed_hosts: Iterable[str] | None = None,
                    allowed_origins: Iterable[str] | None = None) -> ASGIApp:
    """The stateless streamable-HTTP MCP app (arguments default to the environment). It has
    no fallback key: every request carries its caller's key."""
    return StatelessMCPApp(api_url, teams, allowed_hosts, allowed_origins)


def _lambda_handler() -> Callable[..., Any]:
    from mangum import Mangum

    return Mangum(create_http_app(), lifespan="off")  # type: ignore[arg-type]


def _functions_framework_target(name: str) -> Callable[..., Any]:
    from shared.entrypoints import functions_framework_forwarder

    return functions_framework_forwarder(create_http_app(), name)


_cache: dict[str, Any] = {}
# PEP 562: ``app``, ``handler`` and the ``mcp`` target are built on first access.
__getattr__ = lazy_entry_points(create_http_app, _lambda_handler, "mcp", _functions_framework_target,
                                lambda: _cache)


if __name__ == "__main__":  # python -m functions.mcp.main [--http PORT]
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        import uvicorn

        uvicorn.run(create_http_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        run_stdio()
