"""The cloud side of metrics: the Terraform that turns the per-operation log line into
log-based metrics and alerts (GCP) and alarms on its EMF metrics (AWS) names only fields
and metrics that the line really carries."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hcl2
import pytest

from shared.errors import BudgetExceeded, ModelError
from shared.models.base import Usage
from shared.observability import metrics
from shared.operations import OperationOutcome

MODULES = Path(__file__).resolve().parents[2] / "infra" / "terraform" / "modules"


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of keys and strings in some versions: drop them."""
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return _unquote(hcl2.load(f))


def resources(module: Path, kind: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in load(module / "main.tf").get("resource", []):
        for name, body in block.get(kind, {}).items():
            out[name] = body
    return out


@pytest.fixture
def metric_line(monkeypatch, caplog) -> dict[str, Any]:
    """The lines a Lambda function writes for a successful and a failed operation (EMF included), merged."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "multiagent-legal")
    guard = SimpleNamespace(usage=Usage(input_tokens=900, output_tokens=40), cost_micros=3300,
                            models=["claude-opus-4-5"])
    with caplog.at_level(logging.INFO, logger="multiagent.metrics"):
        metrics.observe_operation(OperationOutcome("legal", "ask", status=200, duration_ms=812.0,
                                                   call=SimpleNamespace(guard=guard)),  # type: ignore[arg-type]
                                  serve_mode=False, tool_calls=1)
        metrics.observe_operation(OperationOutcome("legal", "ask", status=502, duration_ms=40.0,
                                                   problem=ModelError("boom")), serve_mode=False)
        metrics.observe_operation(OperationOutcome("legal", "ask", status=402, duration_ms=3.0,
                                                   problem=BudgetExceeded("no", limit_usd=1.0, spent_usd=1.0,
                                                                          window="day", reset_at="x")),
                                  serve_mode=False)
    ok, failed, refused = (r.fields for r in caplog.records[-3:])  # type: ignore[attr-defined]
    assert ok["model"] == "claude-opus-4-5" and ok["cost_usd"] == 0.0033 and failed["error_type"] == "model-error"
    assert refused["refusal"] == "budget"
    directives = [d for line in (ok, failed, refused) for d in line["_aws"]["CloudWatchMetrics"]]
    return {"logger": "multiagent.metrics", **refused, **ok, **failed, "_aws": {"CloudWatchMetrics": directives}}


def test_gcp_log_metrics_extract_fields_the_line_has(metric_line):
    module = MODULES / "gcp" / "observability"
    log_metrics = resources(module, "google_logging_metric")
    assert {"requests", "latency", "cost", "errors", "budget_refusals", "tool_calls"} <= set(log_metrics)
    for name, body in log_metrics.items():
        text = " ".join(str(v) for v in (body.get("filter"), body.get("value_extractor"), body.get("label_extractors")))
        for field in re.findall(r"jsonPayload\.([a-z_]+)", text):
            assert field in metric_line, f"{name} reads jsonPayload.{field}, which the metric line lacks"
    main = (module / "main.tf").read_text()
    assert 'jsonPayload.logger=\\"multiagent.metrics\\"' in main and 'jsonPayload.metric=\\"operation\\"' in main
    assert metric_line["metric"] == "operation"
    policies = resources(module, "google_monitoring_alert_policy")
    assert set(policies) == {"server_errors", "slow_team", "budget_refusals"}
    for file in ("variables.tf", "outputs.tf", "versions.tf"):
        load(module / file)


def test_aws_alarms_watch_metrics_the_emf_line_declares(metric_line):
    module = MODULES / "aws" / "observability"
    declared = {}
    for directive in metric_line["_aws"]["CloudWatchMetrics"]:
        for m in directive["Metrics"]:
            declared.setdefault(m["Name"], set()).update(frozenset(d) for d in directive["Dimensions"])
    alarms = resources(module, "aws_cloudwatch_metric_alarm")
    assert set(alarms) == {"server_errors", "slow_team", "budget_refusals"}
    for name, body in alarms.items():
        assert body["namespace"] == "${var.namespace}"
        metric = body["metric_name"]
        assert metric in declared, f"alarm {name} watches {metric}, which no EMF directive declares"
        assert frozenset(body["dimensions"]) in declared[metric], (name, body["dimensions"])
    variables = load(module / "variables.tf")["variable"]
    namespace = next(v["namespace"] for v in variables if "namespace" in v)
    assert namespace["default"] == metrics.NAMESPACE
