# CloudWatch alarms over the metrics CloudWatch extracts from the Embedded Metric Format
# line each Lambda function writes per operation (shared/observability/metrics.py):
# "errors" by error_type, "Latency" by team, "budget_refusals" by refusal.

locals {
  server_error_types = toset(["model-error", "unavailable", "timeout", "internal-error"])
  refusal_kinds      = toset(["budget", "rate"])
}

resource "aws_cloudwatch_metric_alarm" "server_errors" {
  for_each            = local.server_error_types
  alarm_name          = "${var.name_prefix}-errors-${each.key}"
  alarm_description   = "Operation calls failing with ${each.key} (5xx). Check /health?deep=1 and the functions' logs."
  namespace           = var.namespace
  metric_name         = "errors"
  dimensions          = { error_type = each.key }
  statistic           = "Sum"
  period              = 600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.server_errors_per_10_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "slow_team" {
  for_each            = toset(var.teams)
  alarm_name          = "${var.name_prefix}-latency-p95-${each.key}"
  alarm_description   = "p95 latency of ${each.key} operations above ${var.latency_p95_threshold_ms} ms."
  namespace           = var.namespace
  metric_name         = "Latency"
  dimensions          = { team = each.key }
  extended_statistic  = "p95"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.latency_p95_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "budget_refusals" {
  for_each            = local.refusal_kinds
  alarm_name          = "${var.name_prefix}-refusals-${each.key}"
  alarm_description   = "Calls refused by a tenant's ${each.key == "budget" ? "budget (402)" : "rate limit (429)"}; per-tenant detail on the gateway's /dashboard."
  namespace           = var.namespace
  metric_name         = "budget_refusals"
  dimensions          = { refusal = each.key }
  statistic           = "Sum"
  period              = 600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}
