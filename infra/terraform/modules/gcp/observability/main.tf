# Log-based metrics and alert policies over the one JSON line each function writes per
# operation (shared/observability/metrics.py: logger "multiagent.metrics", message
# "operation", fields team, operation, status, duration_ms, cost_usd, input_tokens,
# output_tokens, tool_calls, error_type, refusal). Call this module once per project.

locals {
  operation_lines = "jsonPayload.logger=\"multiagent.metrics\" AND jsonPayload.metric=\"operation\""
  labels = {
    team      = "EXTRACT(jsonPayload.team)"
    operation = "EXTRACT(jsonPayload.operation)"
  }
}

resource "google_logging_metric" "requests" {
  project = var.project_id
  name    = "${var.name_prefix}/requests"
  filter  = local.operation_lines
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "team"
      value_type = "STRING"
    }
    labels {
      key        = "operation"
      value_type = "STRING"
    }
    labels {
      key        = "status"
      value_type = "STRING"
    }
  }
  label_extractors = merge(local.labels, { status = "EXTRACT(jsonPayload.status)" })
}

resource "google_logging_metric" "latency" {
  project         = var.project_id
  name            = "${var.name_prefix}/latency_ms"
  filter          = local.operation_lines
  value_extractor = "EXTRACT(jsonPayload.duration_ms)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key        = "team"
      value_type = "STRING"
    }
    labels {
      key        = "operation"
      value_type = "STRING"
    }
  }
  label_extractors = local.labels
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 24
      growth_factor      = 1.6
      scale              = 10
    }
  }
}

resource "google_logging_metric" "cost" {
  project         = var.project_id
  name            = "${var.name_prefix}/cost_usd"
  filter          = "${local.operation_lines} AND jsonPayload.cost_usd>0"
  value_extractor = "EXTRACT(jsonPayload.cost_usd)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "USD"
    labels {
      key        = "team"
      value_type = "STRING"
    }
    labels {
      key        = "model"
      value_type = "STRING"
    }
  }
  label_extractors = { team = "EXTRACT(jsonPayload.team)", model = "EXTRACT(jsonPayload.model)" }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 20
      growth_factor      = 2
      scale              = 0.0001
    }
  }
}

resource "google_logging_metric" "tokens" {
  project         = var.project_id
  name            = "${var.name_prefix}/output_tokens"
  filter          = "${local.operation_lines} AND jsonPayload.output_tokens>0"
  value_extractor = "EXTRACT(jsonPayload.output_tokens)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key        = "team"
      value_type = "STRING"
    }
  }
  label_extractors = { team = "EXTRACT(jsonPayload.team)" }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 16
      growth_factor      = 2
      scale              = 16
    }
  }
}

resource "google_logging_metric" "errors" {
  project = var.project_id
  name    = "${var.name_prefix}/errors"
  filter  = "${local.operation_lines} AND jsonPayload.errors=1"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "team"
      value_type = "STRING"
    }
    labels {
      key        = "error_type"
      value_type = "STRING"
    }
  }
  label_extractors = { team = "EXTRACT(jsonPayload.team)", error_type = "EXTRACT(jsonPayload.error_type)" }
}

resource "google_logging_metric" "budget_refusals" {
  project = var.project_id
  name    = "${var.name_prefix}/budget_refusals"
  filter  = "${local.operation_lines} AND jsonPayload.budget_refusals=1"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "refusal"
      value_type = "STRING"
    }
  }
  label_extractors = { refusal = "EXTRACT(jsonPayload.refusal)" }
}

resource "google_logging_metric" "tool_calls" {
  project         = var.project_id
  name            = "${var.name_prefix}/tool_calls"
  filter          = "${local.operation_lines} AND jsonPayload.tool_calls>0"
  value_extractor = "EXTRACT(jsonPayload.tool_calls)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key        = "team"
      value_type = "STRING"
    }
  }
  label_extractors = { team = "EXTRACT(jsonPayload.team)" }
  bucket_options {
    linear_buckets {
      num_finite_buckets = 10
      width              = 1
      offset             = 0
    }
  }
}

resource "google_monitoring_alert_policy" "server_errors" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: 5xx error rate above ${var.error_rate_threshold * 100}%"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "share of operation calls answered 5xx"
    condition_threshold {
      filter             = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.requests.name}\" AND metric.label.status=monitoring.regex.full_match(\"5..\")"
      denominator_filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.requests.name}\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_rate_threshold
      duration           = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    content   = "Operation calls are failing with 5xx (model-error, unavailable, timeout). Check /health?deep=1 and the functions' logs."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "slow_team" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: a team's p95 latency above ${var.latency_p95_threshold_ms} ms"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "p95 latency per team"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.latency.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.latency_p95_threshold_ms
      duration        = "900s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["metric.label.team"]
      }
    }
  }
}

resource "google_monitoring_alert_policy" "budget_refusals" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: calls refused by budgets or rate limits"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "budget or rate refusals in 10 minutes"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.budget_refusals.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.refusal"]
      }
    }
  }
  documentation {
    content   = "A tenant hit its budget (402) or rate limit (429). The per-tenant view is the gateway's /dashboard with the admin key."
    mime_type = "text/markdown"
  }
}
