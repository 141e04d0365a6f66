# The two commands a newcomer needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q --disable-pip-version-check
REQS := requirements.txt requirements-dev.txt constraints.txt
# checkov pins packages (e.g. packaging<24) that conflict with the app's: own venv.
CHECKOV_VENV := .venv-checkov
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run start stop test chaos bench wrk fuzz lint format venv checkov-venv clean

help:
	@echo "make run    - create .venv and run the multi-region stack locally (Ctrl-C stops it)"
	@echo "make start  - the same in the background; make stop stops it"
	@echo "make test   - install what the tests need and run the whole suite on real services"
	@echo "make chaos  - every chaos scenario (tests/chaos), the long ones too; writes docs/reliability.md"
	@echo "make bench  - every benchmark in bench/, one summary table, written to docs/benchmarks.md"
	@echo "              (QUICK=1: shorter runs; ONLY=name,name: re-run some, keep the others' last rows)"
	@echo "make fuzz   - schemathesis against a running region, FUZZ_EXAMPLES (default 100) per operation"
	@echo "make lint   - ruff (lint + format check) and mypy"

# The virtualenv, rebuilt when a requirements file changes.
$(VENV)/.installed: $(REQS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

checkov-venv: $(CHECKOV_VENV)/.installed

# The local multi-region stack (regions/devstack). REGIONS=eu-west-1,us-east-1 picks others.
run: venv
	$(BIN)/python -m regions.devstack run $(if $(REGIONS),--regions $(REGIONS))

start: venv
	$(BIN)/python -m regions.devstack start $(if $(REGIONS),--regions $(REGIONS))

stop:
	@test -x $(BIN)/python && $(BIN)/python -m regions.devstack stop || true

test: venv checkov-venv
	@$(BIN)/python -m tests.harness.preflight --install
	$(BIN)/pytest $(PYTEST_ARGS)

chaos: venv
	CHAOS_ALL=1 $(BIN)/pytest tests/chaos -m chaos $(PYTEST_ARGS)
	$(BIN)/python -m tests.chaos.report

# The load generator of bench/api_throughput.py: Debian's wrk, installed when missing (as root).
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing wrk with apt-get ..."; \
	    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }; \
	  else \
	    echo "make bench needs wrk: run 'sudo apt-get install wrk' (Debian/Ubuntu) or make bench as root." >&2; \
	    exit 1; \
	  fi; }

bench: venv wrk
	$(BIN)/python -m bench.run_all $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY) --merge) \
	  --command "make bench$(if $(QUICK), QUICK=$(QUICK))$(if $(ONLY), ONLY=$(ONLY))"

# API fuzzing with a larger budget than make test's (derandomized, 10 per operation and phase).
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= 20261203
fuzz: venv
	@mkdir -p .run
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) FUZZ_FIGURES=$(CURDIR)/.run/fuzz-figures.json \
		$(BIN)/pytest tests/saas/test_fuzz.py -o timeout=3600 -s $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .run .mypy_cache .ruff_cache db.*.sqlite3
