output "gateway_url" {
  description = "The public API: the gateway's Function URL."
  value       = module.gateway.url
}

output "functions" {
  description = "Function name by team (and the gateway)."
  value       = merge({ for team, m in module.team : team => m.function_name }, { gateway = module.gateway.function_name })
}

output "roles" {
  description = "IAM role ARN by function: one identity per function."
  value       = merge({ for team, m in module.team : team => m.role_arn }, { gateway = module.gateway.role_arn })
}

output "table_name" {
  description = "The DynamoDB state table."
  value       = module.state.table_name
}

output "store_url" {
  description = "MULTIAGENT_STORE of the functions (also for `multiagent tenants ...` run against this environment)."
  value       = local.common_environment.MULTIAGENT_STORE
}

output "secret_names" {
  description = "Secrets Manager names; set their values with scripts/set-secret.sh ENV aws NAME."
  value       = module.secrets.names
}
