"""Latency percentiles and error rates, computed from the store's ``operation`` audit
events, so every instance answers the same (``GET /v1/stats``, the dashboard)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.store.base import AuditEvent

MAX_HOURS = 24 * 31


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def since_iso(hours: float, now: datetime | None = None) -> str:
    """The ISO time ``hours`` ago, in the audit events' format."""
    moment = (now or datetime.now(UTC)) - timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_type(event: AuditEvent) -> str | None:
    """The problem type of a failed operation event (None when it succeeded)."""
    status = event.status or 0
    if status < 400:
        return None
    return str(event.detail.get("problem") or ("internal-error" if status >= 500 else f"http-{status}"))


def _latency(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99)}


def operation_stats(events: Iterable[AuditEvent]) -> dict[str, Any]:
    """Counts, latency percentiles (ms) and error rates of ``operation`` events, overall and per team."""
    durations: list[float] = []
    by_team: dict[str, dict[str, Any]] = {}
    errors: dict[str, int] = {}
    total = failed = 0
    for e in events:
        if e.type != "operation":
            continue
        total += 1
        duration = float(e.detail.get("duration_ms") or 0.0)
        durations.append(duration)
        row = by_team.setdefault(e.team, {"team": e.team, "calls": 0, "errors": 0, "_d": []})
        row["calls"] += 1
        row["_d"].append(duration)
        kind = error_type(e)
        if kind:
            failed += 1
            row["errors"] += 1
            errors[kind] = errors.get(kind, 0) + 1
    teams = []
    for name in sorted(by_team):
        row = by_team[name]
        lat = _latency(row.pop("_d"))
        teams.append({**row, "error_rate": row["errors"] / row["calls"], "p50_ms": lat["p50"], "p95_ms": lat["p95"],
                      "p99_ms": lat["p99"]})
    return {
        "operations": total,
        "errors": failed,
        "error_rate": failed / total if total else 0.0,
        "latency_ms": _latency(durations),
        "by_team": teams,
        "errors_by_type": [{"type": k, "count": v, "rate": v / total}
                           for k, v in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))],
    }


__all__ = ["MAX_HOURS", "error_type", "operation_stats", "percentile", "since_iso"]
