output "database" {
  description = "The Firestore database id."
  value       = google_firestore_database.this.name
}

output "store_url" {
  description = "MULTIAGENT_STORE for the functions."
  value       = "firestore://${var.project}/${google_firestore_database.this.name}"
}

output "iam_condition" {
  description = "An IAM condition limiting datastore roles to this database."
  value = {
    title      = "only-${google_firestore_database.this.name}"
    expression = "resource.name == \"projects/${var.project}/databases/${google_firestore_database.this.name}\""
  }
}
