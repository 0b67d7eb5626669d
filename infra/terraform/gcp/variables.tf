variable "environment" {
  description = "Which environment this state is: dev, staging or prod."
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "project" {
  description = "Google Cloud project id."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a Google Cloud project id."
  }
}

variable "region" {
  description = "Region of the Cloud Run services and the image repository."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "name_prefix" {
  description = "First part of every name: PREFIX-ENV-TEAM."
  type        = string
  default     = "multiagent"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "name_prefix must be 2-20 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "teams" {
  description = "The teams, one service each. Generated from the catalog: `multiagent export terraform` writes teams.auto.tfvars.json."
  type = map(object({
    description = string
  }))
  validation {
    condition     = length(var.teams) > 0 && alltrue([for name in keys(var.teams) : can(regex("^[a-z][a-z0-9-]{1,29}$", name))])
    error_message = "teams must be a non-empty map keyed by kebab-case team names of at most 30 characters."
  }
}

variable "image" {
  description = "The container image every function runs (scripts/deploy.sh passes the pushed digest)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^ ]+(@sha256:[0-9a-f]{64}|:[A-Za-z0-9_.-]+)$", var.image))
    error_message = "image must be a full image reference with a tag or a digest."
  }
}

variable "model_provider" {
  description = "MULTIAGENT_MODEL_PROVIDER of every function."
  type        = string
  default     = "anthropic"
  validation {
    condition     = contains(["anthropic", "vertex", "offline"], var.model_provider)
    error_message = "model_provider must be anthropic, vertex or offline on Google Cloud."
  }
}

variable "functions" {
  description = "Scaling and sizing of every team service (team_overrides changes single teams)."
  type = object({
    min_instances = optional(number, 0)
    max_instances = optional(number, 10)
    concurrency   = optional(number, 40)
    timeout_s     = optional(number, 150)
    memory        = optional(string, "1Gi")
    cpu           = optional(string, "1")
  })
  default = {}
  validation {
    condition     = var.functions.min_instances >= 0 && var.functions.max_instances >= max(1, var.functions.min_instances)
    error_message = "functions needs 0 <= min_instances <= max_instances and max_instances >= 1."
  }
  validation {
    condition     = var.functions.concurrency >= 1 && var.functions.concurrency <= 1000
    error_message = "functions.concurrency must be within 1-1000."
  }
  validation {
    condition     = var.functions.timeout_s >= 30 && var.functions.timeout_s <= 3540
    error_message = "functions.timeout_s must be within 30-3540 (the gateway waits 60 s longer, at most 3600)."
  }
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.functions.memory))
    error_message = "functions.memory must look like 512Mi or 2Gi."
  }
}

variable "team_overrides" {
  description = "Per-team changes to `functions`, e.g. { research = { memory = \"2Gi\", max_instances = 20 } }."
  type = map(object({
    min_instances = optional(number)
    max_instances = optional(number)
    concurrency   = optional(number)
    timeout_s     = optional(number)
    memory        = optional(string)
    cpu           = optional(string)
  }))
  default = {}
  validation {
    condition     = alltrue([for name in keys(var.team_overrides) : contains(keys(var.teams), name)])
    error_message = "team_overrides may only name teams of var.teams."
  }
}

variable "gateway" {
  description = "Scaling, sizing and CORS of the gateway service."
  type = object({
    min_instances   = optional(number, 0)
    max_instances   = optional(number, 20)
    concurrency     = optional(number, 80)
    memory          = optional(string, "1Gi")
    cpu             = optional(string, "1")
    allowed_origins = optional(list(string), [])
  })
  default = {}
  validation {
    condition     = var.gateway.min_instances >= 0 && var.gateway.max_instances >= max(1, var.gateway.min_instances)
    error_message = "gateway needs 0 <= min_instances <= max_instances and max_instances >= 1."
  }
  validation {
    condition     = alltrue([for o in var.gateway.allowed_origins : can(regex("^https?://", o))])
    error_message = "gateway.allowed_origins must be http(s) origins."
  }
}

variable "store" {
  description = "The Firestore database: location, protection and backups."
  type = object({
    location                     = optional(string, "nam5")
    delete_protection            = optional(bool, true)
    daily_backup_retention_days  = optional(number, 7)
    weekly_backup_retention_days = optional(number, 0)
  })
  default = {}
}

variable "log_level" {
  description = "MULTIAGENT_LOG_LEVEL of every function."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "labels" {
  description = "Extra labels on every resource."
  type        = map(string)
  default     = {}
}
