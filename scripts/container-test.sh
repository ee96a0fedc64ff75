#!/usr/bin/env bash
# make container-test: prove the image and the compose file work, on this machine, over loopback only.
#
#  1. a Docker engine (../shared/tools/container-engine start, if none answers) and its base image
#  2. build the image; report its size
#  3. run it (host network, a fresh named volume on /data): /readyz, Docker's HEALTHCHECK turns healthy,
#     it runs as a non-root user that owns the SQLite run store, the seed's four summaries have Keras's
#     figures, a training succeeds, /metrics and request ids answer
#  4. compose's `scale` profile with --scale worker=3 and a second API replica (docker/compose.test.yml:
#     host network, Redis from Debian's package): trainings run on three Celery workers, each on its own,
#     and either replica reads, follows and cancels any run
#
# Everything it started is stopped on the way out, also on failure (the engine too, if it started it), and
# everything it made is removed: its logs (a temporary folder; copied to artifacts/container-test/ on failure),
# its containers and volumes, the images it built (the two tagged ones and their build stages) and the
# engine's build cache. LW_KEEP_IMAGES=1 keeps the images and the build cache, for a faster next build.
#
# Needs a Docker engine that answers `docker info`, or CONTAINER_ENGINE (default ../shared/tools/container-engine):
# a script whose `start` starts one (and installs the docker and compose clients) and whose `stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${CONTAINER_ENGINE:-../shared/tools/container-engine}
IMAGE=${LW_IMAGE:-layerwise:test}
REDIS_IMAGE=layerwise-test-redis:latest
WORKERS=3
TAG=lwtest$$
START=$(date +%s)
export LW_IMAGE=$IMAGE

# Before anything else: with neither an engine nor a script to start one, say so in one line, not in Docker's words.
if ! docker info >/dev/null 2>&1 && [[ ! -x $ENGINE ]]; then
  echo "container-test: needs a Docker engine: none answers \`docker info\` and $ENGINE is missing or not executable;" \
    "set CONTAINER_ENGINE to a script with start/stop (like ../shared/tools/container-engine), or start a Docker engine" >&2
  exit 2
fi

LOGS=$(mktemp -d /tmp/lwtest.XXXXXX)

say() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - START))"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() { # URL SECONDS
  local deadline=$(($(date +%s) + $2))
  until curl -fsS "$1/readyz" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || { echo "not ready: $1 after $2 s"; return 1; }
    sleep 1
  done
}

# The compose client is chosen after the engine step, which installs it on a machine that never had one.
COMPOSE=()
compose() { "${COMPOSE[@]}" -p "$TAG" -f docker-compose.yml -f docker/compose.test.yml --profile scale "$@"; }

started_engine=0
engine_up=0
cleanup() {
  status=$?
  set +e
  if ((status)); then
    echo "container-test FAILED; the containers' last log lines:"
    ((engine_up)) && docker logs --tail 40 "$TAG-api" 2>&1
    ((${#COMPOSE[@]})) && compose logs --no-color --tail 40 2>&1
    mkdir -p artifacts/container-test && cp -a "$LOGS"/. artifacts/container-test/ 2>/dev/null \
      && echo "container-test: its logs are in artifacts/container-test/"
  fi
  if ((engine_up)); then
    docker rm -f -v "$TAG-api" >/dev/null 2>&1
    ((${#COMPOSE[@]})) && compose down -v --remove-orphans >/dev/null 2>&1
    # every volume this run made: the named one, and compose's and the image's anonymous /data volumes
    comm -13 "$LOGS/volumes.before" <(docker volume ls -q | sort) | xargs -r docker volume rm >/dev/null 2>&1
    if [[ ${LW_KEEP_IMAGES:-0} == 1 ]]; then
      echo "container-test: LW_KEEP_IMAGES=1: kept $IMAGE, $REDIS_IMAGE and the build cache"
    else
      docker rmi "$IMAGE" "$REDIS_IMAGE" >/dev/null 2>&1
      # the build stages' images (the classic builder keeps them untagged) and BuildKit's cache
      for _ in 1 2 3; do
        comm -13 "$LOGS/images.before" <(docker images -aq --no-trunc | sort -u) | xargs -r docker rmi >/dev/null 2>&1
      done
      docker builder prune -af >/dev/null 2>&1
    fi
    root=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null)
    [[ -n $root && -r $root ]] && echo "container-test: the engine's storage after clean-up: $(du -sm "$root" | cut -f1) MB in $root"
  fi
  ((started_engine)) && "$ENGINE" stop
  rm -rf "$LOGS"
  echo "container-test: $( ((status)) && echo failed || echo passed ) in $(($(date +%s) - START)) s"
  exit "$status"
}
trap cleanup EXIT

say "engine"
if ! docker info >/dev/null 2>&1; then
  started_engine=1  # before start: a start that fails half way leaves a dockerd for `stop` to stop
  "$ENGINE" start
elif [[ -x $ENGINE ]]; then
  "$ENGINE" start  # the base image and the compose client, if they are missing
fi
docker images -aq --no-trunc | sort -u >"$LOGS/images.before"
docker volume ls -q | sort >"$LOGS/volumes.before"
engine_up=1  # from here on, the clean-up removes what is not in those two lists
if docker-compose version >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  echo "container-test: no compose client: neither \`docker-compose\` nor \`docker compose\` answers; install one" \
    "(Debian: apt-get install docker-compose)" >&2
  exit 1
fi
echo "compose client: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?'))"

say "build $IMAGE"
docker build --network host --force-rm -t "$IMAGE" . >"$LOGS/build.log" 2>&1 || { tail -40 "$LOGS/build.log"; exit 1; }
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
base=$(docker image inspect -f '{{.Size}}' python:3.11-slim-bookworm)
echo "image $IMAGE: $((size / 1000000)) MB (the base image: $((base / 1000000)) MB)"
docker build --network host --force-rm -t "$REDIS_IMAGE" -f docker/redis.Dockerfile docker >"$LOGS/redis.log" 2>&1 \
  || { tail -40 "$LOGS/redis.log"; exit 1; }

say "the image on its own"
port=$(free_port)
docker run -d --name "$TAG-api" --network host -v "$TAG-runs:/data" \
  -e LAYERWISE_HOST=127.0.0.1 -e LAYERWISE_PORT="$port" "$IMAGE" >/dev/null
wait_ready "http://127.0.0.1:$port" 240
echo "ready after $(($(date +%s) - START)) s"
uid=$(docker exec "$TAG-api" id -u)
[[ $uid != 0 ]] || { echo "the container runs as root"; exit 1; }
echo "runs as uid $uid ($(docker exec "$TAG-api" id -un)), not root"
python3 tests/container_smoke.py embedded "http://127.0.0.1:$port"
owner=$(docker exec "$TAG-api" stat -c %U /data/runs.sqlite3)
[[ $owner == "$(docker exec "$TAG-api" id -un)" ]] || { echo "the run store belongs to $owner"; exit 1; }
echo "the run store on the named volume belongs to $owner"
for _ in $(seq 1 60); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$TAG-api")
  [[ $health == healthy ]] && break
  sleep 1
done
[[ $health == healthy ]] || { echo "HEALTHCHECK says $health"; exit 1; }
echo "Docker's HEALTHCHECK: $health"
docker rm -f "$TAG-api" >/dev/null

say "compose --profile scale up --scale worker=$WORKERS"
LW_API_PORT=$(free_port)
LW_API_2_PORT=$(free_port)
LW_REDIS_PORT=$(free_port)
export LW_API_PORT LW_API_2_PORT LW_REDIS_PORT
compose up -d --scale worker=$WORKERS
wait_ready "http://127.0.0.1:$LW_API_PORT" 240
wait_ready "http://127.0.0.1:$LW_API_2_PORT" 240
python3 tests/container_smoke.py scale "http://127.0.0.1:$LW_API_PORT" "http://127.0.0.1:$LW_API_2_PORT" "$WORKERS" \
  | tee "$LOGS/scale.log"

say "which worker ran which training"
compose logs --no-color worker >"$LOGS/workers.log"
python3 - "$LOGS/scale.log" "$LOGS/workers.log" "$WORKERS" <<'EOF'
import json, sys
runs = [line.split()[1] for line in open(sys.argv[1]) if line.startswith("run ")]
where = {}
for line in open(sys.argv[2]):
    container, _, text = line.partition("|")
    text = text.strip()
    if text.startswith("{"):
        message = json.loads(text)["message"]
        for run in runs:
            if f"training run {run} started" in message:
                where[run] = container.strip()
for run in runs:
    print(f"  {run} ran on {where.get(run)}")
assert len(set(where.get(run) for run in runs)) == int(sys.argv[3]) and None not in where.values(), where
print(f"  ok: {len(runs)} trainings ran on {sys.argv[3]} different worker containers")
EOF
