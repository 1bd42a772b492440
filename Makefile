# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run demo test lint bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed examples/plugin/pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation ./examples/plugin
	touch $@

## run: set up and start the service with its chat page at http://127.0.0.1:8000 (no API key needed)
run: $(VENV)/.installed
	$(BIN)/copilot serve

## demo: clean a faulty table on the embedded defaults, in the terminal
demo: $(VENV)/.installed
	$(BIN)/copilot demo

## test: set up and run the whole test suite
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q --durations=25

## bench: every figure in BENCHMARKS.md, printed as Markdown (about two hours on 2 vCPUs; never part of `make test`;
##        the dev extras too: PostgreSQL's server and a Ray head for the scale-out figures)
bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/sandbox_overhead.py --rows 500 10000 100000 --ray
	$(BIN)/python bench/scale_out.py
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/quality.py --cases breast_cancer wine iris penguins rare
	$(BIN)/python bench/do_no_harm.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
