variable "environment" {
  description = "Which environment this state is: dev, staging or prod."
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
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
  description = "The teams, one function each. Generated from the catalog: `multiagent export terraform` writes teams.auto.tfvars.json."
  type = map(object({
    description = string
  }))
  validation {
    condition     = length(var.teams) > 0 && alltrue([for name in keys(var.teams) : can(regex("^[a-z][a-z0-9-]{1,29}$", name))])
    error_message = "teams must be a non-empty map keyed by kebab-case team names of at most 30 characters."
  }
}

variable "package_path" {
  description = "The Lambda zip built by `scripts/build.sh lambda` (build/lambda/multiagent-lambda.zip)."
  type        = string
  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must be the .zip built by scripts/build.sh lambda."
  }
}

variable "model_provider" {
  description = "MULTIAGENT_MODEL_PROVIDER of every function."
  type        = string
  default     = "anthropic"
  validation {
    condition     = contains(["anthropic", "bedrock", "offline"], var.model_provider)
    error_message = "model_provider must be anthropic, bedrock or offline on AWS."
  }
}

variable "functions" {
  description = "Sizing of every team function (team_overrides changes single teams)."
  type = object({
    memory_mb            = optional(number, 1024)
    timeout_s            = optional(number, 150)
    reserved_concurrency = optional(number)
  })
  default = {}
  validation {
    condition     = var.functions.memory_mb >= 128 && var.functions.memory_mb <= 10240
    error_message = "functions.memory_mb must be within 128-10240."
  }
  validation {
    condition     = var.functions.timeout_s >= 30 && var.functions.timeout_s <= 880
    error_message = "functions.timeout_s must be within 30-880 (the gateway waits 20 s longer, at most 900)."
  }
  validation {
    condition     = var.functions.reserved_concurrency == null ? true : var.functions.reserved_concurrency >= 0
    error_message = "functions.reserved_concurrency must be null (unreserved) or >= 0."
  }
}

variable "team_overrides" {
  description = "Per-team changes to `functions`, e.g. { research = { memory_mb = 2048 } }."
  type = map(object({
    memory_mb            = optional(number)
    timeout_s            = optional(number)
    reserved_concurrency = optional(number)
  }))
  default = {}
  validation {
    condition     = alltrue([for name in keys(var.team_overrides) : contains(keys(var.teams), name)])
    error_message = "team_overrides may only name teams of var.teams."
  }
}

variable "gateway" {
  description = "Sizing and CORS of the gateway function."
  type = object({
    memory_mb            = optional(number, 1024)
    reserved_concurrency = optional(number)
    allowed_origins      = optional(list(string), [])
  })
  default = {}
  validation {
    condition     = var.gateway.memory_mb >= 128 && var.gateway.memory_mb <= 10240
    error_message = "gateway.memory_mb must be within 128-10240."
  }
  validation {
    condition     = alltrue([for o in var.gateway.allowed_origins : can(regex("^https?://", o))])
    error_message = "gateway.allowed_origins must be http(s) origins."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of every function."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 3653)."
  }
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

variable "store" {
  description = "Protection of the state table (point-in-time recovery is always on)."
  type = object({
    deletion_protection = optional(bool, true)
  })
  default = {}
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret stays restorable (0: delete at once, for throwaway environments)."
  type        = number
  default     = 7
}

variable "kms_deletion_window_days" {
  description = "Days before a scheduled key deletion happens."
  type        = number
  default     = 30
  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be within 7-30."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}
