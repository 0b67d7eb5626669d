#!/usr/bin/env bash
# Install the TypeScript SDK (sdk/typescript) so tests/e2e/test_typescript_sdk.py can run `npm test` in
# it; its `prepare` script builds dist/ on install, as for anyone who clones the repository
# (tests/e2e/test_sdk_examples.py proves that path in a fresh copy). Needs Node 20+ and npm; without
# them the tests skip with the same reason.
set -euo pipefail
cd "$(dirname "$0")/../../sdk/typescript"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "test.d/typescript.sh: node/npm not found: the TypeScript SDK tests will be skipped (install Node 20+)" >&2
  exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "test.d/typescript.sh: Node $major found, the TypeScript SDK needs 20+" >&2
  exit 0
fi
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
if [ ! -f dist/index.js ]; then
  echo "test.d/typescript.sh: npm install did not build dist/index.js (the prepare script)" >&2
  exit 1
fi
