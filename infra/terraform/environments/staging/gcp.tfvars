# Google Cloud, staging. Passed by scripts/deploy.sh staging gcp as -var-file; project and image
# come from the command line (GOOGLE_CLOUD_PROJECT, the pushed image digest).
environment = "staging"
region      = "us-central1"

functions = {
  min_instances = 0
  max_instances = 10
  concurrency   = 40
  timeout_s     = 150
  memory        = "1Gi"
  cpu           = "1"
}

gateway = {
  min_instances = 0
  max_instances = 10
}

store = {
  location                     = "nam5"
  delete_protection            = true
  daily_backup_retention_days  = 7
  weekly_backup_retention_days = 28
}
