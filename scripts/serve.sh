#!/usr/bin/env bash
# Run the whole system locally: gateway + 24 teams in one process, on SQLite and, without
# ANTHROPIC_API_KEY, the offline model. Arguments go to `multiagent serve`
# (e.g. scripts/serve.sh --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "serve.sh: Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "serve.sh: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "serve.sh: installing multiagent-framework into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e . >&2
  rm -f .venv/.installed-* && touch "$stamp"
fi
exec .venv/bin/multiagent serve "$@"
