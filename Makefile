VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: check lint format typecheck layers test bench bootstrap

bootstrap:
	./scripts/bootstrap

check: lint typecheck layers test

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format:
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck:
	$(BIN)/mypy

layers:
	$(BIN)/lint-imports

test:
	$(PY) -m pytest -q

bench:
	./bench/run
