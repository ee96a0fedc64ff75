# syntax=docker/dockerfile:1
# layerwise: FastAPI in front, Keras (TensorFlow CPU) worker processes behind. Multi-stage: the final image
# holds the virtual environment and the app, no pip caches or build tools.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv
RUN python -m venv $VIRTUAL_ENV
ENV PATH=$VIRTUAL_ENV/bin:$PATH
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py \
    && pip install . \
    && pip uninstall --yes layerwise \
    && rm -rf app
COPY app ./app
RUN pip install --no-deps . \
    && find $VIRTUAL_ENV -name '__pycache__' -prune -exec rm -rf {} + \
    && python -m compileall -q $VIRTUAL_ENV/lib/python3.11/site-packages/app

FROM python:3.11-slim-bookworm
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    LAYERWISE_HOST=0.0.0.0 LAYERWISE_PORT=8000
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin layerwise
COPY --from=build /opt/venv /opt/venv
USER layerwise
WORKDIR /home/layerwise
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LAYERWISE_PORT', '8000') + '/readyz', timeout=3)"]
CMD ["layerwise"]
