# shellcheck shell=bash
# Shared by deploy.sh, destroy.sh and set-secret.sh: argument, tool and credential checks,
# each failing with one line that says what to do. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TF_DIR="$ROOT/infra/terraform"
export NAME_PREFIX=${MULTIAGENT_NAME_PREFIX:-multiagent}
SCRIPT=$(basename "$0")

say() { echo "$SCRIPT: $*" >&2; }
die() { say "$1"; exit "${2:-1}"; }  # die MESSAGE [EXIT-CODE]: the code is not part of the line

check_env_cloud() {  # ENV CLOUD USAGE
  local env=${1:-} cloud=${2:-} usage=$3
  [ -n "$env" ] && [ -n "$cloud" ] || die "usage: $usage" 2
  case "$env" in dev | staging | prod) ;; *) die "unknown environment '$env': use dev, staging or prod" 2 ;; esac
  case "$cloud" in aws | gcp) ;; *) die "unknown cloud '$cloud': use aws or gcp" 2 ;; esac
  [ -d "$TF_DIR/environments/$env" ] || die "missing $TF_DIR/environments/$env" 2
}

need() {  # TOOL HINT
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

check_terraform() {
  need terraform "install Terraform >= 1.9 (https://developer.hashicorp.com/terraform/install)"
  local version
  version=$(terraform version -json 2>/dev/null | sed -n 's/.*"terraform_version": *"\([0-9.]*\)".*/\1/p' | head -1)
  [ -n "$version" ] || die "cannot read 'terraform version': is terraform working?"
  printf '%s\n%s\n' "1.9.0" "$version" | sort -V -C || die "terraform $version is too old: 1.9 or newer is needed"
}

check_cloud_tools() {  # CLOUD
  case "$1" in
    aws)
      need aws "install the AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
      aws sts get-caller-identity --output text --query Account >/dev/null 2>&1 \
        || die "no AWS credentials: run 'aws sso login' / 'aws configure', or set AWS_PROFILE (in CI: OIDC role)"
      ;;
    gcp)
      need gcloud "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
      gcloud auth print-access-token >/dev/null 2>&1 \
        || die "no Google credentials: run 'gcloud auth login' and 'gcloud auth application-default login' (in CI: workload identity federation)"
      GCP_PROJECT=${GOOGLE_CLOUD_PROJECT:-$(gcloud config get-value project 2>/dev/null || true)}
      [ -n "$GCP_PROJECT" ] && [ "$GCP_PROJECT" != "(unset)" ] \
        || die "no Google Cloud project: set GOOGLE_CLOUD_PROJECT or 'gcloud config set project ID'"
      export GCP_PROJECT
      ;;
  esac
}

backend_args() {  # ENV CLOUD -> sets BACKEND_ARGS (the -backend-config arguments)
  local env=$1 cloud=$2 file
  case "$cloud" in aws) file="$TF_DIR/environments/$env/aws.s3.tfbackend" ;; gcp) file="$TF_DIR/environments/$env/gcp.gcs.tfbackend" ;; esac
  [ -f "$file" ] || die "missing backend config $file"
  BACKEND_ARGS=("-backend-config=$file")
  if [ -n "${MULTIAGENT_TF_STATE_BUCKET:-}" ]; then
    BACKEND_ARGS+=("-backend-config=bucket=$MULTIAGENT_TF_STATE_BUCKET")
  elif grep -q 'REPLACE-ME' "$file"; then
    die "set the state bucket: edit $file or export MULTIAGENT_TF_STATE_BUCKET=your-bucket"
  fi
}

tf() {  # CLOUD ENV ARGS... : terraform in the cloud's root, one working directory per environment
  local cloud=$1 env=$2
  shift 2
  TF_DATA_DIR="$TF_DIR/$cloud/.terraform/env-$env" TF_IN_AUTOMATION=1 terraform -chdir="$TF_DIR/$cloud" "$@"
}

tf_init() {  # CLOUD ENV
  backend_args "$2" "$1"
  tf "$1" "$2" init -input=false -reconfigure "${BACKEND_ARGS[@]}" >&2
}
