output "function_name" {
  description = "The function's name."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "The function's ARN (what the gateway may invoke)."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "The function's own IAM role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Where the function logs."
  value       = aws_cloudwatch_log_group.this.name
}

output "url" {
  description = "The public Function URL (null unless public_url)."
  value       = var.public_url ? aws_lambda_function_url.this[0].function_url : null
}
