#!/usr/bin/env bash
# Re-lock the dependencies after a change to pyproject.toml's dependencies or extras:
#   scripts/lock.sh                 keep every pinned version that still fits, add what is new
#   scripts/lock.sh --upgrade       move every pin to the newest release that fits
# Writes, with hashes, one lock file per artifact (what it installs, nothing else):
#   requirements/dev.txt   every extra + test tools + sdk/python's needs (scripts/test.sh; any platform)
#   requirements/aws.txt   the Lambda zip (scripts/build_lambda.py: manylinux2014 x86_64, CPython 3.11)
#   requirements/gcp.txt   the Cloud Run image (Dockerfile: linux x86_64, CPython 3.11)
#   requirements/gcf.txt   functions-framework deploys (gcp + gcf)
#   requirements/mcp.txt   the MCP server
# The artifact locks are resolved under requirements/dev.txt as constraints, so what ships is
# the version the test suite ran. Needs uv (installed into .venv-lock from PyPI if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "lock.sh: $*" >&2; }
UV=${UV:-}
if [ -z "$UV" ]; then
  if command -v uv >/dev/null 2>&1; then
    UV=uv
  else
    [ -x .venv-lock/bin/uv ] || { say "installing uv into .venv-lock"; python3 -m venv .venv-lock \
      && .venv-lock/bin/python -m pip install -q 'uv>=0.5'; }
    UV=.venv-lock/bin/uv
  fi
fi
upgrade=()
case "${1:-}" in "") ;; --upgrade) upgrade=(--upgrade) ;; *) say "unknown option '$1' (only --upgrade)"; exit 2 ;; esac
mkdir -p requirements
compile() {  # OUT EXTRAS PLATFORM-ARGS...
  local out=$1 extras=$2
  shift 2
  local args=()
  for extra in ${extras//,/ }; do args+=(--extra "$extra"); done
  UV_CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$UV" pip compile --quiet --generate-hashes --python-version 3.11 \
    "${upgrade[@]}" "${args[@]}" "$@" -o "$out" pyproject.toml
}
compile requirements/dev.txt dev --universal sdk/python/pyproject.toml  # + the Python SDK the tests install
linux=(--python-platform x86_64-manylinux_2_17 -c requirements/dev.txt)
compile requirements/aws.txt aws "${linux[@]}"
compile requirements/gcp.txt gcp "${linux[@]}"
compile requirements/gcf.txt gcp,gcf "${linux[@]}"
compile requirements/mcp.txt mcp "${linux[@]}"
say "locked: $(ls requirements/*.txt | tr '\n' ' ')"
