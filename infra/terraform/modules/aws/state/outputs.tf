output "table_name" {
  description = "The table's name (PREFIX-store)."
  value       = aws_dynamodb_table.store.name
}

output "table_arn" {
  description = "The table's ARN."
  value       = aws_dynamodb_table.store.arn
}

output "store_url" {
  description = "MULTIAGENT_STORE for the functions (region added by the caller)."
  value       = "dynamodb://${var.table_prefix}"
}

output "data_plane_resources" {
  description = "The ARNs a function's policy names for data access (table and its indexes)."
  value       = [aws_dynamodb_table.store.arn, "${aws_dynamodb_table.store.arn}/index/*"]
}
