# layerwise: FastAPI in front, Keras (TensorFlow CPU) worker processes behind; the same image runs the Celery
# worker of the compose `scale` profile (`layerwise-worker`).
#
# Three stages. `deps` makes a virtual environment in /opt/venv with the dependencies alone; `app` installs
# layerwise itself, as a package, into a venv of its own; the final stage copies the two onto a fresh base,
# so pip's caches, the build context and any build tools never reach it. The dependencies' layer (TensorFlow
# is ~90% of the image) is rebuilt only when pyproject.toml changes, and a change to the code adds one small
# layer. No BuildKit-only syntax (cache mounts, heredocs): the legacy builder builds it too, as it must where
# no BuildKit frontend image can be pulled. Build: `docker build --network host -t layerwise .`.

FROM python:3.11-slim-bookworm AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
# An empty `app` package (and README) stand in so that pip can resolve the project's dependencies; the
# project itself is uninstalled again. TensorFlow's C++ headers (~290 MB) serve only to compile custom ops.
RUN python -m venv $VIRTUAL_ENV \
    && mkdir app && touch app/__init__.py README.md \
    && pip install . \
    && pip uninstall --yes layerwise pip \
    && rm -rf app build *.egg-info $VIRTUAL_ENV/lib/python3.11/site-packages/tensorflow/include

FROM python:3.11-slim-bookworm AS app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
# layerwise alone (--no-deps) in a venv at the same path, with its bytecode compiled now (the non-root user
# cannot write __pycache__ at run time); /out holds just its files: the package, its metadata, its commands.
RUN python -m venv $VIRTUAL_ENV \
    && pip install --no-deps . \
    && site=lib/python3.11/site-packages \
    && python -m compileall -q $VIRTUAL_ENV/$site/app \
    && mkdir -p /out/$site /out/bin \
    && cp -a $VIRTUAL_ENV/$site/app $VIRTUAL_ENV/$site/layerwise-*.dist-info /out/$site/ \
    && cp -a $VIRTUAL_ENV/bin/layerwise $VIRTUAL_ENV/bin/layerwise-worker /out/bin/

FROM python:3.11-slim-bookworm
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    LAYERWISE_HOST=0.0.0.0 LAYERWISE_PORT=8000 LAYERWISE_RUNS_DB=/data/runs.sqlite3
# Graphviz's dot draws the model diagrams (POST /v1/models/diagram; pydot, a dependency, drives it).
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz >/dev/null \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin layerwise \
    && mkdir /data && chown layerwise:layerwise /data
# The embedded run store; compose mounts a named volume here (a new volume takes this folder's owner).
VOLUME ["/data"]
EXPOSE 8000
# Ready = every worker pool has a worker that has imported Keras, and the run store answers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LAYERWISE_PORT', '8000') + '/readyz', timeout=3)"]
USER layerwise
WORKDIR /home/layerwise
# uvicorn with LAYERWISE_HOST, LAYERWISE_PORT, LAYERWISE_LOG_LEVEL, LAYERWISE_LOG_JSON from the environment;
# `layerwise-worker` for a Celery worker.
CMD ["layerwise"]
# Last, so that every step above stays cached and small. Owned by root: the service cannot change its code.
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /out/ /opt/venv/
