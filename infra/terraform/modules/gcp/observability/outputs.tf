output "metric_types" {
  description = "The Cloud Monitoring metric types of the log-based metrics, by short name."
  value = {
    for k, m in {
      requests   = google_logging_metric.requests, latency_ms = google_logging_metric.latency,
      cost_usd   = google_logging_metric.cost, output_tokens = google_logging_metric.tokens,
      errors     = google_logging_metric.errors, budget_refusals = google_logging_metric.budget_refusals,
      tool_calls = google_logging_metric.tool_calls,
    } : k => "logging.googleapis.com/user/${m.name}"
  }
}

output "alert_policy_ids" {
  description = "Ids of the alert policies."
  value = [google_monitoring_alert_policy.server_errors.id, google_monitoring_alert_policy.slow_team.id,
  google_monitoring_alert_policy.budget_refusals.id]
}
