#!/usr/bin/env bash
# Refresh the vendored Swagger UI that /docs serves (app/static/vendor/swagger-ui/) from the npm registry: `make vendor`.
# As for Chart.js: the files are copied byte for byte from the swagger-ui-dist package and their sha256 recorded in
# SHA256SUMS, which a test checks. FastAPI's own /docs loads them from a CDN, blank without one; this is FastAPI's
# documented self-hosting of the docs' assets (fastapi.tiangolo.com/how-to/custom-docs-ui-assets/).
set -euo pipefail
version="${SWAGGER_UI_VERSION:-5.35.0}"
dest="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor/swagger-ui"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "swagger-ui-dist@${version}" > /dev/null
tar xzf "swagger-ui-dist-${version}.tgz"
integrity="$(npm view "swagger-ui-dist@${version}" dist.integrity)"

mkdir -p "$dest"
cp package/swagger-ui-bundle.js package/swagger-ui.css package/LICENSE "$dest/"
cd "$dest"
sha256sum swagger-ui-bundle.js swagger-ui.css LICENSE > SHA256SUMS
cat > VERSION <<END
swagger-ui-dist ${version}
npm tarball integrity: ${integrity}
files: swagger-ui-bundle.js, swagger-ui.css, LICENSE; see SHA256SUMS
END
echo "vendored swagger-ui-dist ${version} into ${dest}"
