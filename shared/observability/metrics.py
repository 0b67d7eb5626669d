"""Metrics: Prometheus in ``serve`` mode, structured log lines in the cloud.

The facts are the same either way: operation calls (by team, operation, status), their
latency, model tokens and cost, tool calls, errors by problem type and budget refusals.

- ``multiagent serve``: counters and histograms in a process-wide ``prometheus_client``
  registry, exposed at ``GET /metrics`` (names in :data:`METRIC_NAMES`; the Grafana
  dashboard under ``deploy/observability`` queries exactly these).
- A cloud function (no scraper can reach it): one JSON log line per operation on stderr
  (``logger: multiagent.metrics``, ``message: operation``), which Cloud Logging turns into
  log-based metrics; on Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) the same line carries
  CloudWatch Embedded Metric Format (``_aws``), so CloudWatch extracts the metrics itself.

``prometheus_client`` is imported only in serve mode.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.operations import OperationOutcome

log = logging.getLogger("multiagent.metrics")

NAMESPACE = "MultiAgent"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
# every series name /metrics exposes (histograms add _bucket, _sum, _count)
METRIC_NAMES = (
    "multiagent_requests_total",
    "multiagent_request_duration_seconds",
    "multiagent_inflight_requests",
    "multiagent_model_calls_total",
    "multiagent_model_call_duration_seconds",
    "multiagent_model_tokens_total",
    "multiagent_model_cost_usd_total",
    "multiagent_tool_calls_total",
    "multiagent_errors_total",
    "multiagent_budget_refusals_total",
)


class PrometheusMetrics:
    """The serve-mode instruments, in their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("multiagent_requests", "Team operation calls by team, operation and HTTP status.",
                                ["team", "operation", "status"], registry=r)
        self.duration = Histogram("multiagent_request_duration_seconds", "Team operation latency (seconds).",
                                  ["team", "operation"], buckets=LATENCY_BUCKETS, registry=r)
        # several workers (serve --workers): every value lives in PROMETHEUS_MULTIPROC_DIR, summed on scrape
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.inflight = Gauge("multiagent_inflight_requests", "Team operation calls in progress.", registry=r,
                              multiprocess_mode="livesum")
        self.usage_anomalies = Counter("multiagent_usage_anomalies", "Model answers whose usage was outside sane "
                                       "bounds, charged at the reserved worst case.", ["team", "model"], registry=r)
        self.model_calls = Counter("multiagent_model_calls", "Model API calls by team and model.",
                                   ["team", "model", "outcome"], registry=r)
        self.model_duration = Histogram("multiagent_model_call_duration_seconds", "Model API call latency (seconds).",
                                        ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("multiagent_model_tokens", "Model tokens by team, model and direction (input/output).",
                              ["team", "model", "direction"], registry=r)
        self.cost = Counter("multiagent_model_cost_usd", "Model cost in USD by team and model.", ["team", "model"],
                            registry=r)
        self.tool_calls = Counter("multiagent_tool_calls", "Tool invocations by team, tool and outcome.",
                                  ["team", "tool", "outcome"], registry=r)
        self.errors = Counter("multiagent_errors", "Failed operation calls by team and problem type.",
                              ["team", "type"], registry=r)
        self.refusals = Counter("multiagent_budget_refusals", "Calls refused by a budget or rate limit.",
                                ["team", "kind"], registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set: prometheus_client
        checks the labels and takes a lock on every ``labels`` call, several per request."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]
            return generate_latest(every_worker), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_prometheus: PrometheusMetrics | None = None
_lock = threading.Lock()


def enable_prometheus() -> PrometheusMetrics:
    """The process's Prometheus instruments (created on first use, in serve mode)."""
    global _prometheus
    with _lock:
        if _prometheus is None:
            _prometheus = PrometheusMetrics()
        return _prometheus


def prometheus() -> PrometheusMetrics | None:
    """The instruments, if serve mode enabled them."""
    return _prometheus


def _problem_slug(outcome: OperationOutcome) -> str | None:
    problem = outcome.problem
    if problem is not None:
        return str(getattr(problem, "slug", "error"))
    status = int(outcome.status or 500)
    return "internal-error" if status >= 500 else (f"http-{status}" if status >= 400 else None)


def observe_operation(outcome: OperationOutcome, *, serve_mode: bool, tool_calls: int = 0) -> None:
    """Record one finished operation call (``shared.operations.OperationOutcome``)."""
    team, operation = outcome.team, outcome.operation
    status = int(outcome.status or 500)
    seconds = float(outcome.duration_ms or 0.0) / 1000
    error = _problem_slug(outcome)
    refusal = {"budget-exceeded": "budget", "rate-limited": "rate"}.get(error or "")
    prom = _prometheus if serve_mode else None
    if prom is not None:
        prom.child(prom.requests, team, operation, str(status)).inc()
        prom.child(prom.duration, team, operation).observe(seconds)
        if error:
            prom.child(prom.errors, team, error).inc()
        if refusal:
            prom.child(prom.refusals, team, refusal).inc()
        return
    guard = outcome.call.guard if outcome.call is not None else None
    fields: dict[str, Any] = {
        "metric": "operation", "team": team, "operation": operation, "status": status,
        "duration_ms": round(seconds * 1000, 2), "requests": 1, "errors": 1 if error else 0,
        "budget_refusals": 1 if refusal else 0, "tool_calls": tool_calls,
        "input_tokens": guard.usage.input_tokens if guard else 0,
        "output_tokens": guard.usage.output_tokens if guard else 0,
        "cost_usd": guard.cost_micros / 1e6 if guard else 0.0,
    }
    if guard is not None and guard.models:
        fields["model"] = guard.models[-1]
    if error:
        fields["error_type"] = error
    if refusal:
        fields["refusal"] = refusal
    if outcome.trace_id:
        fields["trace_id"] = outcome.trace_id
        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
        if project:  # Cloud Logging links the line to the trace
            fields["logging.googleapis.com/trace"] = f"projects/{project}/traces/{outcome.trace_id}"
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        fields["_aws"] = emf_directive(bool(error), bool(refusal))
        fields["Latency"] = fields["duration_ms"]
        fields["CostUSD"] = fields["cost_usd"]
    log.info("operation", extra={"fields": fields})


def emf_directive(error: bool, refusal: bool) -> dict[str, Any]:
    """CloudWatch Embedded Metric Format metadata for an operation line."""
    directives: list[dict[str, Any]] = [{
        "Namespace": NAMESPACE, "Dimensions": [["team", "operation"], ["team"]],
        "Metrics": [{"Name": "requests", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "input_tokens", "Unit": "Count"}, {"Name": "output_tokens", "Unit": "Count"},
                    {"Name": "CostUSD", "Unit": "None"}, {"Name": "tool_calls", "Unit": "Count"}],
    }]
    if error:
        directives.append({"Namespace": NAMESPACE, "Dimensions": [["error_type"]],
                           "Metrics": [{"Name": "errors", "Unit": "Count"}]})
    if refusal:
        directives.append({"Namespace": NAMESPACE, "Dimensions": [["refusal"]],
                           "Metrics": [{"Name": "budget_refusals", "Unit": "Count"}]})
    return {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}


def observe_model_call(team: str, model: str, input_tokens: int, output_tokens: int, cost_micros: int,
                       seconds: float, ok: bool) -> None:
    """Record one model API call (serve mode; the cloud line carries per-operation totals)."""
    prom = _prometheus
    if prom is None:
        return
    prom.child(prom.model_calls, team, model, "ok" if ok else "error").inc()
    prom.child(prom.model_duration, model).observe(seconds)
    if ok:
        prom.child(prom.tokens, team, model, "input").inc(input_tokens)
        prom.child(prom.tokens, team, model, "output").inc(output_tokens)
        prom.child(prom.cost, team, model).inc(cost_micros / 1e6)


def observe_usage_anomaly(team: str, model: str) -> None:
    """Count one model answer whose reported usage was outside sane bounds."""
    prom = _prometheus
    if prom is not None:
        prom.child(prom.usage_anomalies, team, model).inc()


def observe_tool_call(team: str, tool: str, outcome: str) -> None:
    """Record one tool invocation: ``ok``, ``error`` or ``denied``."""
    prom = _prometheus
    if prom is not None:
        prom.child(prom.tool_calls, team, tool, outcome).inc()


__all__ = ["METRIC_NAMES", "PrometheusMetrics", "emf_directive", "enable_prometheus", "observe_model_call",
           "observe_operation", "observe_tool_call", "observe_usage_anomaly", "prometheus"]
