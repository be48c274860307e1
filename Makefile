# ReportLens: `make run` starts the app, `make test` runs the whole suite. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.reportlens-installed
JS_STAMP := static/vendor/.installed
HOST ?= 127.0.0.1
PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: run dev test setup db demo lint bench clean-db check-host

# torch==2.13.0 (CPU wheel) goes in first: anything else lets pip pull several GB of CUDA packages.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

# require.js, d3 and jQuery for the bertviz views, exact versions from package-lock.json, into static/vendor/
# (git-ignored, served by the app at /app/static/vendor/). npm ci wants package.json next to node_modules.
$(JS_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js and npm (apt-get install npm)," \
	  "needed for the JavaScript libraries of the bertviz views" >&2; exit 1; }
	rm -rf static/vendor && mkdir -p static/vendor
	cp package.json package-lock.json static/vendor/
	npm ci --prefix static/vendor --ignore-scripts --no-bin-links --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(STAMP) $(JS_STAMP)

db: setup
	$(BIN)/python -m db.migrate

demo: db
	$(BIN)/python cli.py seed-demo

# The demo seed also queues the demo's first training job and, after it, a scoring run (a background worker).
# Refuses a non-loopback HOST unless sign-in is configured (README "People, roles and audit"), before anything else.
check-host: setup
	$(BIN)/python -m services.auth check-startup $(HOST)

# REPORTLENS_AUTH_SECRETS (a secrets.toml with the [auth] section, outside the repository): Streamlit reads it too.
SECRETS_ARG = $(if $(REPORTLENS_AUTH_SECRETS),--secrets.files "$(REPORTLENS_AUTH_SECRETS)")

run: check-host demo
	$(BIN)/python -m streamlit run app.py --server.address $(HOST) --server.port $(PORT) $(SECRETS_ARG)

# For development: as `run`, with Streamlit's file watcher and rerun-on-save (off in .streamlit/config.toml).
dev: check-host demo
	$(BIN)/python -m streamlit run app.py --server.address $(HOST) --server.port $(PORT) $(SECRETS_ARG) \
	  --server.fileWatcherType auto --server.runOnSave true

test: setup
	@set -euo pipefail; \
	if [ -z "$${REPORTLENS_TEST_PG_URL:-}" ]; then \
	  if url=$$(bash scripts/ensure_postgres.sh); then export REPORTLENS_TEST_PG_URL="$$url"; \
	  else echo "PostgreSQL could not be started; PostgreSQL tests will fail in CI" >&2; fi; \
	fi; \
	bash scripts/ensure_chromium.sh || echo "Chromium could not be installed; browser tests will skip (fail in CI)" >&2; \
	if ls_bin=$$(bash scripts/ensure_labelstudio.sh); then export REPORTLENS_TEST_LS_BIN="$$ls_bin"; \
	else echo "Label Studio could not be installed; its server tests will skip (fail in CI)" >&2; fi; \
	$(BIN)/ruff check --quiet . ; \
	$(BIN)/lint-imports --no-cache ; \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/import_bench.py
