# Local toolchain. `make demo` and `make test` set everything up themselves.
SHELL := /bin/bash
# Python 3.13: the Functions runtime's worker logic (azure-functions-runtime) exists on PyPI for 3.13+,
# so the tests run the very code Azure runs. Found on PATH, then under pyenv (its shims refuse a
# version that is not selected), then as plain python3.
PYTHON ?= $(shell scripts/find-python.sh 3.13)
VENV := .venv
INFRA_VENV := .venv-infra
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEMO_ROWS ?= 300000

# A tool's venv of its own, from its hashed lock (checkov, the audit tools, MkDocs, the MLflow UI, the bench peer pin
# what the app pins differently): $(call tool-venv,DIR,LOCK,what it is for). Says what it installs and why first.
define tool-venv
	@echo "installing $(1) ($(2)): $(3)"
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet --require-hashes -r $(2)
	touch $(1)/.installed
endef

.PHONY: setup demo-setup chromium postgresql redis mlflow-ui lock test-fast test-worker infra-check azurite azurite-stop demo test bench-etl bench-train bench-train-distributed wrk bench-score bench-stream bench-fl bench-features bench-monitor lint clean

define new_venv
@test -n "$(PYTHON)" || { echo "Python 3.13 is required and none was found: install it (pyenv install 3.13, or apt/your OS's python3.13) or run make PYTHON=/path/to/python3.13" >&2; exit 1; }
@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else "Python 3.13 is required (found %d.%d at %s): install it (pyenv install 3.13) or pass make PYTHON=/path/to/python3.13" % (*sys.version_info[:2], sys.executable))'
test -x $(PY) || $(PYTHON) -m venv $(VENV)
$(PIP) install --quiet --upgrade pip
endef

# Two steps of one .venv. The demo's (make demo-setup): the app and its local HTTP server (requirements-demo.lock).
# The tests' (make setup): everything in requirements-dev.lock, a superset at the same pins (lint, types, pytest,
# schemathesis, Spark, the Functions worker), and the worker's protos; it counts as the demo's step too.
$(VENV)/.app-installed: requirements-demo.lock pyproject.toml
	@echo "installing .venv (requirements-demo.lock): the app and the HTTP server the demo serves it on"
	$(new_venv)
	$(PIP) install --quiet --require-hashes -r requirements-demo.lock
	$(PIP) install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed: requirements-dev.lock requirements-demo.lock requirements-worker-protos.txt pyproject.toml
	@echo "installing .venv (requirements-dev.lock): the app with the test, lint, type and benchmark tools"
	$(new_venv)
	$(PIP) install --quiet --require-hashes -r requirements-dev.lock
	$(PIP) install --quiet --no-deps -e .
	rm -rf $(VENV)/host-protos
	$(PIP) install --quiet --no-deps --target $(VENV)/host-protos --require-hashes -r requirements-worker-protos.txt
	touch $@ $(VENV)/.app-installed

# checkov and shellcheck (a pip-packaged binary) live apart: checkov pins what the app pins differently.
$(INFRA_VENV)/.installed: requirements-infra.txt
	@echo "installing $(INFRA_VENV) (checkov, shellcheck): the infrastructure checks of make test"
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/pip install --quiet -r requirements-infra.txt
	touch $@

# Azurite alone for the demo (a dependency in package.json); the tests' `npm ci` adds playwright-core (a
# devDependency). `npm ci` empties node_modules first, so the full install stamps both.
node_modules/.azurite-installed: package.json package-lock.json
	@echo "installing node_modules (npm ci --omit=dev): Azurite, the storage emulator the demo runs on"
	npm ci --omit=dev --no-audit --no-fund --loglevel=error
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "installing node_modules (npm ci): Azurite, and playwright-core for the monitoring report's browser test"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@ node_modules/.azurite-installed

# Debian packages the tests (never the demo) run, each installed once: nothing happens when the package is there;
# scripts/apt-install.sh says which package, its size and why before installing, as root directly, else with sudo.
chromium: ## Debian's chromium package (headless browser tests), installed once
	@command -v chromium >/dev/null 2>&1 || scripts/apt-install.sh chromium "~290 MB" "the monitoring report's browser test drives it through playwright-core"

postgresql: ## Debian's PostgreSQL server (the MLflow tracking store's tests run a private one), installed once
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || scripts/apt-install.sh postgresql "~55 MB" "the MLflow tracking store's tests run a private server"

redis: ## Debian's Redis server (the online store's tests run a private one), installed once
	@command -v redis-server >/dev/null 2>&1 || scripts/apt-install.sh redis-server "~2 MB" "the online store's tests run a private server"

demo-setup: $(VENV)/.app-installed node_modules/.azurite-installed ## what make demo runs on, no more: the app's .venv and Azurite (idempotent)

setup: $(VENV)/.installed $(INFRA_VENV)/.installed node_modules/.installed chromium postgresql redis ## what make test runs on: the demo's, the test tools, checkov, playwright-core, Chromium, PostgreSQL, Redis (idempotent)

infra-check: setup ## checkov, Bicep parsing, shellcheck and settings consistency (also run by make test)
	$(PY) -m pytest tests/infra -q

azurite: demo-setup ## start Azurite on 127.0.0.1:10000-10002 (data in .azurite/) with every container
	@scripts/azurite.sh start
	@$(VENV)/bin/fraudops init >/dev/null

azurite-stop: ## stop the Azurite that `make azurite` started
	@scripts/azurite.sh stop

demo: demo-setup ## the whole slice end to end; stops what it started
	@started=0; if ! scripts/azurite.sh status >/dev/null 2>&1; then scripts/azurite.sh start >&2 && started=1; fi; \
	$(VENV)/bin/fraudops init >/dev/null && $(VENV)/bin/fraudops demo --rows $(DEMO_ROWS); status=$$?; \
	if [ $$started = 1 ]; then scripts/azurite.sh stop >&2; fi; exit $$status

test: setup ## lint, types, layers, then the whole suite (tests start their own Azurite on free ports)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest --durations=15

MLFLOW_VENV := .venv-mlflow
MLFLOW_PORT ?= 5000
$(MLFLOW_VENV)/.installed: requirements-mlflow-ui.lock
	$(call tool-venv,$(MLFLOW_VENV),requirements-mlflow-ui.lock,the MLflow UI over the local store)

mlflow-ui: $(MLFLOW_VENV)/.installed ## the MLflow UI over the local store (.mlflow/mlflow.db) on 127.0.0.1:$(MLFLOW_PORT)
	@mkdir -p .mlflow
	$(MLFLOW_VENV)/bin/mlflow ui --backend-store-uri sqlite:///.mlflow/mlflow.db --default-artifact-root .mlflow/artifacts --host 127.0.0.1 --port $(MLFLOW_PORT)

# Supply chain (issue 41): pip-audit and cyclonedx-py in a venv of their own (cyclonedx-bom needs a newer
# cyclonedx-python-lib than checkov pins in .venv-infra). Where the vulnerability service is unreachable,
# `make audit` says so in one line and passes; with AUDIT_STRICT=1 (CI) that fails, as does any finding
# that audit-allowlist.toml does not cover.
AUDIT_VENV := .venv-audit
$(AUDIT_VENV)/.installed: requirements-audit.lock
	$(call tool-venv,$(AUDIT_VENV),requirements-audit.lock,pip-audit and cyclonedx-py for the supply-chain checks of make test / audit / sbom)

setup: $(AUDIT_VENV)/.installed  # tests/test_supply_chain.py runs its tools
clean: clean-audit

.PHONY: audit sbom lock-audit clean-audit
audit: $(AUDIT_VENV)/.installed ## pip-audit every deployable's hashed lock as written (no resolving) against audit-allowlist.toml
	$(AUDIT_VENV)/bin/python -m scripts.supply_chain.audit

sbom: $(AUDIT_VENV)/.installed ## a CycloneDX SBOM per deployable (scoring, pipeline, bank): dist/sbom/<name>.cdx.json
	$(AUDIT_VENV)/bin/python -m scripts.supply_chain.sbom

lock-audit: ## recompile requirements-audit.lock (every transitive pin, with hashes) after editing requirements-audit.txt
	$(VENV)/bin/uv pip compile --python-version 3.13 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header requirements-audit.txt -o requirements-audit.lock

clean-audit:
	rm -rf $(AUDIT_VENV) dist/sbom

# The documentation site (issue 42): MkDocs and Material in a venv of their own (.venv-docs), from a hashed lock.
# `make docs` builds site/ strictly (a warning or a broken link fails it); tests/test_docs.py does the same in make test.
DOCS_VENV := .venv-docs
$(DOCS_VENV)/.installed: requirements-docs.lock
	$(call tool-venv,$(DOCS_VENV),requirements-docs.lock,MkDocs and Material for the documentation site that make test builds strictly)

setup: $(DOCS_VENV)/.installed  # tests/test_docs.py builds the site
clean: clean-docs

.PHONY: docs lock-docs clean-docs
docs: $(VENV)/.installed $(DOCS_VENV)/.installed ## the documentation site (reference pages generated from the code) into site/, strict
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict -d site

lock-docs: ## recompile requirements-docs.lock (every transitive pin, with hashes) after editing requirements-docs.txt
	$(VENV)/bin/uv pip compile --python-version 3.13 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header requirements-docs.txt -o requirements-docs.lock

clean-docs:
	rm -rf $(DOCS_VENV) site

lock: ## recompile requirements-dev.lock and the deployables' locks (every transitive pin, with hashes) after editing requirements*.txt
	$(VENV)/bin/uv pip compile --python-version 3.13 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header requirements-dev.txt -o requirements-dev.lock
	$(VENV)/bin/uv pip compile --python-version 3.13 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header requirements-bench-peer.txt -o requirements-bench-peer.lock
	# the demo's set, at the dev lock's pins
	$(VENV)/bin/uv pip compile --python-version 3.13 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header requirements-demo.txt -c requirements-dev.lock -o requirements-demo.lock
	# each deployable's lock, constrained to the dev lock's pins: the deployed set is the tested set
	for app in scoring pipeline; do (cd deploy/$$app && ../../$(VENV)/bin/uv pip compile --python-version 3.13 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header requirements.txt -c ../../requirements-dev.lock -o requirements.lock); done

test-fast: setup ## the developer's loop (under a minute): format, lint, layers, and the tests that need no Azurite
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m "not slow" tests/unit tests/test_architecture.py tests/test_layout.py tests/test_dataset_names.py tests/test_tooling.py tests/worker/test_host_rules.py

test-worker: setup ## the worker-conformance tier alone: the real Functions worker logic indexes and invokes the app
	$(PY) -m pytest tests/worker -q

bench-etl: setup ## ETL vs its floor on a full-size file, on a private Azurite; BIG_ROWS=4700000 adds a ~2.5 GB file
	$(PY) scripts/bench_etl.py --big-rows $(or $(BIG_ROWS),0)

bench-train: setup ## training on a full-size generated file: AUC/PR-AUC vs Bayes-optimal, time vs one bare fit, peak RSS
	$(PY) scripts/bench_train.py

bench-train-distributed: setup ## single node vs LightGBM on a 2-worker Dask LocalCluster, same window: rows/s, peak RSS per worker vs its limit
	$(PY) scripts/bench_train_distributed.py

# The peer of bench-score: the Azure ML inference server in a venv of its own (its pins are not ours).
PEER_VENV := .venv-bench-peer
$(PEER_VENV)/.installed: requirements-bench-peer.lock
	$(call tool-venv,$(PEER_VENV),requirements-bench-peer.lock,the Azure ML inference server that bench-score compares with)

wrk: ## Debian's wrk (bench-score's saturation load), installed once
	@command -v wrk >/dev/null 2>&1 || scripts/apt-install.sh wrk "~1 MB" "bench-score's saturation load"

bench-score: setup wrk $(PEER_VENV)/.installed ## fraudops serve beside the Azure ML inference server and its floors, then by contract
	$(PY) scripts/bench_score.py
	$(PY) scripts/bench_contracts.py
	$(PY) scripts/bench_online.py

bench-features: setup ## behavioural features: the point-in-time builder vs pandas (1,000,000 rows), then quality per fraud mechanism on the served path
	$(PY) scripts/bench_features.py
	$(PY) scripts/bench_behaviour.py

bench-stream: setup ## stream processor, batches of 1,000 events: events/s and time by stage vs bare ONNX Runtime
	$(PY) scripts/bench_stream.py
	$(PY) scripts/bench_online.py --singles 200

bench-monitor: setup ## the daily monitoring run's peak memory over a month of predictions, beside reading the records alone
	$(PY) scripts/bench_monitor.py

bench-fl: setup ## federated: AUC vs centralised (IID/non-IID), poisoned banks per aggregator, aggregation cost
	$(PY) scripts/bench_fl.py

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(MLFLOW_VENV) node_modules .azurite .demo .mlflow .pytest_cache .mypy_cache .ruff_cache
