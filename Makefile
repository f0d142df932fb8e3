# modelreg — developer entry points. `make demo` and `make test` do all set-up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODELREG := $(VENV)/bin/modelreg
PYTEST_ARGS ?=

.PHONY: help venv test-deps test test-unit test-integration test-faults test-deploy bench bench-quick lint crds dev-cluster \
	dev-cluster-down demo control-plane clean dist chart-package chart-readme image

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

# The KServe SDK's models build the tests' InferenceServices (a wrong field name fails). Only the
# one package, without its dependencies (numpy, pandas, grpcio, fastapi ...: ~450 MB, and a
# cryptography pin that clashes with ours), into its own directory that the tests put on sys.path.
KSERVE_SDK_VERSION := 0.20.0
$(VENV)/kserve-sdk/.installed: $(VENV)/.installed
	$(PY) -m pip install --quiet --no-deps --upgrade --target $(VENV)/kserve-sdk 'kserve==$(KSERVE_SDK_VERSION)' 'six>=1.16,<2'
	@touch $@

venv: $(VENV)/.installed $(VENV)/kserve-sdk/.installed ## create .venv and install modelreg with its test extras

control-plane: venv ## build (first time, ~30 min) or reuse the pinned control-plane binaries
	$(MODELREG) dev-cluster build

test-deps: ## install the Debian packages the tests need (hack/test-packages.txt; once per machine)
	bash hack/test-deps.sh

test: lint test-deps control-plane ## make lint, then every test: unit, against the local control plane, and the fault suite (CI size)
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

lint: venv ## ruff check + format, import contracts (.importlinter), mypy --strict; names the failed steps
	VENV=$(VENV) bash hack/lint.sh

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
		rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .mypy_cache .import_linter_cache

dist: venv ## build the sdist and the wheel into dist/ (python -m build; what a release publishes)
	bash hack/dist.sh dist

chart-package: venv ## helm lint --strict + helm package into dist/ (CHART_REPO=oci://... also pushes)
	bash hack/chart-package.sh dist $(CHART_REPO) $(CHART_PUSH_FLAGS)

chart-readme: venv ## regenerate charts/modelreg/README.md from Chart.yaml and values.yaml
	$(PY) -m modelreg.deploy.chartdoc

image: test-deps ## build the image from the Dockerfile with buildah + mmdebstrap (no Docker; IMAGE=localhost/modelreg:dev)
	bash hack/build-image.sh $(IMAGE)
