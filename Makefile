# `make test` and `make demo` create .venv and install everything they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: env test lint typecheck unit demo bench stress clean

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt torch torchvision
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

lint: env
	$(BIN)/ruff check lightning_lr tests examples benchmarks

typecheck: env
	$(BIN)/mypy

unit: env
	MPLBACKEND=Agg $(BIN)/pytest -q

test: lint typecheck unit

demo: env
	MPLBACKEND=Agg $(BIN)/lightning-lr fit --config configs/mnist1d.yaml

bench: env
	MPLBACKEND=Agg $(BIN)/python -m benchmarks

# kill/resume, divergence injection, DDP and concurrent search (SQLite and a local PostgreSQL,
# which it installs with apt-get when missing); prints a table of cases tried and passed
stress: env
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[stress]"
	MPLBACKEND=Agg $(BIN)/python -m tests.stress

clean:
	rm -rf $(VENV) runs .mypy_cache .ruff_cache .pytest_cache
