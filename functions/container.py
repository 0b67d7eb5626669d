"""The container's entry point (Cloud Run): one image for every function.

``python -m functions.container`` serves, on ``$PORT`` (Cloud Run sets it; 8080 by
default), the team named by ``MULTIAGENT_TEAM``, or the gateway when it is unset. The app
is built and checked (catalog, prices) before the socket opens, so a bad configuration
fails the revision's start-up with one line on stderr instead of serving errors. Cloud Run sends SIGTERM and waits
10 s: uvicorn stops accepting, lets in-flight calls finish for up to
``MULTIAGENT_SHUTDOWN_GRACE_S`` (8 s) and exits.

Request heads, requests in flight and the peers whose ``X-Forwarded-*`` headers count are
limited before the app runs (``shared.http_limits``): on Cloud Run only its front end
(link-local) is trusted, elsewhere no one unless ``MULTIAGENT_TRUSTED_PROXIES`` says so.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Build the app for this function and serve it until SIGTERM."""
    import uvicorn

    from shared.entrypoints import asgi_app
    from shared.errors import ConfigurationError

    kind = "team" if os.environ.get("MULTIAGENT_TEAM") else "gateway"
    raw_port = os.environ.get("PORT", "8080")
    if not raw_port.isdigit():
        print(f"multiagent: PORT={raw_port!r} must be a port number", file=sys.stderr)
        return 2
    try:
        app = asgi_app(kind)
        runtime = app.state.runtime  # type: ignore[attr-defined]
        len(runtime.catalog)  # load the team now: a wrong MULTIAGENT_TEAM stops here, not on a request
        runtime.check()
        from shared.observability.shutdown import grace_seconds

        grace = grace_seconds()  # the one parser of MULTIAGENT_SHUTDOWN_GRACE_S (a bad value stops here)
    except ConfigurationError as exc:
        print(f"multiagent: {exc}", file=sys.stderr)
        return 2
    from shared.http_limits import guard, server_options  # heads, concurrency, proxies: bounded before the app

    uvicorn.run(guard(app, runtime.settings), host=os.environ.get("HOST", "0.0.0.0"), port=int(raw_port),
                log_level="warning", access_log=False, lifespan="on",
                timeout_graceful_shutdown=grace,  # type: ignore[arg-type]  # a float works (asyncio.wait_for)
                **server_options(runtime.settings, platform=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
