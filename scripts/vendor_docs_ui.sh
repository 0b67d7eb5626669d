#!/usr/bin/env bash
# Vendor Swagger UI for the gateway's interactive /docs page (shared/observability/docs.py).
#
# Takes the pinned `swagger-ui-dist` package from the npm registry with `npm pack` (the
# registry's integrity hash is checked by npm) and copies only what the page loads, plus
# the licence files, into shared/observability/docs_assets/. The copies are committed: the
# page works with no internet and no npm at run time. Run it again only to change VERSION,
# then commit the folder (tests/unit/test_docs_page.py checks it against SOURCE.txt).
#
# Usage: scripts/vendor_docs_ui.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:-5.35.0}
PACKAGE=swagger-ui-dist
DEST=shared/observability/docs_assets
FILES=(swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt)

command -v npm >/dev/null || { echo "vendor_docs_ui.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tar -xzf "$tmp/$PACKAGE-$VERSION.tgz" -C "$tmp"
mkdir -p "$DEST"
for name in "${FILES[@]}"; do
  cp "$tmp/package/$name" "$DEST/$name"
done
# The bundle names a source map that is not vendored: drop the comment so browsers do not ask for it.
sed -i -e '/^\/\/# sourceMappingURL=/d' -e '/^\/\*# sourceMappingURL=.*\*\/$/d' "$DEST/swagger-ui-bundle.js" "$DEST/swagger-ui.css"
{
  echo "$PACKAGE@$VERSION (npm), copied by scripts/vendor_docs_ui.sh; Apache-2.0 (LICENSE, NOTICE)."
  echo "sha256 of each file as vendored:"
  (cd "$DEST" && sha256sum "${FILES[@]}")
} >"$DEST/SOURCE.txt"
du -ch "${FILES[@]/#/$DEST/}" | tail -1
