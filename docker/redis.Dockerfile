# A small Redis image from Debian's own redis-server package, for `make container-test` on a machine that
# reaches Debian's archive but no container registry (where the compose file's `redis` image cannot be
# pulled). Not for production: there, use the official image the compose file names.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
USER redis
CMD ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"]
