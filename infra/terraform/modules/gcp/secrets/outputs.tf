output "ids" {
  description = "Secret Manager secret id by secret name."
  value       = { for name, s in google_secret_manager_secret.this : name => s.secret_id }
}
