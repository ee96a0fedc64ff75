# The README's commands. Each target creates the virtual environment it needs on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format clean redis-server container-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## make run: serve layerwise on http://127.0.0.1:8000 (LAYERWISE_HOST / LAYERWISE_PORT to change)
run: $(VENV)/.installed-run
	$(BIN)/python -m app

## make test: the test suite, against real worker processes and a real server on loopback; the Celery mode's
## tests start Debian's redis-server (installed here if missing) and a real Celery worker
test: $(VENV)/.installed-test redis-server
	$(BIN)/python -m pytest $(PYTEST_ARGS)

redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "installing Debian's redis-server for the Celery tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

## make container-test: build the image and prove it and the compose scale profile work (needs root: it starts
## a Docker engine with ../shared/tools/container-engine if none answers; stops what it started)
container-test:
	bash scripts/container-test.sh

## make lint: ruff (lint and format check) and mypy --strict
lint: $(VENV)/.installed-test
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests
	$(BIN)/mypy

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix app tests
	$(BIN)/ruff format app tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
