# dcgan-lab: `make repro` runs the pipeline, `make test` the tests; both set up .venv first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP_VERSION := 26.3
UI_PORT ?= 5000

.PHONY: setup repro test ui clean-venv

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Stage commands call `python`: the venv's, through PATH.
repro: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest

ui: setup
	$(BIN)/mlflow ui --host 127.0.0.1 --port $(UI_PORT) --backend-store-uri "sqlite:///$(CURDIR)/mlflow.db"

clean-venv:
	rm -rf $(VENV)
