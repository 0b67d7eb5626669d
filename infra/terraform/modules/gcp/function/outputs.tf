output "name" {
  description = "The Cloud Run service name."
  value       = google_cloud_run_v2_service.this.name
}

output "url" {
  description = "The service's URL."
  value       = google_cloud_run_v2_service.this.uri
}

output "service_account_email" {
  description = "The function's own identity."
  value       = google_service_account.this.email
}

output "service_account_member" {
  description = "The identity as an IAM member (serviceAccount:...)."
  value       = google_service_account.this.member
}
