variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "prefix" {
  description = "Secret ids are PREFIX + name (MULTIAGENT_SECRETS_PREFIX of the functions)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{0,200}$", var.prefix))
    error_message = "prefix may use letters, digits, '_' and '-' only (Secret Manager ids)."
  }
}

variable "names" {
  description = "Secret names (kebab-case, as the code asks for them)."
  type        = set(string)
  validation {
    condition     = alltrue([for n in var.names : can(regex("^[a-z][a-z0-9-]{1,62}$", n))])
    error_message = "secret names are kebab-case."
  }
}

variable "labels" {
  description = "Labels for every secret."
  type        = map(string)
  default     = {}
}
