# Every target sets itself up: a virtual environment in .venv, the package, and the
# Debian packages it needs (installed with apt-get only when missing and run as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# Test processes for `make test`: one per core (TEST_JOBS=0 runs the suite in one).
TEST_JOBS ?= auto
export PIP_DISABLE_PIP_VERSION_CHECK := 1

RUN_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji fonts-dejavu-core
TEST_DEBS := $(RUN_DEBS) chromium poppler-utils zbar-tools nginx

# Exact versions of every dependency (see constraints.txt); pyproject.toml keeps the ranges.
CONSTRAINTS := constraints.txt

.PHONY: run test coverage bench lint format clean constraints catalogues messages

run: $(VENV)/.run-deps $(VENV)/.installed catalogues
	$(BIN)/homework demo --if-empty
	$(BIN)/homework serve --host $(HOST) --port $(PORT)

test: $(VENV)/.test-deps $(VENV)/.installed-test catalogues
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist worksteal $(PYTEST_ARGS)

# The suite under coverage.py, subprocesses included; the report lists every module.
coverage: $(VENV)/.test-deps $(VENV)/.installed-test catalogues
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest -q $(PYTEST_ARGS); status=$$?; \
	$(BIN)/coverage combine -q && $(BIN)/coverage report; exit $$status

bench: $(VENV)/.run-deps $(VENV)/.installed catalogues
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b $(BENCH_ARGS) || exit 1; done

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# The interface's translations: homework/translations/<code>/LC_MESSAGES/messages.po is
# the source (committed); its compiled messages.mo is built here and never committed.
TRANSLATIONS := homework/translations
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

catalogues: $(CATALOGUES)

$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel -q compile -l $* -i $< -o $@

# After changing a string in the code or a template: extract them all again and merge
# the new ones into every catalogue (then translate what is new or marked fuzzy).
messages: $(VENV)/.installed
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext -k lazy_ngettext:1,2 -k lazy_pgettext:1c,2 \
		--add-location=file --sort-output -w 100 --project homework --copyright-holder "the homework authors" \
		-o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel -q update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) \
		--ignore-obsolete -w 100

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(VENV)/bin/python
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(CONSTRAINTS) | $(VENV)/bin/python
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $@ $(VENV)/.installed

# After changing a dependency in pyproject.toml: install it, run the tests, then pin.
constraints: $(VENV)/.installed-test
	{ sed -n '1,2p' $(CONSTRAINTS); $(BIN)/pip freeze --exclude-editable; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

$(VENV)/.run-deps: | $(VENV)/bin/python
	@bash .ci/debian-packages $(RUN_DEBS)
	touch $@

$(VENV)/.test-deps: | $(VENV)/bin/python
	@bash .ci/debian-packages $(TEST_DEBS)
	touch $@ $(VENV)/.run-deps

clean:
	rm -rf $(VENV) build dist .pytest_cache .coverage .coverage.*
