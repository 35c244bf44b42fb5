# TrueBond backend: `make dev` runs the API locally, `make test` runs every check CI runs.
# GNU make; needs Python 3.11 (python3.11, or python3 if that is 3.11+).

SHELL := /bin/bash
.DEFAULT_GOAL := help

HOST ?= 127.0.0.1
PORT ?= 8000
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-truebond
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
# bench/ may be absent in a fresh clone (git keeps no empty folder).
CODE := $(wildcard truebond tests bench)
BENCH := $(wildcard bench/*.py)

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export DEBIAN_FRONTEND := noninteractive

.PHONY: help dev test lint typecheck pytest fuzz bench clean distclean need-redis

help:
	@echo "make dev        run the API locally (HOST=$(HOST) PORT=$(PORT)), embedded MongoDB and Redis"
	@echo "make test       lint, typecheck and pytest (installs redis-server via apt-get if missing)"
	@echo "make lint       ruff check + ruff format --check"
	@echo "make typecheck  mypy --strict truebond"
	@echo "make fuzz       long schemathesis campaign (FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) per operation, logs in $(FUZZ_LOGS))"
	@echo "make bench      run every bench/*.py"
	@echo "make clean      remove caches and build output (distclean: also .venv)"

# The virtualenv. On Debian, `python3 -m venv` needs the python3-venv package: install it when root.
$(PY):
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install python3.11 (Debian: apt-get install -y python3 python3-venv)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "$(PYTHON) is older than 3.11: install Python 3.11" >&2; exit 1; }
	@if ! $(PYTHON) -m venv $(VENV); then \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing python3-venv with apt-get"; \
	    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "python venv module missing: install it (Debian: sudo apt-get install -y python3-venv)" >&2; exit 1; \
	  fi; \
	fi

# The project and its test tools, reinstalled only when setup.cfg or pyproject.toml change.
$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

dev: $(STAMP)
	$(BIN)/truebond dev --host $(HOST) --port $(PORT)

need-redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server with apt-get"; \
	    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "make test needs redis-server: run 'sudo apt-get install -y redis-server'" >&2; exit 1; \
	  fi; \
	}

lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

typecheck: $(STAMP)
	$(BIN)/mypy --strict truebond

pytest: $(STAMP) need-redis
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck pytest

# The schemathesis pass of `make test` (tests/api/test_schemathesis.py), with many more examples.
FUZZ_EXAMPLES ?= 200
FUZZ_LOGS ?= fuzz-logs
fuzz: $(STAMP) need-redis
	@mkdir -p $(FUZZ_LOGS)
	TRUEBOND_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TRUEBOND_FUZZ_TIMEOUT=3600 TRUEBOND_FUZZ_LOGS=$(abspath $(FUZZ_LOGS)) \
	  $(BIN)/pytest -q -p no:cacheprovider -p no:logging tests/api/test_schemathesis.py
	@cat $(FUZZ_LOGS)/schemathesis-summary.txt

bench: $(STAMP)
	@$(if $(BENCH),,echo "no bench/*.py scripts")
	@set -e; for script in $(BENCH); do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info fuzz-logs
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
