# The two commands a newcomer types: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

## Serve the synthetic demo market, start the embedded database, crawl day 1 and day 2.
demo: $(STAMP)
	$(BIN)/darkarchive --log-level WARNING demo --days 1 2

## Lint, type-check and run the whole test suite (real HTTP server, real MongoDB wire server).
## Two workers, a whole test file each (module fixtures stay whole): the suite mostly waits
## on crawler processes, so one worker keeps about one core of two busy.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n 2 --dist loadfile

## Issue 12's figures in one table (and var/bench/bench.json); see bench/README.md.
bench: $(STAMP)
	$(BIN)/python bench/bench_all.py

clean:
	rm -rf $(VENV) var
