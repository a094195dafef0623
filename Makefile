# sentilite: `make export` is the main job (data, training, every export, report);
# `make test` runs the test suite. Both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARTIFACTS ?= artifacts
CELLS  ?= rnn lstm gru
PRESET ?= default
# Data: IMDB_DATA (a folder or .tar.gz) if set, else the cache, downloading once.
export IMDB_DATA

.PHONY: help install train export test test-unit bench clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install .[train,tflite,onnx,dev]

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[train,tflite,onnx,dev]'
	touch $(STAMP)

train: $(STAMP) ## train the default rnn, lstm and gru models into artifacts/<cell>
	@for cell in $(CELLS); do \
	  $(BIN)/sentilite train --cell $$cell --preset $(PRESET) --out $(ARTIFACTS)/$$cell || exit 1; \
	done

export: train ## main job: train, export every format, write the parity report
	$(BIN)/sentilite results $(ARTIFACTS) --write $(ARTIFACTS)/results.md

test: $(STAMP) ## run the test suite (unit + IMDB-subset integration tests)
	$(BIN)/python -m pytest -q

test-unit: $(STAMP) ## only the fast unit tests
	$(BIN)/python -m pytest -q -m "not integration"

clean: ## remove artifacts
	rm -rf $(ARTIFACTS)

distclean: clean ## remove artifacts and the virtual environment
	rm -rf $(VENV)
