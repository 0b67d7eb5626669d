terraform {
  required_version = ">= 1.9"

  # State per environment: `terraform init -backend-config=../environments/ENV/aws.s3.tfbackend`
  # (scripts/deploy.sh does it); S3-native locking, no lock table.
  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }
}
