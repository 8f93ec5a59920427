# gate: policy-as-code attestation gate. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_MODULES_STAMP := node_modules/.deps-stamp
DIST_STAMP := dist/.build-stamp
SRC := $(shell find src -name '*.ts' 2>/dev/null) tsconfig.json tsconfig.build.json

.PHONY: help deps build policies test lint demo bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

deps: $(NODE_MODULES_STAMP) ## install pinned dependencies from the lockfile

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(DIST_STAMP) ## compile TypeScript to dist/

$(DIST_STAMP): $(NODE_MODULES_STAMP) $(SRC)
	npx tsc -p tsconfig.build.json
	@chmod +x dist/cli/main.js
	@touch $@

policies: ## compile the Rego policies to WebAssembly with the real opa (issue 3)
	@echo "policies: not built yet (see issue 3)"

test: build ## run every test: typecheck, unit, conformance, end-to-end
	npx tsc -p tsconfig.json --noEmit
	npx vitest run

lint: deps ## eslint and prettier
	npx eslint .
	npx prettier --check .

demo: build ## verify the bundled example attestations and print the verified statements
	node dist/cli/main.js demo

bench: build ## side-by-side benchmarks (results as ratios)
	npx vitest bench --run

clean: ## remove build output
	rm -rf dist
