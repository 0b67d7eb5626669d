# AWS, dev. Passed by scripts/deploy.sh dev aws as -var-file; the team list comes from
# ../../aws/teams.auto.tfvars.json (generated) and the zip path from the build.
environment = "dev"
region      = "us-east-1"

functions = {
  memory_mb = 1024
  timeout_s = 150
}

gateway = {
  memory_mb = 1024
}

log_retention_days          = 14
secret_recovery_window_days = 0

store = {
  deletion_protection = false
}
