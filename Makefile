# modelreg — developer entry points. `make demo` and `make test` do all set-up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODELREG := $(VENV)/bin/modelreg
PYTEST_ARGS ?=

.PHONY: help venv test-deps test test-unit test-integration test-faults test-deploy bench bench-quick lint crds dev-cluster \
	dev-cluster-down demo control-plane clean

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed ## create .venv and install modelreg with its test extras

control-plane: venv ## build (first time, ~30 min) or reuse the pinned control-plane binaries
	$(MODELREG) dev-cluster build

test-deps: ## install the Debian packages the tests need (hack/test-packages.txt; once per machine)
	bash hack/test-deps.sh

test: test-deps control-plane ## run every test: unit, against the local control plane, and the fault suite (CI size)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

test-unit: venv ## fast tests with no cluster
	$(PY) -m pytest -q $(PYTEST_ARGS) tests/unit

test-integration: control-plane ## tests against the real API server
	$(PY) -m pytest -q $(PYTEST_ARGS) tests/integration

test-faults: control-plane ## fault injection (CI size; add PYTEST_ARGS=--soak for the long run)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests/faults

test-deploy: control-plane ## Helm chart, manifests, RBAC and admission policy against the API server
	$(PY) -m pytest -q $(PYTEST_ARGS) tests/integration/test_deploy.py

bench: control-plane ## full benchmarks (1,000 and 10,000 versions, about 32 min; prints figures, writes bench-results.json)
	$(PY) -m benchmarks.bench --full --out bench-results.json
	$(PY) -m benchmarks.metricsource --full --out bench-metricsource.json

bench-quick: control-plane ## quick benchmarks (under 3 minutes)
	$(PY) -m benchmarks.bench --quick --out bench-results.json
	$(PY) -m benchmarks.metricsource --quick --out bench-metricsource.json

lint: venv ## ruff
	$(VENV)/bin/ruff check operator tests
	$(VENV)/bin/ruff format --check operator tests

crds: venv ## regenerate crds/ from the Pydantic models (and the chart's copy and manifests/)
	$(PY) -m modelreg.api.crdgen crds
	bash hack/render-manifests.sh

dev-cluster: control-plane ## start (or reuse) the local control plane; prints the kubeconfig path
	$(MODELREG) dev-cluster up

dev-cluster-down: venv ## stop the local control plane and remove its data
	$(MODELREG) dev-cluster down

demo: control-plane ## run the walkthrough on the local control plane
	bash hack/demo.sh

clean: ## remove the virtual environment and caches (not the control-plane cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
