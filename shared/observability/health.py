"""``GET /health``: real checks of what a call depends on, each with its latency.

No paid model call on a normal probe; ``?deep=1`` makes one tiny one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import anyio

if TYPE_CHECKING:
    from shared.runtime import Runtime


async def _timed(check: Callable[[], tuple[str, str | None]]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        status, message = await anyio.to_thread.run_sync(check)
    except Exception as exc:  # noqa: BLE001 - a failing check is a result, not an error
        status, message = "fail", f"{type(exc).__name__}: {exc}"[:300]
    out: dict[str, Any] = {"status": status, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
    if message:
        out["message"] = message
    return out


async def check_health(runtime: Runtime, deep: bool = False) -> tuple[dict[str, Any], int]:
    """The contract's health document and its HTTP status."""
    import os

    from shared.secrets import ANTHROPIC_API_KEY

    settings = runtime.settings

    def store() -> tuple[str, str | None]:
        runtime.store.ping()
        return "pass", None

    def secrets() -> tuple[str, str | None]:
        if settings.model_provider != "anthropic":
            return "pass", f"{settings.secrets_backend} secrets; no model key needed for {settings.model_provider}"
        runtime.secrets.get(ANTHROPIC_API_KEY)
        return "pass", None

    def model() -> tuple[str, str | None]:
        name = settings.model_provider
        if name == "offline":
            return "warn", "offline model: placeholder answers; set ANTHROPIC_API_KEY for a real model"
        if name == "anthropic":
            if not runtime.secrets.get(ANTHROPIC_API_KEY):
                return "fail", "no anthropic-api-key secret"
            base = os.environ.get("ANTHROPIC_BASE_URL")
            if base and not urlparse(base).netloc:
                return "fail", f"ANTHROPIC_BASE_URL {base!r} is not a URL"
        return "pass", f"{name}" + ("" if runtime.provider_ready else " (client warming up)")

    checks = {"store": await _timed(store), "secrets": await _timed(secrets), "model": await _timed(model)}
    if deep and settings.model_provider != "offline":
        checks["model_call"] = await _deep_model_check(runtime)
    worst = {c["status"] for c in checks.values()}
    if checks["store"]["status"] == "fail" or checks["model"]["status"] == "fail":
        status, code = "unhealthy", 503
    elif "fail" in worst or "warn" in worst:
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    return {"status": status, "checks": checks, "version": settings.version}, code


async def _deep_model_check(runtime: Runtime) -> dict[str, Any]:
    from shared.models.base import ModelRequest

    start = time.perf_counter()
    try:
        provider = await runtime.provider()
        model = runtime.model_for("claude-haiku-4-5")
        await provider.create(ModelRequest(model=model, system="health check", max_tokens=1, timeout_s=10,
                                           messages=[{"role": "user", "content": "ping"}]))
        status, message = "pass", None
    except Exception as exc:  # noqa: BLE001
        status, message = "fail", f"{type(exc).__name__}: {exc}"[:300]
    out: dict[str, Any] = {"status": status, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
    if message:
        out["message"] = message
    return out
