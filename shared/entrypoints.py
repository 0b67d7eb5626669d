"""The three ways a platform starts a function, built lazily from one ASGI app.

``functions/gateway/main.py`` and ``functions/team/main.py`` expose, through a module
``__getattr__`` (so nothing is built or imported until a platform asks for it):

- ``app``: the ASGI app (uvicorn, Cloud Run container);
- ``handler``: the Lambda handler (Mangum, ``lifespan="off"``: Mangum's default runs
  startup and shutdown on every invocation, so the instance initialises once instead);
- the functions-framework target (``functions-framework --asgi --target NAME``):
  functions-framework only accepts ``@functions_framework.aio.http`` functions, not an app
  object, so the target is a thin forwarder whose response object runs our app with the
  framework's own ``send`` (streaming responses included). functions-framework builds
  the target in gunicorn's master process and then forks the worker, so the target starts
  no thread: a warm-up thread caught mid-import at the fork leaves the worker's import lock
  held forever (the first request hung). The worker warms up on its first request instead.
  The forwarded app is behind ``shared.http_limits.guard`` and the worker's uvicorn gets the
  bounded parser (the ``functions-framework`` command passes uvicorn no options of ours).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send


@cache
def asgi_app(kind: str) -> ASGIApp:
    """The app for ``kind`` (``gateway`` or ``team``), built once per instance."""
    from shared.config import Settings
    from shared.errors import ConfigurationError
    from shared.http.app import build_app
    from shared.runtime import Runtime

    settings = Settings.from_env()
    if kind == "team" and not settings.team:
        from shared.catalog import available_team_names

        raise ConfigurationError(f"a team function needs MULTIAGENT_TEAM (one of: {', '.join(available_team_names())})")
    return build_app(Runtime(settings))


def lambda_handler(kind: str) -> Callable[..., Any]:
    """A Mangum handler for ``kind``; the app is initialised on the first invocation."""
    from mangum import Mangum

    app = asgi_app(kind)
    app.state.runtime.warm_up()  # type: ignore[attr-defined]
    return Mangum(app, lifespan="off")  # type: ignore[arg-type]  # an ASGI 3 app; Mangum's Protocol is narrower


class _Passthrough:
    """A response object that is really our whole app, run on the framework's connection."""

    def __init__(self, app: ASGIApp, scope: Scope, receive: Receive) -> None:
        self.app, self.scope, self.receive = app, scope, receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(self.scope, self.receive, send)


def functions_framework_forwarder(app: ASGIApp, name: str,
                                  on_request: Callable[[], None] | None = None) -> Callable[..., Any]:
    """An ``@functions_framework.aio.http`` function called ``name`` that runs ``app``
    (``on_request`` first, in the worker process). ``app`` runs behind
    ``shared.http_limits.guard`` and the worker's uvicorn (forked from this master) gets the
    same bounded parser, concurrency and proxy options as ``serve`` and the container: the
    ``functions-framework`` command passes uvicorn no options of ours."""
    import functions_framework.aio

    from shared.config import Settings
    from shared.http_limits import guard, patch_gunicorn_worker

    state = getattr(app, "state", None)
    runtime = getattr(state, "runtime", None) if state is not None else None
    settings = runtime.settings if runtime is not None else Settings.from_env()
    patch_gunicorn_worker(settings)
    guarded = guard(app, settings)

    async def forward(request: Any) -> Any:
        if on_request is not None:
            on_request()
        return _Passthrough(guarded, request.scope, request.receive)

    forward.__name__ = forward.__qualname__ = name
    return functions_framework.aio.http(forward)


def functions_framework_target(kind: str, name: str) -> Callable[..., Any]:
    """The functions-framework target for ``kind``: the app is built now, in the master
    (imports only: the worker inherits them), and warms up on the worker's first request
    (``warm_up`` is idempotent)."""
    app = asgi_app(kind)
    return functions_framework_forwarder(app, name, on_request=app.state.runtime.warm_up)  # type: ignore[attr-defined]


def lazy_entry_points(app: Callable[[], Any], handler: Callable[[], Any], target: str,
                      target_named: Callable[[str], Any],
                      cache_of: Callable[[], dict[str, Any]] | None = None) -> Callable[[str], Any]:
    """A PEP 562 ``__getattr__``: ``app``, ``handler`` and the functions-framework ``target``
    (or ``FUNCTION_TARGET``) are built on first access, once (in ``cache_of()``, else a
    cache of its own)."""
    own: dict[str, Any] = {}

    def __getattr__(name: str) -> Any:
        cache = cache_of() if cache_of is not None else own
        if name not in cache:
            if name == "app":
                cache[name] = app()
            elif name == "handler":
                cache[name] = handler()
            elif name == target or name == os.environ.get("FUNCTION_TARGET"):
                cache[name] = target_named(name)
            else:
                raise AttributeError(name)
        return cache[name]

    return __getattr__


def module_getattr(kind: str, target: str) -> Callable[[str], Any]:
    """The ``__getattr__`` of a gateway or team entry-point module."""
    return lazy_entry_points(lambda: asgi_app(kind), lambda: lambda_handler(kind), target,
                             lambda name: functions_framework_target(kind, name))
