#!/usr/bin/env bash
# Regenerate what the SDKs are built from, after a change to the catalog (functions/teams/*),
# the error types or the routes: the OpenAPI document and the Python and TypeScript types.
# tests/unit/test_openapi_and_generated_sdks.py fails until they are regenerated and committed.
set -euo pipefail
cd "$(dirname "$0")/.."
MULTIAGENT=${MULTIAGENT:-.venv/bin/multiagent}
"$MULTIAGENT" export openapi --out sdk/openapi.json
"$MULTIAGENT" export sdk-types --out sdk/python/src/multiagent_sdk/_generated.py
"$MULTIAGENT" export ts-types --out sdk/typescript/src/generated.ts
