#!/usr/bin/env bash
# Build the deployable artifacts (one artifact, 25 functions):
#   scripts/build.sh lambda   build/lambda/multiagent-lambda.zip: runtime deps + aws extra for
#                             manylinux2014_x86_64 / python3.11, stripped, bytecode precompiled
#                             (scripts/build_lambda.py; cached by a hash of its inputs)
#   scripts/build.sh image [TAG]
#                             the Cloud Run image from ./Dockerfile (runtime deps + gcp extra);
#                             needs a Docker engine; TAG defaults to multiagent:local
# Prints the artifact on the last line: `ZIP PATH BYTES FILES` or `IMAGE TAG`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "build.sh: $*" >&2; }
die() { say "$*"; exit 1; }

python311() {
  local candidate
  for candidate in "${PYTHON:-}" .venv/bin/python python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

build_lambda() {
  local py
  py=$(python311) || die "Python 3.11 not found: the Lambda zip is precompiled for the python3.11 runtime (set PYTHON=...)"
  "$py" -m pip --version >/dev/null 2>&1 || die "$py has no pip: install python3.11-venv / ensurepip"
  "$py" scripts/build_lambda.py "$@"
}

build_image() {
  local tag=${1:-multiagent:local}
  command -v docker >/dev/null 2>&1 || die "docker not found: install Docker (or let scripts/deploy.sh use 'gcloud builds submit')"
  docker info >/dev/null 2>&1 || die "no Docker engine answers (is the daemon running?)"
  docker build --pull -t "$tag" . >&2
  echo "IMAGE $tag"
}

case "${1:-}" in
  lambda) shift; build_lambda "$@" ;;
  image) shift; build_image "$@" ;;
  *) die "usage: scripts/build.sh lambda|image [TAG]" ;;
esac
