# The two commands a newcomer needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q --disable-pip-version-check
REQS := requirements.txt requirements-dev.txt constraints.txt
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test lint format venv clean

help:
	@echo "make run    - create .venv and run the region stack locally (embedded defaults without services)"
	@echo "make test   - install what the tests need and run the whole suite on real services"
	@echo "make lint   - ruff (lint + format check) and mypy"

# The virtualenv, rebuilt when a requirements file changes.
$(VENV)/.installed: $(REQS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(VENV)/.installed

run: venv
	REGION_REGISTRY=regions/registry.local.yaml REGION=$${REGION:-eu-west-1} $(BIN)/python manage.py migrate --noinput
	REGION_REGISTRY=regions/registry.local.yaml REGION=$${REGION:-eu-west-1} $(BIN)/python manage.py runserver 127.0.0.1:8101

test: venv
	@$(BIN)/python -m tests.harness.preflight --install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache db.*.sqlite3
