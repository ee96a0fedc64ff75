#!/usr/bin/env bash
# Refresh the vendored Chart.js (app/static/vendor/) from the npm registry: `make vendor`.
# The files are copied byte for byte from the package's dist/ and their sha256 recorded in SHA256SUMS, which a test
# checks, so the repository holds exactly what npm serves for that version. Change the version here, on purpose.
set -euo pipefail
version="${CHARTJS_VERSION:-4.6.1}"
dest="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "chart.js@${version}" > /dev/null
tar xzf "chart.js-${version}.tgz"
integrity="$(npm view "chart.js@${version}" dist.integrity)"

cp package/dist/chart.umd.min.js package/dist/chart.umd.min.js.map "$dest/"
cp package/LICENSE.md "$dest/chart.js.LICENSE.md"
cd "$dest"
sha256sum chart.umd.min.js chart.umd.min.js.map chart.js.LICENSE.md > SHA256SUMS
cat > VERSION <<END
chart.js ${version}
npm tarball integrity: ${integrity}
files: dist/chart.umd.min.js, dist/chart.umd.min.js.map, LICENSE.md (as chart.js.LICENSE.md); see SHA256SUMS
END
echo "vendored chart.js ${version} into ${dest}"
