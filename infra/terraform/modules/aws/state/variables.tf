variable "table_prefix" {
  description = "The store's table prefix: MULTIAGENT_STORE=dynamodb://PREFIX uses the table PREFIX-store."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,248}$", var.table_prefix))
    error_message = "table_prefix may only use letters, digits, '_', '-' and '.' (shared/store/dynamodb.py)."
  }
}

variable "kms_key_arn" {
  description = "Customer managed key for encryption at rest."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the table (turn off only to destroy a throwaway environment)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
