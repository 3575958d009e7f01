# The two commands: `make example` runs the example project, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install bridge example test test-django42 lint bench clean browser-deps

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The bridge for @logux/server 0.14 (`manage.py logux_server`) and the client its tests drive.
logux_sync/bridge/node_modules/.installed: logux_sync/bridge/package.json logux_sync/bridge/package-lock.json
	npm ci --prefix logux_sync/bridge --no-audit --no-fund --loglevel=error
	touch $@

bridge: logux_sync/bridge/node_modules/.installed

install: $(BIN)/.installed node_modules/.installed bridge

example: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash example_project/run.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests drive Debian's Chromium with npm's playwright-core (no downloaded browsers).
browser-deps:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

# The tests that need no servers again on Django 4.2 LTS, the older supported series, in a venv of its own.
DJ42 := .venv-django42
$(DJ42)/bin/.installed: pyproject.toml
	$(PYTHON) -m venv $(DJ42)
	$(DJ42)/bin/pip install --quiet --upgrade pip
	$(DJ42)/bin/pip install --quiet -e '.[test]' 'Django>=4.2,<5.0'
	touch $@

test-django42: $(DJ42)/bin/.installed node_modules/.installed
	$(DJ42)/bin/pytest -q -m "not e2e" --ignore=tests/e2e --ignore=tests/browser --ignore=tests/bridge

test: lint browser-deps test-django42
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DJ42) node_modules logux_sync/bridge/node_modules example_project/db.sqlite3 example_project/.cache
