#!/usr/bin/env bash
# Headless Chromium for the dashboard test (tests/e2e/test_dashboard.py): Debian's
# `chromium` package (no browser download) driven by Playwright's `playwright-core` from
# npm, installed into tests/e2e/browser/node_modules. The test skips with a one-line reason
# when either is missing, so a failed install here never fails CI alone.
set -uo pipefail
cd "$(dirname "$0")/../.."
say() { echo "test.d/chromium.sh: $*" >&2; }

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium (once)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } \
      >/tmp/chromium-install.log 2>&1 || say "apt-get install chromium failed (see /tmp/chromium-install.log): the dashboard test will skip"
  else
    say "/usr/bin/chromium missing and apt-get unavailable (not root?): the dashboard test will skip"
  fi
fi

dir=tests/e2e/browser
if command -v npm >/dev/null 2>&1; then
  stamp="$dir/node_modules/.installed-$(sha1sum "$dir/package.json" | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    say "installing playwright-core into $dir (once)"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core never downloads, but say so anyway
    if (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent >/tmp/playwright-install.log 2>&1); then
      rm -f "$dir"/node_modules/.installed-* && touch "$stamp"
    else
      say "npm install failed (see /tmp/playwright-install.log): the dashboard test will skip"
    fi
  fi
else
  say "npm not found: the dashboard test will skip"
fi
exit 0
