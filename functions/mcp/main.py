"""The MCP server's entry points.

- :func:`run_stdio`: ``multiagent mcp`` (Claude Desktop and other local MCP clients);
- ``app``: a stateless streamable-HTTP ASGI app (``POST /mcp``), deployable as one more
  function (uvicorn / Cloud Run container); ``handler``: the same app for AWS Lambda
  (Mangum); ``mcp``: the functions-framework target
  (``functions-framework --asgi --target mcp``). Built on first access, like the gateway.

Configuration: ``MULTIAGENT_API_URL`` (the gateway), ``MULTIAGENT_API_KEY`` (the tenant key
used when the MCP client sends none), ``MULTIAGENT_MCP_TEAMS`` (comma-separated filter) and,
for the HTTP app, ``MULTIAGENT_MCP_ALLOWED_HOSTS`` (comma-separated ``Host`` values: turns
on DNS-rebinding protection, advisable when a fallback key is configured on a local port).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

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


def _json(status: int, body: dict[str, Any]) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status)


class StatelessMCPApp:
    """ASGI app: ``/mcp`` (and ``/``) speak streamable HTTP, statelessly, with JSON answers.

    Each request gets its own session manager, so the app needs no lifespan (Lambda via
    Mangum with ``lifespan="off"``, functions-framework) and no instance affinity.
    """

    def __init__(self, api_url: str | None = None, api_key: str | None = None, teams: Iterable[str] | None = None,
                 allowed_hosts: Iterable[str] | None = None) -> None:
        from functions.mcp.server import build_server, settings_from_env

        url, key, selected = settings_from_env(api_url, api_key, teams)
        self.server = build_server(url, key, selected)
        hosts = list(allowed_hosts or [h.strip() for h in os.environ.get("MULTIAGENT_MCP_ALLOWED_HOSTS", "").split(",")
                                       if h.strip()])
        self.security: Any = None
        if hosts:
            from mcp.server.transport_security import TransportSecuritySettings

            self.security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                                      allowed_origins=[f"https://{h}" for h in hosts]
                                                      + [f"http://{h}" for h in hosts])

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

        from functions.mcp.server import REQUEST_KEY

        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get(b"x-api-key", b"").decode()
        token = REQUEST_KEY.set(key or None)
        try:
            manager = StreamableHTTPSessionManager(app=self.server, json_response=True, stateless=True,
                                                   security_settings=self.security)
            async with manager.run():
                await manager.handle_request(scope, receive, send)
        finally:
            REQUEST_KEY.reset(token)


def create_http_app(api_url: str | None = None, api_key: str | None = None, teams: Iterable[str] | None = None,
                    allowed_hosts: Iterable[str] | None = None) -> ASGIApp:
    """The stateless streamable-HTTP MCP app (arguments default to the environment)."""
    return StatelessMCPApp(api_url, api_key, teams, allowed_hosts)


def _lambda_handler() -> Callable[..., Any]:
    from mangum import Mangum

    return Mangum(create_http_app(), lifespan="off")  # type: ignore[arg-type]


def _functions_framework_target(name: str) -> Callable[..., Any]:
    from shared.entrypoints import functions_framework_forwarder

    return functions_framework_forwarder(create_http_app(), name)


_cache: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """PEP 562: ``app``, ``handler`` and the ``mcp`` target are built on first access."""
    if name not in _cache:
        if name == "app":
            _cache[name] = create_http_app()
        elif name == "handler":
            _cache[name] = _lambda_handler()
        elif name == "mcp" or name == os.environ.get("FUNCTION_TARGET"):
            _cache[name] = _functions_framework_target(name)
        else:
            raise AttributeError(name)
    return _cache[name]


if __name__ == "__main__":  # python -m functions.mcp.main [--http PORT]
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        import uvicorn

        uvicorn.run(create_http_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        run_stdio()
