variable "prefix" {
  description = "Secret names are PREFIX + name (MULTIAGENT_SECRETS_PREFIX of the functions)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]{1,200}$", var.prefix))
    error_message = "prefix may use letters, digits and /_+=.@- only."
  }
}

variable "names" {
  description = "Secret names (kebab-case, as the code asks for them: anthropic-api-key, internal-signing-key, admin-key, webhook-secret)."
  type        = set(string)
  validation {
    condition     = alltrue([for n in var.names : can(regex("^[a-z][a-z0-9-]{1,62}$", n))])
    error_message = "secret names are kebab-case."
  }
}

variable "kms_key_arn" {
  description = "Customer managed key the secrets are encrypted with."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once)."
  type        = number
  default     = 7
  validation {
    condition     = var.recovery_window_days == 0 || (var.recovery_window_days >= 7 && var.recovery_window_days <= 30)
    error_message = "recovery_window_days must be 0 or within 7-30."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
