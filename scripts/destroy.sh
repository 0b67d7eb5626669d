#!/usr/bin/env bash
# Destroy one environment: scripts/destroy.sh ENV aws|gcp
# Checks tools and credentials first and asks for the environment's name as confirmation
# (MULTIAGENT_CONFIRM_DESTROY=ENV answers it without a terminal). staging and prod keep
# deletion protection on their state store: turn it off in their tfvars first if you mean it.
set -euo pipefail
# shellcheck source=scripts/_cloud.sh
source "$(dirname "$0")/_cloud.sh"

ENV=${1:-}
CLOUD=${2:-}
check_env_cloud "$ENV" "$CLOUD" "scripts/destroy.sh ENV aws|gcp  (ENV: dev, staging, prod)"
check_terraform
check_cloud_tools "$CLOUD"

confirm=${MULTIAGENT_CONFIRM_DESTROY:-}
if [ -z "$confirm" ]; then
  [ -t 0 ] || die "refusing to destroy without confirmation: set MULTIAGENT_CONFIRM_DESTROY=$ENV"
  read -r -p "type '$ENV' to destroy the $CLOUD $ENV deployment and its data: " confirm
fi
[ "$confirm" = "$ENV" ] || die "not destroyed (confirmation '$confirm' is not '$ENV')"

vars=(-var-file="../environments/$ENV/$CLOUD.tfvars")
if [ "$CLOUD" = aws ]; then
  zip="$ROOT/build/lambda/multiagent-lambda.zip"
  [ -f "$zip" ] || zip=$(mktemp --suffix=.zip)  # destroy needs a value, not the real zip
  vars+=(-var="package_path=$zip")
else
  vars+=(-var="project=$GCP_PROJECT" -var="image=gcr.io/placeholder/image:destroy")
fi
tf_init "$CLOUD" "$ENV"
tf "$CLOUD" "$ENV" destroy -input=false -auto-approve "${vars[@]}" >&2
say "destroyed $CLOUD $ENV"
