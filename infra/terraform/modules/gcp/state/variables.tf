variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "database" {
  description = "Firestore database id (MULTIAGENT_STORE=firestore://PROJECT/DATABASE)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.database))
    error_message = "database must be 4-63 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "location" {
  description = "Firestore location (a multi-region such as nam5/eur3, or a region)."
  type        = string
}

variable "delete_protection" {
  description = "Refuse to delete the database."
  type        = bool
  default     = true
}

variable "daily_backup_retention_days" {
  description = "Keep each daily backup this many days (Firestore allows at most 7)."
  type        = number
  default     = 7
  validation {
    condition     = var.daily_backup_retention_days >= 1 && var.daily_backup_retention_days <= 7
    error_message = "daily_backup_retention_days must be within 1-7."
  }
}

variable "weekly_backup_retention_days" {
  description = "Keep each weekly backup this many days; 0 takes no weekly backups (at most 98 days)."
  type        = number
  default     = 0
  validation {
    condition     = var.weekly_backup_retention_days == 0 || (var.weekly_backup_retention_days >= 7 && var.weekly_backup_retention_days <= 98)
    error_message = "weekly_backup_retention_days must be 0 or within 7-98."
  }
}

variable "ttl_collections" {
  description = "Collection groups whose documents expire at their `ttl` timestamp (shared/store/firestore.py)."
  type        = set(string)
  default     = ["budget", "budget_out", "windows", "windows_out", "reservations", "idempotency", "markers", "runs", "sessions"]
}
