output "arns" {
  description = "Secret ARN by name."
  value       = { for name, s in aws_secretsmanager_secret.this : name => s.arn }
}

output "names" {
  description = "Full Secrets Manager name by secret name."
  value       = { for name, s in aws_secretsmanager_secret.this : name => s.name }
}
