#!/usr/bin/env bash
# Install the throughput benchmark's outside tools into their own venv, .venv-bench (never .venv):
#   the LiteLLM proxy (litellm[proxy], from PyPI) -- the comparison point of scripts/bench_throughput.py;
#   py-spy -- the sampling profiler behind `bench_throughput.py --profile`.
# Idempotent: does nothing when both are already there. Usage: scripts/bench_setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bench
LITELLM_SPEC=${LITELLM_SPEC:-'litellm[proxy]==1.108.5'}
PYSPY_SPEC=${PYSPY_SPEC:-'py-spy==0.4.3'}
say() { echo "bench_setup.sh: $*" >&2; }
if [ -x "$VENV/bin/litellm" ] && [ -x "$VENV/bin/py-spy" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
printf '*\n' > "$VENV/.gitignore"   # keep the venv out of git without touching the repo's .gitignore
say "installing $LITELLM_SPEC and $PYSPY_SPEC into $VENV (a few minutes)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$LITELLM_SPEC" "$PYSPY_SPEC"
"$VENV/bin/litellm" --version >/dev/null 2>&1 || { say "litellm did not install"; exit 1; }
say "ready: $("$VENV/bin/python" -m pip show litellm 2>/dev/null | sed -n 's/^Version: /litellm /p'), $("$VENV/bin/py-spy" --version)"
