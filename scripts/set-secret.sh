#!/usr/bin/env bash
# Set a secret's value without it ever passing through Terraform (or its state), a command
# line or shell history: the value is read from standard input.
#   printf %s "$KEY" | scripts/set-secret.sh ENV aws|gcp anthropic-api-key
#   scripts/set-secret.sh ENV aws|gcp internal-signing-key --generate
#       a new signing key 'kYYYYMMDDHHMM:<64 hex>'. To rotate without refusing envelopes in
#       flight, set 'new_kid:new_secret,old_kid:old_secret' for a while (the first one signs).
#   scripts/set-secret.sh ENV aws|gcp admin-key --generate
#       a new admin key (64 hex), printed once on stdout: it opens /v1/admin/* (tenants, keys,
#       budgets) on the gateway, so keep it in a password manager. A key of your own: pipe it
#       in (at least 32 characters).
#   scripts/set-secret.sh ENV aws|gcp webhook-secret --generate
#       a new webhook signing secret 'whsec_<base64 of 32 bytes>' (docs/webhooks.md), printed
#       once on stdout: give it to whoever verifies the alerts. A piped value must have the
#       same form (24 to 64 bytes); 'new old' signs with both while receivers switch.
# Functions pick a new value up within their secret cache's TTL (5 minutes).
set -euo pipefail
# shellcheck source=scripts/_cloud.sh
source "$(dirname "$0")/_cloud.sh"

ENV=${1:-}
CLOUD=${2:-}
NAME=${3:-}
check_env_cloud "$ENV" "$CLOUD" "scripts/set-secret.sh ENV aws|gcp NAME [--generate]  (value on stdin)"
SECRETS="anthropic-api-key, internal-signing-key, admin-key or webhook-secret"
case "$NAME" in anthropic-api-key | internal-signing-key | admin-key | webhook-secret) ;;
  *) die "unknown secret '$NAME': $SECRETS" 2 ;; esac
case "${4:-}" in "" | --generate) ;; *) die "unknown option '$4' (only --generate)" 2 ;; esac
[ "${4:-}" != --generate ] || [ "$NAME" != anthropic-api-key ] || die "--generate is not for anthropic-api-key: pipe in the key from console.anthropic.com" 2
check_cloud_tools "$CLOUD"

random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
random_base64() {  # 32 random bytes in standard base64 (no base64 binary needed)
  od -An -N32 -tu1 /dev/urandom | awk '
    BEGIN { a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" }
    { for (i = 1; i <= NF; i++) b[n++] = $i }
    END {
      for (i = 0; i < n; i += 3) {
        x = b[i] * 65536 + (i + 1 < n ? b[i + 1] : 0) * 256 + (i + 2 < n ? b[i + 2] : 0)
        s = s substr(a, int(x / 262144) % 64 + 1, 1) substr(a, int(x / 4096) % 64 + 1, 1)
        s = s (i + 1 < n ? substr(a, int(x / 64) % 64 + 1, 1) : "=") (i + 2 < n ? substr(a, x % 64 + 1, 1) : "=")
      }
      printf "%s", s
    }'
}

show=0
if [ "${4:-}" = --generate ]; then
  case "$NAME" in
    internal-signing-key) value="k$(date -u +%Y%m%d%H%M):$(random_hex)" ;;
    admin-key) value=$(random_hex); show=1 ;;
    webhook-secret) value="whsec_$(random_base64)"; show=1 ;;
  esac
else
  [ -t 0 ] && say "paste the value, then Ctrl-D"
  value=$(cat)
fi
[ -n "$value" ] || die "empty value: nothing set"
case "$NAME" in
  admin-key) [ "${#value}" -ge 32 ] || die "the admin key must be at least 32 characters (or use --generate)" ;;
  webhook-secret)  # 'new old' (space or comma separated) while receivers rotate: both sign
    for part in ${value//,/ }; do
      [[ "$part" =~ ^whsec_[A-Za-z0-9+/]{32,88}={0,2}$ ]] \
        || die "a webhook secret is 'whsec_' + base64 of 24 to 64 bytes (or use --generate)"
    done ;;
esac

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
if [ "$show" = 1 ]; then
  say "set $NAME for $CLOUD $ENV; its value is on stdout, shown this once"
  printf '%s\n' "$value"
else
  say "set $NAME for $CLOUD $ENV (value not shown)"
fi
