# sentilite: `make export` is the main job (data, training, every export, report);
# `make test` runs the test suite. Both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= train,tflite,onnx,dev,score,spark,bench
ARTIFACTS ?= artifacts
CELLS  ?= rnn lstm gru
PRESET ?= default
SEEDS  ?= 1 2 3
LEVER_CELLS ?= gru
# MediaPipe's TextClassifier and tflite-support's NLClassifier, in a venv of their own (never in $(VENV)).
MEDIAPIPE_VENV  ?= .venv-mediapipe
MEDIAPIPE_STAMP := $(MEDIAPIPE_VENV)/.sentilite-client.json
# What make install needs on disk: .venv (TensorFlow, PySpark) and .venv-mediapipe take 4.3 GiB, and pip
# unpacks wheels beside them. Checked first, so a full disk stops the install with one clear line instead of
# pip's "[Errno 28] No space left on device" half-way through. MIN_FREE_GIB=0 skips the check.
MIN_FREE_GIB ?= 6
define CHECK_FREE_DISK
import shutil, sys, pathlib
need, where = float(sys.argv[1]), pathlib.Path(sys.argv[2])
while not where.exists():  # the venv's folder may not be made yet: its disk is its nearest existing parent's
    where = where.parent
free = shutil.disk_usage(where).free / 2**30
if free < need:
    sys.exit(f"make install: {free:.1f} GiB free in {where}, the virtual environments need about {need:g} GiB; "
             "free some space, or set MIN_FREE_GIB=0 to try anyway")
endef
export CHECK_FREE_DISK
# Data: IMDB_DATA (a folder or .tar.gz) if set, else the cache, downloading once.
export IMDB_DATA

.PHONY: help install mediapipe-client train baseline export sweep levers datasets datasets-seeds train-time test test-unit bench bundle clean distclean
.SECONDARY:

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install .[$(EXTRAS)]

$(STAMP): pyproject.toml
	@$(PYTHON) -c "$$CHECK_FREE_DISK" $(MIN_FREE_GIB) $(dir $(abspath $(VENV)))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[$(EXTRAS)]'
	touch $(STAMP)

mediapipe-client: $(MEDIAPIPE_STAMP) ## .venv-mediapipe: MediaPipe and NLClassifier, to check model.mediapipe.tflite

# NLClassifier needs the system library libusb-1.0; without it (or without root) its checks are skipped.
$(MEDIAPIPE_STAMP): export/mediapipe/client_venv.py
	@ldconfig -p 2>/dev/null | grep -q libusb-1.0 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q libusb-1.0-0 || { apt-get update -q && apt-get install -y -q libusb-1.0-0; }; }; } || \
	  echo "libusb-1.0 not installed: NLClassifier checks will be skipped"
	$(PYTHON) export/mediapipe/client_venv.py setup $(MEDIAPIPE_VENV) --quiet
	@touch $@

MODELS    := $(foreach c,$(CELLS),$(ARTIFACTS)/$(c)/model.keras)
MANIFESTS := $(foreach c,$(CELLS),$(ARTIFACTS)/$(c)/manifest.json)
SWEEPS    := $(foreach c,$(CELLS),$(ARTIFACTS)/sweep/$(c)/sweep.json)

train: $(MODELS) ## train the default rnn, lstm and gru models into artifacts/<cell>

baseline: $(ARTIFACTS)/baseline/metrics.json ## the TF-IDF uni+bigram logistic regression every cell is measured against

export: $(ARTIFACTS)/report.md ## main job: data, training, every export, parity report
	@echo "report: $(ARTIFACTS)/report.md, parity table: $(ARTIFACTS)/parity.json, models: $(ARTIFACTS)/results.md"

$(ARTIFACTS)/%/model.keras: | $(STAMP)
	$(BIN)/sentilite train --cell $* --preset $(PRESET) --out $(ARTIFACTS)/$*

$(ARTIFACTS)/%/manifest.json: $(ARTIFACTS)/%/model.keras | $(MEDIAPIPE_STAMP)
	SENTILITE_MEDIAPIPE_VENV=$(abspath $(MEDIAPIPE_VENV)) $(BIN)/sentilite export $(ARTIFACTS)/$*

$(ARTIFACTS)/baseline/metrics.json: | $(STAMP)
	$(BIN)/sentilite baseline --out $(ARTIFACTS)/baseline

$(ARTIFACTS)/report.md: $(MANIFESTS) $(ARTIFACTS)/baseline/metrics.json
	$(BIN)/sentilite report $(ARTIFACTS) > /dev/null
	$(BIN)/sentilite results $(ARTIFACTS) --write $(ARTIFACTS)/results.md

sweep: $(SWEEPS) ## train each cell with seeds $(SEEDS) and report the spread (artifacts/sweep/<cell>/sweep.md)
	@cat $(SWEEPS:.json=.md)

$(ARTIFACTS)/sweep/%/sweep.json: | $(STAMP)
	$(BIN)/sentilite sweep --cell $* --preset $(PRESET) --seeds $(SEEDS) --out $(ARTIFACTS)/sweep/$* --quiet

levers: $(foreach c,$(LEVER_CELLS),$(ARTIFACTS)/levers/$(c).json) ## the left-out model changes (pooling, bidirectional, ...) against the kept model: artifacts/levers/<cell>.json
$(ARTIFACTS)/levers/%.json: | $(STAMP)
	$(BIN)/sentilite levers --cell $* --preset $(PRESET) --out $@

# The shared labeled sets (../shared/data, read in place): the gru cell on each, its int8 files, the peers.
SHARED_DATA ?= ../shared/data
datasets: | $(STAMP) ## SST-2, SST-5, airline, zh-shopping: train, export, evaluate, peers: artifacts/datasets, docs/datasets.md
	$(BIN)/python -m sentilite.train.datasets --data-root $(SHARED_DATA) --out $(ARTIFACTS)/datasets --doc docs/datasets.md $(DATASETS_ARGS)

# The same sets with other training seeds (the int8 files only, no peers), then the spread table of docs/datasets.md.
DATASET_SEEDS ?= 1 2
datasets-seeds: | $(STAMP) ## make datasets again with training seeds 1 and 2 (DATASET_SEEDS): the spread in docs/datasets.md
	for seed in $(DATASET_SEEDS); do \
	  $(BIN)/python -m sentilite.train.datasets --data-root $(SHARED_DATA) --out $(ARTIFACTS)/datasets-seed$$seed \
	    --peers --train-args "--seed $$seed" --export-args "--precisions int8 --formats tflite onnx" --resume || exit 1; \
	done
	$(MAKE) datasets DATASETS_ARGS="--resume --seed-runs $(foreach seed,$(DATASET_SEEDS),$(ARTIFACTS)/datasets-seed$(seed))"

# Training time at the issue's two sizes (10,000 tweets; 100,000 SST-2 phrases and IMDB reviews), every stage.
train-time: | $(STAMP) ## time `sentilite train` on 10,000 short texts and 100,000 texts: artifacts/train-time/train_time.json
	$(BIN)/python -m sentilite.train.train_time --data-root $(SHARED_DATA) --out $(ARTIFACTS)/train-time

# The package's own model (sentilite.runtime.bundled): the runtime files of $(ARTIFACTS)/gru with their manifest
# entries and the commit of the tree that holds them. Run after `make export`; the result is committed.
bundle: | $(STAMP) ## copy the exported gru model's int8 TFLite and ONNX files into the package (runtime/models/imdb-gru)
	$(BIN)/sentilite bundle $(ARTIFACTS)/gru --out runtime/models/imdb-gru

bench: $(ARTIFACTS)/report.md ## benchmark every exported file against Keras: artifacts/bench.{json,md,png}
	$(BIN)/sentilite bench $(ARTIFACTS)

bench-score: $(ARTIFACTS)/gru/manifest.json ## rows/s of `sentilite score` (1 process, all cores, Spark local[2]): artifacts/bench_score.{json,md}
	$(BIN)/sentilite bench-score --model $(ARTIFACTS)/gru --out $(ARTIFACTS)

test: $(STAMP) $(MEDIAPIPE_STAMP) ## run the test suite (unit + IMDB-subset integration tests)
	SENTILITE_MEDIAPIPE_VENV=$(abspath $(MEDIAPIPE_VENV)) $(BIN)/python -m pytest -q

test-unit: $(STAMP) ## only the fast unit tests (no IMDB data, no training)
	$(BIN)/python -m pytest -q -m "not integration and not slow"

clean: ## remove artifacts
	rm -rf $(ARTIFACTS)

distclean: clean ## remove artifacts and the virtual environments
	rm -rf $(VENV) $(MEDIAPIPE_VENV)

# The JavaScript runtime (web/): its targets live beside it.
-include web/web.mk
