variable "project_id" {
  description = "Project whose Cloud Logging receives the functions' metric lines."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the log-based metric and alert policy names."
  type        = string
  default     = "multiagent"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,40}$", var.name_prefix))
    error_message = "name_prefix must be lower-case letters, digits, '-' or '_', starting with a letter."
  }
}

variable "notification_channels" {
  description = "Monitoring notification channel ids the alert policies notify (none: the policies only show in the console)."
  type        = list(string)
  default     = []
}

variable "error_rate_threshold" {
  description = "Alert when more than this fraction of operation calls fail with a 5xx over 10 minutes."
  type        = number
  default     = 0.05
  validation {
    condition     = var.error_rate_threshold > 0 && var.error_rate_threshold < 1
    error_message = "error_rate_threshold must be in (0, 1)."
  }
}

variable "latency_p95_threshold_ms" {
  description = "Alert when the p95 latency of a team's operations stays above this many milliseconds for 15 minutes."
  type        = number
  default     = 60000
}
