"""Graceful shutdown of ``multiagent serve`` on SIGTERM (Cloud Run gives 10 s, then SIGKILL).

The sequence::

    SIGTERM ─▶ uvicorn stops listening, closes idle keep-alive connections
            ─▶ in-flight requests run on, up to MULTIAGENT_SHUTDOWN_GRACE_S (default 8 s);
               each settles its reservation (or, if cancelled at the deadline, releases it
               in a shielded scope) and writes its audit batch after its response
            ─▶ lifespan shutdown (the app closes its HTTP session)
            ─▶ :func:`finish`: background audit writes drained, spans exported, log
               handlers flushed, the store closed
            ─▶ exit 0

uvicorn re-raises the signal it caught once it has shut down, so the process would die
"killed by SIGTERM" (exit -15) after all that work; :func:`prepare` installs a handler for
that re-raise which just returns, so ``multiagent serve`` exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from shared.errors import ConfigurationError

DEFAULT_GRACE_S = 8.0
log = logging.getLogger("multiagent.shutdown")


def grace_seconds(environ: dict[str, str] | None = None) -> float:
    """``MULTIAGENT_SHUTDOWN_GRACE_S`` (seconds in-flight requests may run on after SIGTERM)."""
    raw = (environ if environ is not None else os.environ).get("MULTIAGENT_SHUTDOWN_GRACE_S", "")
    if not raw:
        return DEFAULT_GRACE_S
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"MULTIAGENT_SHUTDOWN_GRACE_S={raw!r} must be a number of seconds") from None
    if value < 0:
        raise ConfigurationError(f"MULTIAGENT_SHUTDOWN_GRACE_S={raw!r} must not be negative")
    return value


_signals: list[int] = []


def _after_uvicorn(signum: int, frame: Any) -> None:
    _signals.append(signum)  # uvicorn has already shut down gracefully; nothing left to do


def prepare() -> None:
    """Before ``uvicorn.run``: make the signal uvicorn re-raises after its shutdown a no-op."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _after_uvicorn)


def finish(runtime: Any = None) -> None:
    """After the server stopped: drain audit writes, export spans, flush logs, close the store."""
    import asyncio

    from shared.observability import audit, tracing

    try:
        asyncio.run(audit.drain())
    except Exception as exc:  # noqa: BLE001 - shutdown goes on
        log.warning("draining audit writes failed: %s", exc)
    tracing.flush()
    if runtime is not None:
        try:
            runtime.close()
        except Exception as exc:  # noqa: BLE001
            log.warning("closing the store failed: %s", exc)
    log.info("shutdown complete", extra={"fields": {"signals": _signals}})
    for handler in logging.getLogger().handlers:
        handler.flush()


__all__ = ["DEFAULT_GRACE_S", "finish", "grace_seconds", "prepare"]
