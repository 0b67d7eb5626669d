output "gateway_url" {
  description = "The public API: the gateway service's URL."
  value       = module.gateway.url
}

output "services" {
  description = "Cloud Run service name by team (and the gateway)."
  value       = merge({ for team, m in module.team : team => m.name }, { gateway = module.gateway.name })
}

output "service_accounts" {
  description = "Service account by function: one identity per function."
  value       = merge({ for team, m in module.team : team => m.service_account_email }, { gateway = module.gateway.service_account_email })
}

output "store_url" {
  description = "MULTIAGENT_STORE of the functions."
  value       = module.state.store_url
}

output "secret_ids" {
  description = "Secret Manager ids; set their values with scripts/set-secret.sh ENV gcp NAME."
  value       = module.secrets.ids
}

output "image_repository" {
  description = "Where scripts/deploy.sh pushes the image."
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}
