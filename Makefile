# Two commands set everything up on a fresh machine:  `make demo`  and  `make test`.
# Each creates .venv on first use. torch: the CPU wheel 2.13.0 is installed only when the venv has
# no torch yet, so a GPU user who put their own torch in .venv keeps it.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.safeadapt-installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: setup demo demo-vision test test-all lint bench clean

$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/safeadapt demo

demo-vision: $(STAMP)
	$(BIN)/safeadapt demo --modality vision

# One test process per core of a 2-core CI machine (pytest-xdist; each with one math thread,
# tests/conftest.py): about half the wall time of one process. TEST_WORKERS=0 runs in-process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q -n $(TEST_WORKERS) --dist worksteal --durations=15

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench && $(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/bench_foundation.py
	$(BIN)/python bench/bench_protocols.py
	$(BIN)/python bench/bench_shift.py
	$(BIN)/python bench/bench_verdicts.py
	$(BIN)/python bench/bench_scaleout.py
	$(BIN)/python bench/bench_cost_model.py
	$(BIN)/python bench/bench_linear_probe.py
	$(BIN)/python bench/bench_lp_family.py
	$(BIN)/python bench/bench_quick_estimate.py
	$(BIN)/python bench/bench_performance.py

clean:
	rm -rf $(VENV) safeadapt-out
