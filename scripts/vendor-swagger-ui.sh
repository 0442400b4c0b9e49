#!/usr/bin/env bash
# Copy Swagger UI's browser files from the npm package swagger-ui-dist into the package, so the
# API documentation works on a closed network. Usage: scripts/vendor-swagger-ui.sh [version]
set -euo pipefail
version="${1:-5.35.0}"
target="$(cd "$(dirname "$0")/.." && pwd)/src/ticket_manager/api/static/swagger-ui"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@${version}" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
mkdir -p "$target"
for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css \
            favicon-32x32.png LICENSE NOTICE; do
    cp "$work/package/$file" "$target/$file"
done
echo "swagger-ui-dist ${version}" > "$target/VERSION"
echo "Swagger UI ${version} copied to ${target}"
