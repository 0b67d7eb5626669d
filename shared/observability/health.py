"""``GET /health``: real checks of what a call depends on, each with its latency.

=========  ==================================================================  ====================
check      what it does                                                        a ``fail`` makes
=========  ==================================================================  ====================
store      one real round trip to the state store (``Store.ping``)             unhealthy (503)
secrets    reads the secrets this function needs (model key, the signing key   degraded
           of team-to-team calls when distributed) through the TTL cache
model      the provider's configuration: key present, base URL parseable;      unhealthy (503)
           no paid call (``offline`` is a ``warn``: placeholder answers)
budget     store level: the budget windows are readable; with a tenant key,    degraded
           that tenant's headroom (``warn`` past its alert threshold, ``fail``
           when a window is spent); with the admin key, how many tenants are
           past their threshold
model_call only with ``?deep=1``: one 1-token call, its result kept 60 s so a   degraded
           probe loop cannot run up a bill
=========  ==================================================================  ====================

``healthy`` when every check passes, ``degraded`` (200) with any ``warn`` or a
non-critical ``fail``, ``unhealthy`` (503) when the store or the model configuration fails.
A key sent to ``/health`` is optional and never required; a bad one is a ``warn``.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import anyio

if TYPE_CHECKING:
    from shared.runtime import Runtime

CRITICAL = ("store", "model")
DEEP_CACHE_S = 60.0
MAX_TENANTS_CHECKED = 200
_deep_cache: dict[int, tuple[float, dict[str, Any]]] = {}


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


def overall(checks: dict[str, dict[str, Any]]) -> tuple[str, int]:
    """The health status and HTTP code for a set of checks."""
    statuses = {c["status"] for c in checks.values()}
    if any(checks[name]["status"] == "fail" for name in CRITICAL if name in checks):
        return "unhealthy", 503
    if statuses & {"fail", "warn"}:
        return "degraded", 200
    return "healthy", 200


def _headroom(runtime: Runtime, tenant_ids: list[str]) -> tuple[int, int, list[str]]:
    """(tenants past their alert threshold, tenants with a spent window, names of the latter)."""
    from shared.budget import day_key, month_key, window_name

    now = time.time()
    warned = spent = 0
    exhausted: list[str] = []
    for tenant_id in tenant_ids:
        tenant = runtime.store.get_tenant(tenant_id)
        if tenant is None or tenant.disabled:
            continue
        windows = runtime.store.get_windows(tenant.id, [day_key(now), month_key(now)])
        limits = {"day": tenant.daily_limit_micros, "month": tenant.monthly_limit_micros}
        used = {window_name(w.key): w.spent_micros + w.reserved_micros for w in windows}
        fractions = [used.get(n, 0) / lim for n, lim in limits.items() if lim > 0]
        if fractions and max(fractions) >= 1:
            spent += 1
            exhausted.append(tenant.id)
        elif fractions and max(fractions) >= tenant.alert_threshold:
            warned += 1
    return warned, spent, exhausted


async def check_health(runtime: Runtime, deep: bool = False, key: str | None = None) -> tuple[dict[str, Any], int]:
    """The contract's health document and its HTTP status (``key``: optional tenant or admin key)."""
    from shared.secrets import ANTHROPIC_API_KEY, INTERNAL_SIGNING_KEY

    settings = runtime.settings

    def store() -> tuple[str, str | None]:
        runtime.store.ping()
        return "pass", None

    def secrets() -> tuple[str, str | None]:
        needed = []
        if settings.model_provider == "anthropic":
            needed.append(ANTHROPIC_API_KEY)
        if settings.distributed:
            needed.append(INTERNAL_SIGNING_KEY)
        missing = [name for name in needed if not runtime.secrets.get(name)]
        if INTERNAL_SIGNING_KEY in missing:
            return "fail", f"secret {INTERNAL_SIGNING_KEY} is missing: team-to-team calls will be refused"
        if not needed:
            return "pass", f"{settings.secrets_backend} secrets; none needed by {settings.model_provider}"
        note = f" ({', '.join(missing)} missing)" if missing else ""
        return "pass", f"{settings.secrets_backend} secrets reachable{note}"

    def model() -> tuple[str, str | None]:
        name = settings.model_provider
        if name == "offline":
            return "warn", "offline model: placeholder answers; set ANTHROPIC_API_KEY for a real model"
        if name == "anthropic":
            if not runtime.secrets.get(ANTHROPIC_API_KEY):
                return "fail", "no anthropic-api-key secret (ANTHROPIC_API_KEY with MULTIAGENT_SECRETS=env)"
            base = os.environ.get("ANTHROPIC_BASE_URL")
            if base and not (urlparse(base).scheme in ("http", "https") and urlparse(base).netloc):
                return "fail", f"ANTHROPIC_BASE_URL {base!r} is not an http(s) URL"
        return "pass", f"{name}" + ("" if runtime.provider_ready else " (client warming up)")

    def budget() -> tuple[str, str | None]:
        from shared.auth import hash_key
        from shared.budget import day_key

        try:
            admin = runtime.admin_key()
        except Exception:  # noqa: BLE001 - an unreachable secret store shows in the secrets check
            admin = None
        if key and admin and hmac.compare_digest(key.encode(), admin.encode()):
            tenants = [t.id for t in runtime.store.list_tenants()[:MAX_TENANTS_CHECKED]]
            warned, spent, exhausted = _headroom(runtime, tenants)
            message = f"{len(tenants)} tenants: {warned} past their alert threshold, {spent} out of budget"
            if exhausted:
                message += f" ({', '.join(exhausted[:5])}{', …' if len(exhausted) > 5 else ''})"
            return ("warn" if warned or spent else "pass"), message
        if key:
            record = runtime.store.get_api_key(hash_key(key))
            if record is None or record.revoked:
                return "warn", "the key sent to /health is not a live tenant key; no headroom checked"
            warned, spent, _ = _headroom(runtime, [record.tenant_id])
            if spent:
                return "fail", f"tenant {record.tenant_id} has spent a budget window; its calls are refused (402)"
            if warned:
                return "warn", f"tenant {record.tenant_id} is past its alert threshold"
            return "pass", f"tenant {record.tenant_id} is within budget"
        runtime.store.get_windows("__health__", [day_key(time.time())])
        return "pass", "budget windows readable; send a tenant key for its headroom"

    checks = {"store": await _timed(store), "secrets": await _timed(secrets), "model": await _timed(model)}
    checks["budget"] = await _timed(budget) if checks["store"]["status"] == "pass" else \
        {"status": "fail", "latency_ms": 0.0, "message": "not checked: the store is unreachable"}
    if deep and settings.model_provider != "offline" and checks["model"]["status"] != "fail":
        checks["model_call"] = await _deep_model_check(runtime)
    status, code = overall(checks)
    return {"status": status, "checks": checks, "version": settings.version}, code


async def _deep_model_check(runtime: Runtime) -> dict[str, Any]:
    from shared.models.base import ModelRequest

    hit = _deep_cache.get(id(runtime))
    if hit and time.monotonic() - hit[0] < DEEP_CACHE_S:
        return {**hit[1], "message": (hit[1].get("message", "") + " (cached)").strip()}
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
    _deep_cache[id(runtime)] = (time.monotonic(), out)
    return out
