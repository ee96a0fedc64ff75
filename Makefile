# The README's commands. Each target creates the virtual environment it needs on a fresh machine.
# PYTHON: the Python 3.11 to make the virtual environment with; empty: python3.11, else python3 if it is 3.11, else
# a pyenv-installed 3.11 (scripts/find-python.sh, which says in one line what is missing).
PYTHON ?=
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint format bench profile bench-insight load attack vendor clean redis-server client-tools container-test graphviz graphviz-if-possible

# The virtual environment exists (its bin/python, the target) only once it is whole: a half-made one is removed,
# so that the next make starts afresh instead of reusing it.
$(BIN)/python:
	@rm -rf $(VENV)
	@python=$$(sh scripts/find-python.sh "$(PYTHON)") \
	  && echo "$$python -m venv $(VENV)" && $$python -m venv $(VENV) \
	  && $(BIN)/python -m pip install --quiet --upgrade pip \
	  || { rm -rf $(VENV); exit 1; }

# A .venv made before with another Python (PYTHON=..., or an older Makefile) is refused in one line, not in pip's words.
VENV_IS_311 = @$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
	|| { echo "make: $(VENV) has $$($(BIN)/python --version 2>&1), not Python 3.11: make clean, then make again" \
	  "(PYTHON=/path/to/python3.11 to choose one)" >&2; exit 1; }

# Each stamp is written only after its install succeeded.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(VENV_IS_311)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(VENV_IS_311)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## make run: serve layerwise on http://127.0.0.1:8000 (LAYERWISE_HOST / LAYERWISE_PORT to change)
run: $(VENV)/.installed-run graphviz-if-possible
	$(BIN)/python -m app

# Diagrams (POST /v1/models/diagram) are drawn by Graphviz's dot, a Debian package. make test needs it; make run
# installs it where it can (as root) and otherwise serves everything else, diagrams answering 503 with the fix.
graphviz:
	@command -v dot >/dev/null || { \
	  echo "installing Debian's graphviz for the model diagrams"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz >/dev/null; }
graphviz-if-possible:
	@command -v dot >/dev/null || $(MAKE) --no-print-directory graphviz \
	  || echo "make: Graphviz's dot is not installed, so diagrams will answer 503 (apt-get install graphviz)" >&2

# The browser tests drive Debian's Chromium: Playwright's own browser download is not reachable everywhere.
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

## make test: the test suite, against real worker processes and a real server on loopback, in Chromium for the
## playground; the Celery mode's tests start Debian's redis-server (installed here if missing) and a Celery worker
test: $(VENV)/.installed-test $(CHROMIUM) redis-server client-tools graphviz
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The generated clients' tests run openapi-generator on Java and tsc on Node (their npm packages: npm ci, from
# tests/clients/package-lock.json, which the test runs itself).
client-tools:
	@command -v java >/dev/null && command -v npm >/dev/null || { \
	  echo "installing Debian's Java runtime and npm for the generated clients' tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    default-jre-headless npm >/dev/null; }
# The pure tests: the request language, the analytic engine, formatting, the set-up (fake interpreters). No workers, server, browser, Redis,
# apt-get or Keras (tests/conftest.py fails a test there that asks for one).
PURE_TESTS := tests/spec tests/analysis tests/test_formatting.py tests/test_setup.py

## make test-fast: the pure tests only (no workers, no server, no browser, no apt-get, no Keras), in seconds
test-fast: $(VENV)/.installed-test
	LAYERWISE_TEST_FAST=1 $(BIN)/python -m pytest $(PURE_TESTS) $(PYTEST_ARGS)

redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "installing Debian's redis-server for the Celery tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

## make container-test: build the image and prove it and the compose scale profile work (needs root: it starts
## a Docker engine with ../shared/tools/container-engine if none answers; stops what it started)
container-test:
	bash scripts/container-test.sh

## make lint: ruff (lint and format check), mypy --strict, and the layering contracts (lint-imports, pyproject.toml)
lint: $(VENV)/.installed-test
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## make bench: the service against plain Keras in one run, then how both grow with the work, drawn in docs/cost.png
## (QUICK=1: few repetitions and points, for CI; its figure goes to artifacts/cost-quick.png)
bench: $(VENV)/.installed-test
	$(BIN)/python bench/bench.py $(if $(QUICK),--quick)
	$(BIN)/python bench/curves.py $(if $(QUICK),--quick)

## make profile: pyinstrument profiles of a worker's summaries and trainings, HTML in artifacts/profile/ (asserts nothing)
profile: $(VENV)/.installed-test
	$(BIN)/python bench/profile.py

## make bench-insight: how fast the analytic engine answers and abusive models are refused (asserts nothing)
bench-insight: $(VENV)/.installed-test
	$(BIN)/python bench/insight.py

## make load: 50 locust users for 60 s against the service on loopback (QUICK=1: 10 users for 10 s, for CI); fails
## on a 5xx, a 429 without Retry-After or any undocumented status, and reports speed without asserting it
load: $(VENV)/.installed-test
	$(BIN)/python bench/load.py $(if $(QUICK),--quick)

## make attack: 20 hostile clients from 20 loopback addresses for 60 s against the service with its protections at
## their defaults, and one normal user meanwhile (QUICK=1: 10 s, for CI); fails on an undocumented 5xx, a 429 or 503
## without Retry-After, a normal request with no answer, a lost run or a service that died, and reports the rest
attack: $(VENV)/.installed-test
	$(BIN)/python bench/attack.py $(if $(QUICK),--quick)

## make vendor: refresh the playground's Chart.js and /docs' Swagger UI from the npm registry (versions here)
vendor:
	scripts/vendor-npm.sh chart.js 4.6.1 . dist/chart.umd.min.js dist/chart.umd.min.js.map LICENSE.md:chart.js.LICENSE.md
	scripts/vendor-npm.sh swagger-ui-dist 5.35.0 swagger-ui swagger-ui-bundle.js swagger-ui.css LICENSE

format: $(VENV)/.installed-test
	$(BIN)/ruff format app tests bench
	$(BIN)/ruff check --fix app tests bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
