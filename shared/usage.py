"""What a tenant (or the fleet) has spent and how its operations went, read from the store.

``usage_report`` answers ``GET /v1/usage`` and ``multiagent usage``; ``tenant_stats``
``GET /v1/stats``; ``admin_overview`` the operator's ``GET /v1/admin/overview``. Plain
functions of the runtime (blocking store reads: call them in a worker thread from async code).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shared.observability import audit
from shared.observability.stats import operation_stats, since_iso
from shared.pricing import usd
from shared.store.base import Tenant

if TYPE_CHECKING:
    from shared.runtime import Runtime


def usage_report(runtime: Runtime, tenant: Tenant) -> dict[str, Any]:
    """``GET /v1/usage``: settled spend per window and the month's ledger by team, day and model."""
    from shared.budget import day_key, month_key, reset_at, window_name

    now = time.time()
    keys = [day_key(now), month_key(now)] + [f"team:{t}:{day_key(now)}" for t in sorted(tenant.team_daily_limit_micros)]
    runtime.store.reclaim_expired(tenant.id, now)  # report what crashed instances no longer hold
    windows = {window_name(w.key): w for w in runtime.store.get_windows(tenant.id, keys)}
    month_start = month_key(now)[len("month:"):] + "-01"
    entries = runtime.store.list_ledger(tenant.id, since=month_start)
    by_team: dict[str, dict[str, Any]] = {}
    by_day: dict[str, dict[str, Any]] = {}
    by_model: dict[str, dict[str, Any]] = {}
    today = day_key(now)[len("day:"):]
    # Charged at the worst case because their outcome is unknown (crash, pause, timeout): part
    # of spent_usd, shown apart until a late settle replaces them by the real cost.
    unsettled = {"day": 0, "month": 0}
    for e in entries:
        for table, key, name in ((by_team, e.team, "team"), (by_day, e.at[:10], "day"), (by_model, e.model, "model")):
            row = table.setdefault(key, {name: key, "calls": 0, "input_tokens": 0, "output_tokens": 0, "micros": 0,
                                         "unsettled": 0})
            row["calls"] += 1
            row["input_tokens"] += e.input_tokens
            row["output_tokens"] += e.output_tokens
            row["micros"] += e.cost_micros
            row["unsettled"] += e.cost_micros if e.unsettled else 0
        if e.unsettled:
            unsettled["month"] += e.cost_micros
            unsettled["day"] += e.cost_micros if e.at[:10] == today else 0

    def rows(table: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**{k: v for k, v in r.items() if k not in ("micros", "unsettled")}, "cost_usd": usd(r["micros"]),
                 "unsettled_usd": usd(r["unsettled"])} for _, r in sorted(table.items())]

    def spent(name: str) -> float:
        return usd(windows[name].spent_micros) if name in windows else 0.0

    def window_row(name: str, limit_micros: int) -> dict[str, Any]:  # one budget window, for the dashboard
        w = windows.get(name)
        spent_m, reserved_m = (w.spent_micros, w.reserved_micros) if w else (0, 0)
        return {"window": name, "limit_usd": usd(limit_micros), "spent_usd": usd(spent_m),
                "unsettled_usd": usd(unsettled.get(name, 0)), "reserved_usd": usd(reserved_m),
                "remaining_usd": usd(max(0, limit_micros - spent_m - reserved_m)),
                "alert_at_usd": usd(round(limit_micros * tenant.alert_threshold)),
                "reset_at": reset_at("month:" if name == "month" else "day", now)}

    return {
        "tenant_id": tenant.id,
        "spent_usd": {"day": spent("day"), "month": spent("month")},
        "unsettled_usd": {"day": usd(unsettled["day"]), "month": usd(unsettled["month"])},
        "reserved_usd": {name: usd(w.reserved_micros) for name, w in windows.items()},
        "limits": {
            "daily_usd": usd(tenant.daily_limit_micros), "monthly_usd": usd(tenant.monthly_limit_micros),
            "rpm": tenant.rpm, "tpm": tenant.tpm, "alert_threshold": tenant.alert_threshold,
            "team_daily_usd": {t: usd(v) for t, v in tenant.team_daily_limit_micros.items()},
        },
        "windows": [window_row("day", tenant.daily_limit_micros), window_row("month", tenant.monthly_limit_micros)]
        + [window_row(f"team:{t}:day", v) for t, v in sorted(tenant.team_daily_limit_micros.items())],
        "by_team": rows(by_team),
        "by_day": rows(by_day),
        "by_model": rows(by_model),
    }


def tenant_stats(runtime: Runtime, tenant_id: str, hours: float) -> dict[str, Any]:
    """``GET /v1/stats`` for one tenant: latency percentiles and error rates over ``hours``."""
    since = since_iso(hours)
    events = audit.recent(runtime.store, tenant_id, since)
    return {"tenant_id": tenant_id, "hours": hours, "since": since, **operation_stats(events)}


def merge_usage(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum tenants' usage reports (spend per window, by day, team and model)."""
    out: dict[str, Any] = {"spent_usd": {"day": 0.0, "month": 0.0}}
    for table, key in (("by_day", "day"), ("by_team", "team"), ("by_model", "model")):
        merged: dict[str, dict[str, Any]] = {}
        for r in reports:
            for row in r.get(table, []):
                acc = merged.setdefault(row[key], {key: row[key], "calls": 0, "input_tokens": 0, "output_tokens": 0,
                                                   "cost_usd": 0.0})
                for field in ("calls", "input_tokens", "output_tokens", "cost_usd"):
                    acc[field] += row[field]
        out[table] = [{**v, "cost_usd": round(v["cost_usd"], 6)} for _, v in sorted(merged.items())]
    for r in reports:
        out["spent_usd"]["day"] += r["spent_usd"]["day"]
        out["spent_usd"]["month"] += r["spent_usd"]["month"]
    out["spent_usd"] = {k: round(v, 6) for k, v in out["spent_usd"].items()}
    return out


def admin_overview(runtime: Runtime, hours: float, max_tenants: int = 500) -> dict[str, Any]:
    """Every tenant's spend, budget windows and service levels, and the fleet's totals."""
    from shared.tenants import public_tenant

    since = since_iso(hours)
    tenants: list[Tenant] = runtime.store.list_tenants()[:max_tenants]
    rows, reports, all_events, recent_audit = [], [], [], []
    for t in tenants:
        report = usage_report(runtime, t)
        events = audit.recent(runtime.store, t.id, since)
        s = operation_stats(events)
        reports.append(report)
        all_events += events
        recent_audit += [{"tenant_id": t.id, **e.public()} for e in events[:30]]
        rows.append({**public_tenant(t), "spent_usd": report["spent_usd"], "windows": report["windows"],
                     "operations": s["operations"], "errors": s["errors"], "error_rate": s["error_rate"],
                     "latency_ms": s["latency_ms"]})
    recent_audit.sort(key=lambda e: e["at"], reverse=True)
    if len(recent_audit) < 30:  # quiet fleet: show admin actions and older events too
        for t in tenants:
            recent_audit += [{"tenant_id": t.id, **e.public()} for e in runtime.store.list_audit(t.id, 30)
                             if e.at < since]
        recent_audit.sort(key=lambda e: e["at"], reverse=True)
    return {"hours": hours, "since": since, "tenants": rows, "usage": merge_usage(reports),
            "stats": operation_stats(all_events), "audit": recent_audit[:30],
            "truncated": len(tenants) >= max_tenants}


__all__ = ["admin_overview", "merge_usage", "tenant_stats", "usage_report"]
