#!/usr/bin/env bash
# Copy the browser files the service serves itself (no CDN: it must work on a closed network)
# from their npm packages into the Python package, with their licences.
#   scripts/vendor-assets.sh [swagger-ui-dist version] [chart.js version]
set -euo pipefail
swagger_version="${1:-5.35.0}"
chart_version="${2:-4.6.1}"
static="$(cd "$(dirname "$0")/.." && pwd)/src/ticket_manager"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() {  # fetch <package> <version> <target folder> <files...>
    local package="$1" version="$2" target="$3"
    shift 3
    rm -rf "$work/package"
    (cd "$work" && npm pack --silent "${package}@${version}" >/dev/null && tar xzf ./*.tgz && rm ./*.tgz)
    mkdir -p "$target"
    for file in "$@"; do
        cp "$work/package/$file" "$target/$(basename "$file")"
    done
    echo "${package} ${version}" > "$target/VERSION"
    echo "${package} ${version} copied to ${target}"
}

fetch swagger-ui-dist "$swagger_version" "$static/api/static/swagger-ui" \
    swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png \
    LICENSE NOTICE
fetch chart.js "$chart_version" "$static/dashboard/static/chartjs" \
    dist/chart.umd.min.js LICENSE.md
