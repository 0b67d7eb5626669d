terraform {
  required_version = ">= 1.9"

  # State per environment: `terraform init -backend-config=../environments/ENV/gcp.gcs.tfbackend`
  # (scripts/deploy.sh does it).
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}
