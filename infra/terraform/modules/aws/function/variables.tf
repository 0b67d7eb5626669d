variable "name" {
  description = "Function name (also the prefix of its role and log group)."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z0-9-_]{1,56}$", var.name))
    error_message = "name must be 1-56 letters, digits, '-' or '_' (the role name adds '-role')."
  }
}

variable "description" {
  description = "What the function serves."
  type        = string
  default     = ""
}

variable "handler" {
  description = "Python handler, module.attribute."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z_][a-zA-Z0-9_.]*\\.[a-zA-Z_][a-zA-Z0-9_]*$", var.handler))
    error_message = "handler must look like package.module.attribute."
  }
}

variable "package" {
  description = "The Lambda zip in S3 (uploaded once for all functions) and its base64 SHA-256 (filebase64sha256)."
  type = object({
    s3_bucket = string
    s3_key    = string
    sha256    = string
  })
}

variable "runtime" {
  description = "Lambda runtime; the zip's bytecode is compiled for it."
  type        = string
  default     = "python3.11"
  validation {
    condition     = contains(["python3.11"], var.runtime)
    error_message = "The zip is built for python3.11 (scripts/build_lambda.py)."
  }
}

variable "settings" {
  description = "Sizing and limits of this function."
  type = object({
    memory_mb            = number
    timeout_s            = number
    reserved_concurrency = optional(number)
    log_retention_days   = number
  })
  validation {
    condition     = var.settings.memory_mb >= 128 && var.settings.memory_mb <= 10240
    error_message = "memory_mb must be within 128-10240."
  }
  validation {
    condition     = var.settings.timeout_s >= 1 && var.settings.timeout_s <= 900
    error_message = "timeout_s must be within 1-900."
  }
  validation {
    condition     = var.settings.reserved_concurrency == null ? true : var.settings.reserved_concurrency >= 0
    error_message = "reserved_concurrency must be null (unreserved) or >= 0."
  }
}

variable "environment" {
  description = "Environment variables (never secret values: secrets are read from Secrets Manager)."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "Customer managed key for the environment variables and the log group."
  type        = string
}

variable "policy_statements" {
  description = "What this function may do beyond writing its own logs (least privilege: exact resources)."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
  }))
  default = []
}

variable "public_url" {
  description = "Give the function a public Function URL (the gateway alone; it authenticates API keys itself)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
