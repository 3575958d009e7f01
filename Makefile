# The two commands: `make example` runs the example project, `make test` runs every test.
# The main venv runs the newest supported pair (Django 6.1, Python 3.13), the older legs Python 3.11
# and 3.12. pyenv's shims refuse a version that is not selected, so its interpreters are found by path.
# $(call find_python,3.13): pyenv's newest 3.13.x, else a python3.13 on PATH that runs, else nothing.
PYENV_ROOT_DIR := $(shell pyenv root 2>/dev/null)
find_python = $(or $(lastword $(sort $(wildcard $(PYENV_ROOT_DIR)/versions/$(1).*/bin/python$(1)))),$(shell python$(1) -c 'import sys; print(sys.executable)' 2>/dev/null))
PYTHON ?= $(call find_python,3.13)
PYTHON311 ?= $(call find_python,3.11)
PYTHON312 ?= $(call find_python,3.12)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install bridge example example-proxy example-deps test test-django52 test-django60 lint bench clean browser-deps

# $(call need_python,<variable>,<version>): stop with a clear message when no such interpreter was found.
need_python = @test -n "$($(1))" || { echo "Python $(2) not found (neither in pyenv nor python$(2) on PATH): install it or run make $(1)=/path/to/python$(2)" >&2; exit 1; }

$(BIN)/.installed: pyproject.toml
	$(call need_python,PYTHON,3.13)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' 'Django>=6.1,<6.2'
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

# The example needs Django, gunicorn and the npm packages, not the test and lint tools: the `example`
# extra into .venv (the test install, if there, already has it), and the npm trees without test-only
# packages unless the full install is there already (npm ci would remove them).
$(BIN)/.example: pyproject.toml
	$(call need_python,PYTHON,3.13)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[example]' 'Django>=6.1,<6.2'
	touch $@

example-deps: $(BIN)/.example
	@test -f node_modules/.installed -a node_modules/.installed -nt package-lock.json || \
	  test -f node_modules/.example -a node_modules/.example -nt package-lock.json || \
	  { npm ci --omit=dev --no-audit --no-fund --loglevel=error && touch node_modules/.example; }
	@test -f logux_sync/bridge/node_modules/.installed -a logux_sync/bridge/node_modules/.installed -nt logux_sync/bridge/package-lock.json || \
	  { npm ci --prefix logux_sync/bridge --no-audit --no-fund --loglevel=error && touch logux_sync/bridge/node_modules/.installed; }

# Today's stack (the bridge on @logux/server 0.14, @logux/client 0.23); example-proxy: 0.13.1 + 0.21.
example: example-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" LOGUX_STACK=bridge bash example_project/run.sh

example-proxy: example-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" LOGUX_STACK=proxy bash example_project/run.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests drive Debian's Chromium with npm's playwright-core (no downloaded browsers).
browser-deps:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

# The tests that need no servers again on the older supported series, each in a venv of its own:
# Django 5.2 LTS on Python 3.11 (the oldest pair) and Django 6.0 on Python 3.12.
NO_SERVERS := -m "not e2e" --ignore=tests/e2e --ignore=tests/browser --ignore=tests/bridge
DJ52 := .venv-django52
DJ60 := .venv-django60

$(DJ52)/bin/.installed: pyproject.toml
	$(call need_python,PYTHON311,3.11)
	$(PYTHON311) -m venv $(DJ52)
	$(DJ52)/bin/pip install --quiet --upgrade pip
	$(DJ52)/bin/pip install --quiet -e '.[test]' 'Django>=5.2,<5.3'
	touch $@

$(DJ60)/bin/.installed: pyproject.toml
	$(call need_python,PYTHON312,3.12)
	$(PYTHON312) -m venv $(DJ60)
	$(DJ60)/bin/pip install --quiet --upgrade pip
	$(DJ60)/bin/pip install --quiet -e '.[test]' 'Django>=6.0,<6.1'
	touch $@

test-django52: $(DJ52)/bin/.installed node_modules/.installed
	$(DJ52)/bin/pytest -q $(NO_SERVERS)

test-django60: $(DJ60)/bin/.installed node_modules/.installed
	$(DJ60)/bin/pytest -q $(NO_SERVERS)

test: lint browser-deps test-django52 test-django60
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DJ52) $(DJ60) .venv-django42 node_modules logux_sync/bridge/node_modules example_project/db.sqlite3 example_project/.cache
