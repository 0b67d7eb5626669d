#!/usr/bin/env bash
# Install what the tests need, then run the whole suite. Emulators and loopback servers
# (Firestore emulator, serialised moto server, fake Messages API) are started by the
# test fixtures themselves, on free loopback ports, and stopped when the run ends.
# Extra arguments go to pytest (e.g. scripts/test.sh -k budget).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
say() { echo "test.sh: $*" >&2; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-dev-$(cat pyproject.toml requirements/dev.txt sdk/python/pyproject.toml 2>/dev/null | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  # the locked versions (requirements/dev.txt: every extra and the test tools, exact and
  # hash-checked; the artifacts' locks are made under it), then the project itself
  say "installing requirements/dev.txt and the project"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --require-hashes -r requirements/dev.txt
  .venv/bin/python -m pip install -q --no-deps -e '.[dev]'
  if [ -f sdk/python/pyproject.toml ]; then .venv/bin/python -m pip install -q --no-deps -e sdk/python; fi
  .venv/bin/python -m pip check >&2 || { say "requirements/dev.txt does not fit pyproject.toml (or sdk/python's): run scripts/lock.sh"; exit 1; }
  rm -f .venv/.installed-dev-* && touch "$stamp"
fi

# --- optional tools: each missing one is named here; the tests that need it skip with the same reason
if ! command -v java >/dev/null 2>&1; then
  say "java not found: the Firestore emulator needs it (apt-get install openjdk-17-jre-headless)"
fi
if ! command -v gcloud >/dev/null 2>&1 && [ ! -d /usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator ]; then
  say "Firestore emulator not found: install Google's Cloud SDK with 'gcloud components install cloud-firestore-emulator'"
fi
for hook in scripts/test.d/*.sh; do
  [ -f "$hook" ] && { say "running $hook"; bash "$hook"; }
done

set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  say "pytest collected no tests: that is a failure here"
  exit 1
fi
exit "$rc"
