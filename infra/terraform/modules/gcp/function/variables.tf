variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Cloud Run region."
  type        = string
}

variable "name" {
  description = "Cloud Run service name (also the base of its service account)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$", var.name))
    error_message = "name must be a Cloud Run service name: lower-case letters, digits and '-', at most 49 characters."
  }
}

variable "description" {
  description = "What the service serves."
  type        = string
  default     = ""
}

variable "image" {
  description = "The container image (the same one for every function), best pinned by digest."
  type        = string
  validation {
    condition     = length(var.image) > 0
    error_message = "image must name the pushed container image."
  }
}

variable "settings" {
  description = "Scaling and sizing of this service."
  type = object({
    min_instances = number
    max_instances = number
    concurrency   = number
    timeout_s     = number
    memory        = string
    cpu           = string
  })
  validation {
    condition     = var.settings.min_instances >= 0 && var.settings.max_instances >= max(1, var.settings.min_instances)
    error_message = "need 0 <= min_instances <= max_instances and max_instances >= 1."
  }
  validation {
    condition     = var.settings.concurrency >= 1 && var.settings.concurrency <= 1000
    error_message = "concurrency must be within 1-1000."
  }
  validation {
    condition     = var.settings.timeout_s >= 1 && var.settings.timeout_s <= 3600
    error_message = "timeout_s must be within 1-3600."
  }
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.settings.memory))
    error_message = "memory must look like 512Mi or 2Gi."
  }
  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.settings.cpu)
    error_message = "cpu must be 1, 2, 4, 6 or 8."
  }
}

variable "environment" {
  description = "Environment variables (never secret values: secrets are read from Secret Manager)."
  type        = map(string)
  default     = {}
}

variable "secret_ids" {
  description = "Secret Manager secret ids this function may read (secretAccessor on each, nothing else)."
  type        = map(string)
  default     = {}
}

variable "public" {
  description = "Let allUsers invoke the service (the gateway alone; it authenticates API keys itself)."
  type        = bool
  default     = false
}

variable "invokers" {
  description = "IAM members allowed to invoke a private service (the gateway's service account)."
  type        = list(string)
  default     = []
}

variable "project_roles" {
  description = "Project roles of the function's service account, each with an optional IAM condition."
  type = list(object({
    role      = string
    condition = optional(object({ title = string, expression = string }))
  }))
  default = []
}

variable "deletion_protection" {
  description = "Refuse to delete the service through Terraform."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels for the service."
  type        = map(string)
  default     = {}
}
