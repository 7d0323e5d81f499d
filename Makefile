# Aisle: two commands on a fresh machine — `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.aisle-installed
PYTEST_ARGS ?=

.PHONY: setup browser demo test test-unit lint format bench services-up services-down clean constraints help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install the pinned stack (skipped when nothing changed)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@PY=$$(test -x $(BIN)/python && echo $(BIN)/python || echo $(PYTHON)); \
	  $$PY -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "Python 3.11 is needed (the pinned stack is frozen for it); $$PY is $$($$PY --version 2>&1)."; \
	  echo "Install python3.11 and run: make PYTHON=python3.11 $(MAKECMDGOALS)  (remove .venv if it was made by another version)"; exit 1; }
	@command -v java >/dev/null || { echo "Java 17+ is needed for Spark (apt-get install openjdk-17-jre-headless)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel "setuptools>=68"
	$(BIN)/python -m pip install --progress-bar off -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

# The browser tests drive Debian's Chromium through Playwright (never a downloaded browser). Installed
# here when missing; where it cannot be (no apt-get, not root, no sudo), the browser tests skip and say so.
APT := $(if $(filter 0,$(shell id -u)),,sudo -n)
browser: ## Install the system Chromium the browser tests drive (apt package `chromium`), if missing
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	    echo "installing Chromium for the browser tests: apt-get install chromium"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $(APT) apt-get update -qq && $(APT) apt-get install -y -qq chromium >/dev/null \
	      || echo "apt-get could not install chromium: the browser tests will be skipped"; \
	  else echo "Chromium is missing and apt-get cannot run here: the browser tests will be skipped"; fi; }

demo: setup ## Run the whole pipeline end to end on a small generated shop
	$(BIN)/aisle demo

test: setup browser ## Run the whole test suite (unit, integration, DAGs, models, browser); lists the slowest
	$(BIN)/python -m pytest --durations=15 --durations-min=1.0 $(PYTEST_ARGS)

test-unit: setup ## Only the fast unit tests
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy aisle ingestion feature_repo models serving monitoring dags
	$(BIN)/lint-imports

format: setup ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup ## Run the benchmarks; each prints JSON lines with its figures
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

services-up: setup ## Start embedded Redis + Kafka-protocol broker
	$(BIN)/aisle services up

services-down: setup ## Stop what services-up started
	$(BIN)/aisle services down

constraints: ## Re-freeze constraints.txt from the current .venv
	( echo "# Full resolved set of requirements.txt + requirements-dev.txt, frozen with pip freeze (Python 3.11)."; \
	  echo "# Regenerate with: make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable ) > constraints.txt

clean: ## Stop services and remove all runtime state (var/) — keeps .venv
	-test -x $(BIN)/aisle && $(BIN)/aisle services down
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
