# dcgan-lab: `make repro` runs the pipeline, `make test` the tests; both set up .venv first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP_VERSION := 26.3
UI_PORT ?= 5000
# make ablation: one DVC experiment per grid point (axes separated by spaces, values by |), every
# variant x every seed inside each; JOBS experiments at a time through `dvc queue`.
GRID   ?= data.pixel_range=[-1,1]|[0,1]
SEEDS  ?= [0,1,2]
JOBS   ?= 2

.PHONY: setup repro study test bench gpu-check ui ablation clean-venv

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Stage commands call `python`: the venv's, through PATH.
repro: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The declared sequential study to its end: dvc repro, then the next look's seeds while a comparison is open.
study: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dcgan-lab study

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest

# Timings, not tests: benchmarks/README.md. Sizes by flags: make bench BENCH_ARGS="--quick".
bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) benchmarks/run_all.py $(BENCH_ARGS)

# Every speed path on a CUDA GPU in under 8 minutes: one table, benchmarks/RESULTS-cuda.md (benchmarks/README.md).
# Without CUDA it says so and exits 0. Sizes by flags: make gpu-check GPU_CHECK_ARGS="--train-repeats 1".
gpu-check: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

# Prints the link that opens the experiment on its training runs (MLflow 3 shows GenAI views by default).
ui: setup
	$(BIN)/dcgan-lab ui --host 127.0.0.1 --port $(UI_PORT)

ablation: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) scripts/ablation.py $(foreach axis,$(GRID),--grid '$(axis)') \
		--seeds '$(SEEDS)' -j $(JOBS)

clean-venv:
	rm -rf $(VENV)
