#!/usr/bin/env bash
# Set a secret's value without it ever passing through Terraform (or its state), a command
# line or shell history: the value is read from standard input.
#   printf %s "$KEY" | scripts/set-secret.sh ENV aws|gcp anthropic-api-key
#   scripts/set-secret.sh ENV aws|gcp internal-signing-key --generate
#       a new signing key 'kYYYYMMDDHHMM:<64 hex>'. To rotate without refusing envelopes in
#       flight, set 'new_kid:new_secret,old_kid:old_secret' for a while (the first one signs).
# Functions pick a new value up within their secret cache's TTL (5 minutes).
set -euo pipefail
# shellcheck source=scripts/_cloud.sh
source "$(dirname "$0")/_cloud.sh"

ENV=${1:-}
CLOUD=${2:-}
NAME=${3:-}
check_env_cloud "$ENV" "$CLOUD" "scripts/set-secret.sh ENV aws|gcp NAME [--generate]  (value on stdin)"
case "$NAME" in anthropic-api-key | internal-signing-key) ;; *) die "unknown secret '$NAME': anthropic-api-key or internal-signing-key" 2 ;; esac
check_cloud_tools "$CLOUD"

if [ "${4:-}" = --generate ]; then
  [ "$NAME" = internal-signing-key ] || die "--generate is only for internal-signing-key" 2
  value="k$(date -u +%Y%m%d%H%M):$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
else
  [ -t 0 ] && say "paste the value, then Ctrl-D"
  value=$(cat)
fi
[ -n "$value" ] || die "empty value: nothing set"

case "$CLOUD" in
  aws)
    printf %s "$value" | aws secretsmanager put-secret-value --secret-id "$NAME_PREFIX-$ENV/$NAME" \
      --secret-string file:///dev/stdin >/dev/null
    ;;
  gcp)
    printf %s "$value" | gcloud secrets versions add "$NAME_PREFIX-$ENV-$NAME" --project "$GCP_PROJECT" \
      --data-file=- >/dev/null
    ;;
esac
say "set $NAME for $CLOUD $ENV (value not shown)"
