#!/usr/bin/env bash
# curl and jq: the README's quick start uses them, and tests/e2e/test_quickstart.py runs the
# quick start as written. Installed from Debian when missing (root only); otherwise named here
# and the quick-start test fails on the missing command, as a newcomer's terminal would.
set -uo pipefail
say() { echo "test.d/quickstart.sh: $*" >&2; }

missing=()
for tool in curl jq; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  say "installing ${missing[*]} from Debian (once)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >/tmp/quickstart-tools-install.log 2>&1 || say "apt-get install ${missing[*]} failed (see /tmp/quickstart-tools-install.log)"
else
  say "${missing[*]} missing and apt-get unavailable (not root?): the README quick-start test will fail"
fi
exit 0
