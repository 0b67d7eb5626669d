# AWS, prod. Passed by scripts/deploy.sh prod aws as -var-file; the team list comes from
# ../../aws/teams.auto.tfvars.json (generated) and the zip path from the build.
environment = "prod"
region      = "us-east-1"

functions = {
  memory_mb = 1024
  timeout_s = 150
  # reserved_concurrency = 20  # per team function; 25 functions share the account's quota (1000 by default)
}

gateway = {
  memory_mb = 1024
}

log_retention_days          = 365
secret_recovery_window_days = 30

store = {
  deletion_protection = true
}
