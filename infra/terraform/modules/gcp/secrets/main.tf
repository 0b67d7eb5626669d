# The secrets' containers only. Values never pass through Terraform (so never into its
# state): scripts/set-secret.sh adds versions with gcloud, and each function reads the
# latest version at run time through shared/secrets/gcp.py, cached with a TTL.

resource "google_secret_manager_secret" "this" {
  for_each  = var.names
  project   = var.project
  secret_id = "${var.prefix}${each.key}"
  labels    = var.labels

  replication {
    auto {}
  }
}
