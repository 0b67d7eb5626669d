"""Small pieces of shared.observability: percentiles, trace context, audit paging, metric lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shared.observability import audit, metrics, tracing
from shared.observability.health import overall
from shared.observability.shutdown import grace_seconds
from shared.observability.stats import operation_stats, percentile
from shared.store import open_store
from shared.store.base import AuditEvent, new_id

ROOT = Path(__file__).resolve().parents[2]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) is None
    assert percentile([30.0, 10.0, 20.0], 50) == 20.0


def _op(team: str, ms: float, status: int = 200, problem: str | None = None) -> AuditEvent:
    detail: dict = {"duration_ms": ms}
    if problem:
        detail["problem"] = problem
    return AuditEvent(id=new_id("aud"), tenant_id="t", type="operation", team=team, operation="ask", status=status,
                      detail=detail)


def test_operation_stats_per_team_and_error_types() -> None:
    events = [_op("legal", float(ms)) for ms in range(100, 1100, 100)]  # 100..1000
    events += [_op("finance", 50.0), _op("finance", 70.0, 402, "budget-exceeded"),
               _op("finance", 5.0, 429, "rate-limited"), _op("finance", 9.0, 500),
               AuditEvent(id="x", tenant_id="t", type="tool", team="finance")]
    s = operation_stats(events)
    assert s["operations"] == 14 and s["errors"] == 3 and s["error_rate"] == pytest.approx(3 / 14)
    legal = next(r for r in s["by_team"] if r["team"] == "legal")
    assert (legal["calls"], legal["p50_ms"], legal["p95_ms"], legal["p99_ms"]) == (10, 500.0, 1000.0, 1000.0)
    finance = next(r for r in s["by_team"] if r["team"] == "finance")
    assert finance["errors"] == 3 and finance["error_rate"] == 0.75
    assert {e["type"]: e["count"] for e in s["errors_by_type"]} == {
        "budget-exceeded": 1, "rate-limited": 1, "internal-error": 1}


def test_traceparent_parse_and_child() -> None:
    ctx = tracing.parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert ctx is not None and ctx.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and ctx.span_id == "00f067aa0ba902b7"
    for bad in ("", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
        assert tracing.parse_traceparent(bad) is None
    token = tracing.activate(ctx)
    try:
        header = tracing.outgoing_headers()["traceparent"]
        assert header.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and header.endswith("-01")
    finally:
        tracing.deactivate(token)
    assert tracing.current() is None


def test_audit_paging_never_skips_events_sharing_a_timestamp(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    store.init()
    at = "2026-11-22T10:00:00.000000Z"
    events = [AuditEvent(id=f"aud_{i:03d}", tenant_id="t", type="tool", at=at) for i in range(7)]
    events += [AuditEvent(id=new_id("aud"), tenant_id="t", type="operation", at=f"2026-11-22T09:00:0{i}.000000Z")
               for i in range(5)]
    store.append_audit(events)
    seen, cursor = [], None
    for _ in range(20):
        page, cursor = audit.page(store, "t", 3, cursor)
        seen += [e.id for e in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted(e.id for e in events) and len(seen) == len(set(seen)) == 12
    assert audit.page(store, "t", 50, None)[1] is None


def test_digest_is_size_and_sha256_of_canonical_json() -> None:
    d = audit.digest({"b": 1, "a": "é"})
    assert d == {"bytes": len('{"a":"é","b":1}'.encode()),
                 "sha256": __import__("hashlib").sha256('{"a":"é","b":1}'.encode()).hexdigest()}


def test_health_overall_states() -> None:
    ok = {"status": "pass"}
    assert overall({"store": ok, "model": ok, "secrets": ok, "budget": ok}) == ("healthy", 200)
    assert overall({"store": ok, "model": {"status": "warn"}, "budget": ok}) == ("degraded", 200)
    assert overall({"store": ok, "model": ok, "budget": {"status": "fail"}}) == ("degraded", 200)
    assert overall({"store": {"status": "fail"}, "model": ok}) == ("unhealthy", 503)
    assert overall({"store": ok, "model": {"status": "fail"}}) == ("unhealthy", 503)


def test_grace_seconds() -> None:
    assert grace_seconds({}) == 8.0 and grace_seconds({"MULTIAGENT_SHUTDOWN_GRACE_S": "2.5"}) == 2.5
    with pytest.raises(Exception, match="MULTIAGENT_SHUTDOWN_GRACE_S"):
        grace_seconds({"MULTIAGENT_SHUTDOWN_GRACE_S": "soon"})


def test_cloud_metric_line_is_cloudwatch_emf_on_lambda(monkeypatch, caplog) -> None:
    from shared.errors import BudgetExceeded
    from shared.operations import OperationOutcome

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "multiagent-legal")
    problem = BudgetExceeded("no money", limit_usd=1.0, spent_usd=1.0, window="day", reset_at="x")
    with caplog.at_level(logging.INFO, logger="multiagent.metrics"):
        metrics.observe_operation(OperationOutcome("legal", "ask", status=402, duration_ms=12.5, problem=problem,
                                                   trace_id="ab" * 16), serve_mode=False, tool_calls=2)
    fields = caplog.records[-1].fields  # type: ignore[attr-defined]
    emf = fields["_aws"]
    assert isinstance(emf["Timestamp"], int)
    names = {m["Name"] for d in emf["CloudWatchMetrics"] for m in d["Metrics"]}
    assert names == {"requests", "Latency", "input_tokens", "output_tokens", "CostUSD", "tool_calls", "errors",
                     "budget_refusals"}
    for directive in emf["CloudWatchMetrics"]:  # every metric and dimension named is a member of the line
        assert all(m["Name"] in fields for m in directive["Metrics"])
        assert all(dim in fields for dims in directive["Dimensions"] for dim in dims)
    assert fields["error_type"] == "budget-exceeded" and fields["refusal"] == "budget" and fields["Latency"] == 12.5
    json.dumps(fields)


def test_cold_start_imports_neither_otel_nor_prometheus() -> None:
    code = ("import sys\nfrom shared.http.app import build_app\nfrom shared.runtime import Runtime\n"
            "from shared.config import Settings\n"
            "build_app(Runtime(Settings(store_url='sqlite:///:memory:')))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('opentelemetry', 'prometheus'))}))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
