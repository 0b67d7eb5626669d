#!/usr/bin/env bash
# Deploy one environment with one `terraform apply`:
#   scripts/deploy.sh ENV aws|gcp [--plan]     ENV: dev, staging or prod
# Checks tools and credentials first, builds the artifact (Lambda zip / container image),
# initialises the environment's state backend, plans, applies, smoke-tests /health through
# the gateway URL and prints it. Set MULTIAGENT_TF_STATE_BUCKET (or edit
# infra/terraform/environments/ENV/*.tfbackend) for the state bucket; MULTIAGENT_YES=1 (or
# CI=true) applies without asking; --plan stops after the plan (pull requests: nothing is
# pushed or changed). MULTIAGENT_LAMBDA_ZIP=PATH deploys an already built zip (build once,
# deploy every environment). Secrets are set separately: scripts/set-secret.sh; the last
# lines on stderr say how (model key, signing key, admin key, webhook secret) and how to
# create the first tenant against the deployed gateway (docs/deploy.md, "First steps").
set -euo pipefail
# shellcheck source=scripts/_cloud.sh
source "$(dirname "$0")/_cloud.sh"

ENV=${1:-}
CLOUD=${2:-}
PLAN_ONLY=0
case "${3:-}" in "") ;; --plan) PLAN_ONLY=1 ;; *) die "unknown option '$3' (only --plan)" 2 ;; esac
check_env_cloud "$ENV" "$CLOUD" "scripts/deploy.sh ENV aws|gcp [--plan]  (ENV: dev, staging, prod)"
check_terraform
check_cloud_tools "$CLOUD"
need curl "install curl (used for the /health smoke test)"

# the team list Terraform reads must match the catalog
if ! "$ROOT/.venv/bin/multiagent" export terraform --check >/dev/null 2>&1 \
  && ! multiagent export terraform --check >/dev/null 2>&1; then
  die "infra/terraform/teams.auto.tfvars.json is stale or multiagent is not installed: run 'multiagent export terraform' (scripts/serve.sh installs it)"
fi

vars=(-var-file="../environments/$ENV/$CLOUD.tfvars")
tf_init "$CLOUD" "$ENV"
if [ "$CLOUD" = aws ]; then
  if [ -n "${MULTIAGENT_LAMBDA_ZIP:-}" ]; then
    zip_path=$MULTIAGENT_LAMBDA_ZIP
    [ -f "$zip_path" ] || die "MULTIAGENT_LAMBDA_ZIP=$zip_path does not exist"
  else
    say "building the Lambda zip"
    zip_line=$("$ROOT/scripts/build.sh" lambda | tail -1)
    zip_path=$(echo "$zip_line" | awk '{print $2}')
    [ -f "$zip_path" ] || die "the build did not produce a zip ($zip_line)"
  fi
  say "zip: $zip_path ($(du -h "$zip_path" | cut -f1))"
  vars+=(-var="package_path=$zip_path")
else
  vars+=(-var="project=$GCP_PROJECT")
  if [ "$PLAN_ONLY" = 0 ] && ! tf gcp "$ENV" state list 2>/dev/null | grep -q '^google_artifact_registry_repository.images$'; then
    say "first deploy of $ENV: creating the image repository (once)"
    tf gcp "$ENV" apply -input=false -auto-approve "${vars[@]}" -var="image=gcr.io/placeholder/image:bootstrap" \
      -target=google_artifact_registry_repository.images >&2
  fi
  repo=$(tf gcp "$ENV" output -raw image_repository 2>/dev/null || true)
  [ -n "$repo" ] || repo="$(grep -E '^region' "$TF_DIR/environments/$ENV/gcp.tfvars" | sed 's/.*"\(.*\)".*/\1/')-docker.pkg.dev/$GCP_PROJECT/$NAME_PREFIX-$ENV"
  tag="$repo/multiagent:$(cd "$ROOT" && find pyproject.toml Dockerfile requirements/gcp.txt shared functions -type f -name '*.py' -o -type f ! -path '*/*' -o -type f -path requirements/gcp.txt \
    | sort | xargs cat | sha256sum | cut -c1-16)"
  if [ "$PLAN_ONLY" = 1 ]; then
    say "plan only: $tag is neither built nor pushed"
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    say "building and pushing $tag with Docker"
    "$ROOT/scripts/build.sh" image "$tag" >/dev/null
    gcloud auth configure-docker "${repo%%/*}" --quiet >/dev/null 2>&1 || true
    docker push "$tag" >&2
  else
    say "no Docker engine: building $tag with Cloud Build"
    (cd "$ROOT" && gcloud builds submit --quiet --tag "$tag" .) >&2
  fi
  image=$tag
  if [ "$PLAN_ONLY" = 0 ]; then
    digest=$(gcloud artifacts docker images describe "$tag" --format='value(image_summary.digest)' 2>/dev/null || true)
    [ -n "$digest" ] && image="${tag%:*}@$digest"
  fi
  vars+=(-var="image=$image")
fi

plan_file="$TF_DIR/$CLOUD/.terraform/env-$ENV/deploy.tfplan"
tf "$CLOUD" "$ENV" plan -input=false -out="$plan_file" "${vars[@]}" >&2
if [ "$PLAN_ONLY" = 1 ]; then
  say "planned $CLOUD $ENV (not applied)"
  exit 0
fi
if [ "${MULTIAGENT_YES:-}" != 1 ] && [ "${CI:-}" != true ]; then
  if [ -t 0 ]; then
    read -r -p "apply this plan to $CLOUD $ENV? [y/N] " answer
    [ "$answer" = y ] || [ "$answer" = yes ] || die "not applied"
  else
    die "refusing to apply without a terminal: set MULTIAGENT_YES=1"
  fi
fi
tf "$CLOUD" "$ENV" apply -input=false "$plan_file" >&2

url=$(tf "$CLOUD" "$ENV" output -raw gateway_url)
[ -n "$url" ] || die "terraform gave no gateway_url"
url=${url%/}
say "smoke test: GET $url/health"
status=000
for _ in $(seq 1 "${MULTIAGENT_SMOKE_TRIES:-30}"); do
  status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url/health" || true)
  [ "$status" = 200 ] && break
  sleep "${MULTIAGENT_SMOKE_WAIT_S:-4}"
done
[ "$status" = 200 ] || die "gateway $url/health answered $status (see the function's logs); the deployment is applied"
say "healthy"
first_steps() {  # what an operator does once per environment, on stderr (stdout is the URL)
  local s="scripts/set-secret.sh $ENV $CLOUD"
  say "first steps for $CLOUD $ENV (each secret once; a new value is live within 5 minutes):"
  say "  printf %s \"\$ANTHROPIC_API_KEY\" | $s anthropic-api-key"
  say "  $s internal-signing-key --generate"
  say "  ADMIN_KEY=\$($s admin-key --generate)    # shown once: keep it in a password manager"
  say "  $s webhook-secret --generate           # prints the secret budget-alert receivers verify with"
  say "  then create the first tenant (its api_key is in the answer, shown once):"
  say "  curl -sS -X POST $url/v1/admin/tenants -H \"authorization: Bearer \$ADMIN_KEY\" \\"
  say "    -H 'content-type: application/json' -d '{\"name\": \"acme\", \"daily_usd\": 10}'"
}
first_steps
echo "$url"
