"""``multiagent serve``: the gateway and every team in one process (the only command that
loads the HTTP stack)."""

from __future__ import annotations

import argparse
import sys


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then finish in-flight calls within the grace period."""
    import uvicorn

    from shared.http.app import build_app
    from shared.runtime import Runtime

    runtime = Runtime()
    runtime.check()  # a model without a price stops the start, before anything listens
    app = build_app(runtime, serve_mode=True)
    print(f"multiagent: serving {len(runtime.catalog)} teams on http://{args.host}:{args.port} "
          f"(store {runtime.settings.store_url}, model {runtime.settings.model_provider})", file=sys.stderr, flush=True)
    from shared.observability import shutdown

    grace = shutdown.grace_seconds()
    shutdown.prepare()  # SIGTERM: stop listening, finish in-flight calls up to the grace, exit 0
    from shared.http_limits import guard, server_options  # heads, concurrency, proxies: bounded before the app

    uvicorn.run(guard(app, runtime.settings), host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=grace,  # type: ignore[arg-type]  # a float works (asyncio.wait_for)
                **server_options(runtime.settings, platform=False))
    shutdown.finish(runtime)
    return 0
