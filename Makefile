# Every target sets itself up: a virtual environment in .venv, the package, and the
# Debian packages it needs (installed with apt-get only when missing and run as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

RUN_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji fonts-dejavu-core
TEST_DEBS := $(RUN_DEBS) chromium poppler-utils nginx

.PHONY: run test bench lint format clean

run: $(VENV)/.run-deps $(VENV)/.installed
	$(BIN)/homework demo --if-empty
	$(BIN)/homework serve --host $(HOST) --port $(PORT)

test: $(VENV)/.test-deps $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.run-deps $(VENV)/.installed
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b $(BENCH_ARGS) || exit 1; done

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.run-deps: | $(VENV)/bin/python
	@bash .ci/debian-packages $(RUN_DEBS)
	touch $@

$(VENV)/.test-deps: | $(VENV)/bin/python
	@bash .ci/debian-packages $(TEST_DEBS)
	touch $@ $(VENV)/.run-deps

clean:
	rm -rf $(VENV) build dist .pytest_cache
