#!/usr/bin/env bash
# Vendor files of an npm package into app/static/vendor/ from the npm registry, byte for byte: `make vendor`.
#   scripts/vendor-npm.sh PACKAGE VERSION DEST FILE[:NAME]...
# Each FILE (a path inside the package) is copied into app/static/vendor/DEST as NAME (default: its base name).
# SHA256SUMS records the files' digests, which a test checks, so the repository holds exactly what npm serves for
# that version; VERSION records the package, the version and npm's tarball integrity. Used for the playground's
# Chart.js and for /docs' Swagger UI, which FastAPI would load from a CDN (FastAPI's documented self-hosting of the
# docs' assets: fastapi.tiangolo.com/how-to/custom-docs-ui-assets/). Change a version in the Makefile, on purpose.
set -euo pipefail
package="$1" version="$2" dest="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor/$3"
shift 3
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "${package}@${version}" > /dev/null && tar xzf ./*.tgz)
integrity="$(npm view "${package}@${version}" dist.integrity)"

mkdir -p "$dest"
names=() described=()
for item in "$@"; do
  src="${item%%:*}"
  name="$(basename "$src")"
  description="$src"
  if [[ "$item" == *:* ]]; then
    name="${item#*:}"
    description="$src (as $name)"
  fi
  cp "$tmp/package/$src" "$dest/$name"
  names+=("$name")
  described+=("$description")
done
(cd "$dest" && sha256sum "${names[@]}" > SHA256SUMS)
files="$(IFS=,; echo "${described[*]}" | sed 's/,/, /g')"
cat > "$dest/VERSION" <<END
${package} ${version}
npm tarball integrity: ${integrity}
files: ${files}; see SHA256SUMS
END
echo "vendored ${package} ${version} into ${dest}"
