variable "name_prefix" {
  description = "Prefix of the alarm names."
  type        = string
  default     = "multiagent"
}

variable "namespace" {
  description = "CloudWatch namespace of the Embedded Metric Format lines (shared/observability/metrics.py NAMESPACE)."
  type        = string
  default     = "MultiAgent"
}

variable "teams" {
  description = "Teams whose p95 latency is watched (the catalog's names)."
  type        = list(string)
}

variable "alarm_actions" {
  description = "ARNs (SNS topics) notified when an alarm fires and when it recovers."
  type        = list(string)
  default     = []
}

variable "server_errors_per_10_minutes" {
  description = "Alarm when more operation calls than this fail with a 5xx problem type in 10 minutes."
  type        = number
  default     = 5
}

variable "latency_p95_threshold_ms" {
  description = "Alarm when a team's p95 latency stays above this many milliseconds for 15 minutes."
  type        = number
  default     = 60000
}
