# The JavaScript runtime (web/), included by the Makefile: its npm packages, Debian's Chromium, its tests, the demo
# and the timing. npm installs no browser (puppeteer-core downloads none); Chromium comes from apt, as root.
WEB_DIR      := web
CHROMIUM     ?= /usr/bin/chromium
WEB_STAMP    := $(WEB_DIR)/node_modules/.package-lock.json
WEB_MODEL    ?= $(ARTIFACTS)/gru
WEB_PORT     ?= 0
WEB_REVIEWS  ?= 500

.PHONY: web-install web-test web-demo web-bench

web-install: $(WEB_STAMP) ## web/node_modules (npm ci, pinned by package-lock.json) and, as root, Debian's chromium
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; }; } || \
	  echo "$(CHROMIUM) not installed (apt-get install chromium, as root): the browser tests will be skipped"

$(WEB_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	@command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] < 20 ? 1 : 0)' || \
	  { echo "web-install: needs Node.js 20 or newer (node --version: $$(node --version 2>/dev/null || echo none))"; exit 1; }
	cd $(WEB_DIR) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

web-test: web-install $(STAMP) $(MEDIAPIPE_STAMP) ## the Node and headless Chromium tests alone (tests/test_web.py)
	SENTILITE_MEDIAPIPE_VENV=$(abspath $(MEDIAPIPE_VENV)) SENTILITE_CHROMIUM=$(CHROMIUM) \
	  $(BIN)/python -m pytest -q tests/test_web.py

# The demo's model: WEB_MODEL's model.fp32.onnx when that package exists, else the model bundled in the package.
BUNDLED_WEB_MODEL := runtime/models/imdb-gru/model.dynamic-int8.onnx
web-demo: $(WEB_STAMP) ## serve web/demo/ on 127.0.0.1 (WEB_MODEL's fp32 ONNX, else the bundled model) and print the URL
	cd $(WEB_DIR) && node tools/server.mjs --port $(WEB_PORT) \
	  --model $(abspath $(or $(wildcard $(WEB_MODEL)/model.fp32.onnx),$(BUNDLED_WEB_MODEL)))

web-bench: web-install $(WEB_MODEL)/manifest.json | $(MEDIAPIPE_STAMP) ## one review at a time in headless Chromium and in Python: $(ARTIFACTS)/web_bench.{json,md}
	SENTILITE_MEDIAPIPE_VENV=$(abspath $(MEDIAPIPE_VENV)) SENTILITE_CHROMIUM=$(CHROMIUM) \
	  $(BIN)/python $(WEB_DIR)/bench/web_bench.py --model $(WEB_MODEL) --reviews $(WEB_REVIEWS) --out $(ARTIFACTS)
