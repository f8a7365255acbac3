# One entry point for every job. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PY_BOOT ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

DATA ?= data
RAW ?= $(DATA)/raw
OUT ?= $(DATA)/shards
DATASET ?= mimic
MODE ?=
EXECUTOR ?= ray
WORKERS ?=
ARGS ?=
SHARD ?= $(OUT)

export RAY_AUTH_MODE := disabled
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export DS_ACCELERATOR := cpu
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions
export RADFM_CACHE ?= $(CURDIR)/.cache/radfm_data

.PHONY: setup demo shards inspect validate train eval test lint bench clean

## setup: create .venv and install everything (torch CPU wheel first, then the project)
setup: $(STAMP)
$(STAMP): pyproject.toml
	$(PY_BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install -q -U pip
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e '.[demo,dev]'
	# data files only (reports, MNI template, colour fundus and micrograph images): never imported, so installed
	# without their dependencies
	$(PYTHON) -m pip install -q --no-deps torchxrayvision==1.5.7 nilearn==0.14.1 scikit-image==0.26.0
	touch $(STAMP)

## demo: build the demo raw tree (every registered source's fixture: real images/reports from registry packages),
##       its shards (small shards, so each stream has several), and inspect and validate them
demo: setup
	$(PYTHON) -m pipelines.demo --out $(RAW)
	$(PYTHON) -m pipelines.demo --list-builds | while read -r dataset args; do \
		$(MAKE) --no-print-directory shards DATASET=$$dataset ARGS="$$args" || exit 1; done
	$(PYTHON) -m pipelines.inspect $(OUT) --show 1 --per-task --montage $(OUT)/montage.png --validate
	@echo "demo raw tree: $(RAW)   shards: $(OUT)   montage: $(OUT)/montage.png"

## shards: build shards for DATASET from RAW/DATASET (MODE=radfm|native, EXECUTOR=ray|serial)
shards: setup
	$(PYTHON) -m pipelines.build --dataset $(DATASET) --raw $(RAW)/$(DATASET) --out $(OUT) \
		$(if $(MODE),--mode $(MODE)) --executor $(EXECUTOR) $(if $(WORKERS),--workers $(WORKERS)) $(ARGS)

## inspect: summarise shards (SHARD=a tar, a directory or a manifest)
inspect: setup
	$(PYTHON) -m pipelines.inspect $(SHARD) --show 1 $(ARGS)

## validate: check shards against the spec
validate: setup
	$(PYTHON) -m shards_spec.validate $(SHARD)

## train: train the tiny model on the demo shards on 2 CPU ranks with DeepSpeed
train: setup
	$(VENV)/bin/deepspeed --num_gpus 2 train/run.py --config train/configs/demo-cpu.yaml $(ARGS)

## eval: evaluate the demo model (after make train) on the demo test shards: predictions.csv, metrics.json, report.md
EVAL_CHECKPOINT ?= runs/demo-cpu/final
EVAL_OUT ?= runs/demo-eval
eval: setup
	$(PYTHON) -m train.evaluate --checkpoint $(EVAL_CHECKPOINT) --shards $(OUT) --out $(EVAL_OUT) $(ARGS)

## test: install and run the test suite
test: setup
	$(PYTHON) -m pytest -q $(ARGS)

## lint: static checks (ruff)
lint: setup
	$(VENV)/bin/ruff check pipelines shards_spec model train evaluation bench tests tools

## bench: install the peers (pyproject's `bench` extra, --no-deps: see there), run the benchmarks and rewrite
##        docs/benchmarks.md sections
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PYTHON) -m pip install -q --no-deps $$($(PYTHON) -c "import tomllib; \
		print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['bench']))")
	$(PYTHON) -c "import bench.peers as p; found = p.import_peers(); \
		assert found['streaming'] and found['litdata'], 'a benchmark peer does not import'"
	$(PYTHON) -c "import monai.transforms"
	touch $(BENCH_STAMP)

bench: setup $(BENCH_STAMP)
	$(PYTHON) bench/encoding.py
	$(PYTHON) bench/build.py
	$(PYTHON) bench/volume3d.py
	$(PYTHON) bench/embedding.py
	$(PYTHON) bench/loader.py
	$(PYTHON) bench/peers.py
	$(PYTHON) bench/remote.py  # s3fs only with --s3fs-python (its aiobotocore pins an older botocore)
	$(PYTHON) bench/memory.py

## clean: remove generated data, runs and caches (keeps .venv)
clean:
	rm -rf $(DATA) runs bench/out .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
