# One command per habit. `make demo` and `make test` are the README's contract.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast test-under-load lint bench bench-peers clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# runlake alone: what the demo needs (seconds, not the minutes the dev extras take)
$(VENV)/.installed-base: pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# runlake with every extra the tests and tools use. torch first, pinned to the CPU build these
# machines hold on disk: left to the trainer integrations' dependencies, pip would take a CUDA
# build of several GB.
TORCH ?= torch==2.13.0
$(STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet '$(TORCH)'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-base

install: $(STAMP)

# The demo writes to a fresh default root, demo-output/runlake-data, and says how to look at it
# with the command line ($(BIN)/runlake).
demo: $(VENV)/.installed-base
	rm -rf demo-output
	mkdir -p demo-output
	cd demo-output && ../$(BIN)/python -m runlake.demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The edit loop (under a minute: 50-55 s on two idle cores, pytest-xdist on both): the pure core
# (tests/unit) and the contract suite on a local root, selected by markers (not name
# substrings: the bounded-memory tests stay in); no processes, no browser, no memory:// or S3
# variants. `make test` runs everything.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not memory and not s3 and not ui and not spark"

# The whole suite N times with every core kept busy by a busy loop (no test may depend on timing
# under load): one line per run in under-load/summary.
N ?= 10
test-under-load: $(STAMP)
	.ci/under-load $(N)

lint: $(STAMP)
	$(BIN)/ruff check runlake tests benchmarks
	$(BIN)/ruff format --check runlake tests benchmarks
	$(BIN)/mypy runlake

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The peers (MLflow, W&B offline) side by side: installs the `bench` extra, then the full suite.
bench-peers: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo-output .pytest_cache .hypothesis
