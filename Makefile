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

test: deps lint browser harness
	npx vitest run

.PHONY: help deps simulate lint test test-unit browser harness
