# The two README commands: `make demo` and `make test`. Both create .venv and install the
# project with pinned dependencies (constraints.txt) when needed, then do their job.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: demo test test-quick install timescaledb db ui psql lint format bench clean requirements-serving

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing qtis and pinned dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev]' 2>&1 \
		| { grep -v "^WARNING: Location 'file:" || true; }
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; exit 1; }
	@$(BIN)/python -c "import orchestration.definitions" 
	@touch $@

db: $(STAMP)
	@$(BIN)/qtis db up

demo: $(STAMP)
	@$(BIN)/qtis demo

# The second database backend of the tests: Debian's PostgreSQL 15 with the TimescaleDB build in
# ../shared/timescaledb. Installed when missing and we may (root); otherwise the tests marked
# storage run on the embedded server only, and pytest says why it skipped the rest.
TIMESCALEDB_DIR ?= ../shared/timescaledb
PG15 := /usr/lib/postgresql/15
timescaledb:
	@if [ ! -x $(PG15)/bin/postgres ] || [ ! -f /usr/share/postgresql/15/extension/timescaledb.control ]; then \
		if [ "$$(id -u)" = 0 ] && [ -f $(TIMESCALEDB_DIR)/install.sh ]; then \
			bash $(TIMESCALEDB_DIR)/install.sh; \
		else \
			echo "PostgreSQL 15 + TimescaleDB is not installed: the storage tests run on the embedded server only (install: sudo $(TIMESCALEDB_DIR)/install.sh)"; \
		fi; \
	fi

# Test tiers: `make test` is the full suite (what CI runs); `make test-quick` leaves out the tests
# marked slow (multi-process, server, training, demo and regime tests). `-m postgres` / `-m "not
# postgres"` select by whether a test needs a database, `-m storage` the tests that run on both
# backends (`--backends embedded,timescale`; see tests/conftest.py). Both run TEST_WORKERS test
# files at once (pytest-xdist): most of the suite waits on servers, daemons and subprocesses, so two
# workers finish in about two thirds of the time even on two cores. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
test: $(STAMP) timescaledb
	@$(BIN)/python -m pytest $(PYTEST_PARALLEL)

test-quick: $(STAMP) timescaledb
	@$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow"

ui: $(STAMP)
	@$(BIN)/qtis ui

psql: $(STAMP)
	@$(BIN)/qtis db psql

# the vulnerability audit needs the advisory service; offline it says so in one line and passes
lint: $(STAMP)
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports
	@$(BIN)/python deploy/audit.py constraints.txt deploy/requirements-serving.txt

format: $(STAMP)
	@$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	@$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[bench]' 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
	@$(BIN)/python -m bench.ingest
	@$(BIN)/python -m bench.ingest_memory
	@$(BIN)/python -m bench.fix_fuzz
	@$(BIN)/python -m bench.features
	@$(BIN)/python -m bench.training
	@$(BIN)/python -m bench.models
	@$(BIN)/python -m bench.tuning
	@$(BIN)/python -m bench.serving
	@$(BIN)/python -m bench.runtime
	@$(BIN)/python -m bench.sweep
	@$(BIN)/python -m bench.sweep_model
	@$(BIN)/python -m bench.recovery
	@$(BIN)/python -m bench.live --model --http
	@$(BIN)/python -m bench.portfolio
	@$(BIN)/python -m bench.monitoring
	@$(BIN)/python -m bench.regime

clean:
	-@test -x $(BIN)/qtis && $(BIN)/qtis db down
	rm -rf $(VENV) .qtis

# The Bento's dependencies (bentofile.yaml): deploy/requirements-serving.in compiled at the versions
# of constraints.txt, with the sha256 of every file, for the image's platform (Linux x86_64)
requirements-serving: $(STAMP)
	@$(BIN)/uv pip compile deploy/requirements-serving.in -c constraints.txt --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet \
		--custom-compile-command "make requirements-serving" -o deploy/requirements-serving.txt
