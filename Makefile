# roe: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11+ required).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DB ?= demo.db
DEMO_ACCOUNTS ?= 5000
# make bench's org sizes (accounts); e.g. make bench BENCH_SIZES=10000,100000
BENCH_SIZES ?= 10000,100000,1000000

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job end to end on the built-in demo org.
demo: $(STAMP)
	$(BIN)/roe --db $(DEMO_DB) demo --accounts $(DEMO_ACCOUNTS) --seed 42
	$(BIN)/roe --db $(DEMO_DB) db status
	$(BIN)/roe --db $(DEMO_DB) audit --fail-on never
	$(BIN)/roe --db $(DEMO_DB) export findings -o findings.csv
	@echo "Findings exported to $(CURDIR)/findings.csv (UTF-8 with BOM, opens in Excel)."

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## The audit, ingest, API calls and exports at three sizes; figures to bench/results.json.
bench: $(STAMP)
	BENCH_SIZES=$(BENCH_SIZES) $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) *.egg-info build .pytest_cache $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB).lock
