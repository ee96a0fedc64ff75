#!/usr/bin/env bash
# The first run of `make container-test` on a machine, as CI meets it: no compose client installed yet
# (issue 12: the script used to choose `docker compose` before the engine step had installed docker-compose,
# and failed with `unknown shorthand flag: 'p' in -p`; a second run passed, so it went unseen).
#
# Root, like `make container-test`. It removes Debian's docker-compose (apt-get remove -y docker-compose),
# checks that no compose client answers, runs `make container-test`, and removes docker-compose again on the
# way out, so the machine is left as fresh as it was found.
set -euo pipefail
cd "$(dirname "$0")/.."

remove_compose() {
  if dpkg -s docker-compose >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq docker-compose >/dev/null
    echo "check-container-test-fresh: removed docker-compose"
  fi
}
trap remove_compose EXIT

remove_compose
if docker-compose version >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; then
  echo "check-container-test-fresh: a compose client still answers (not Debian's docker-compose); remove it first" >&2
  exit 1
fi
echo "check-container-test-fresh: no compose client installed; running make container-test"
make container-test
