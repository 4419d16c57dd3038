GO      ?= go
BIN     := bin/minidock
export CGO_ENABLED := 0

.PHONY: build deps demo test test-go test-runc test-race vet bench clean fuzz

build:
	$(GO) build -trimpath -ldflags '-s -w' -o $(BIN) ./cmd/minidock

deps:
	scripts/install-deps.sh

# The README's first command: set up, build, run a busybox container.
demo: deps build
	scripts/demo.sh

vet:
	$(GO) vet ./...

# The README's second command, and what CI runs (as root).
test: build vet oci-validation vm-test test-runc test-go test-race registry-conformance fuzz

# Every package's tests, the end-to-end tests/ against minidock's runtime.
# -p 1: one package at a time, so that the leak checks (mount table,
# cgroups, processes) of one package never see another's work in progress.
test-go:
	$(GO) test -count=1 -p 1 -timeout 20m ./...

# The runtime tests again, against runc: they test the OCI contract.
test-runc:
	MINIDOCK_TEST_RUNTIME=runc $(GO) test -count=1 -timeout 10m ./tests/

# The engine tests again with the race detector compiled into the daemon,
# shim and client (a cgo build: gcc); a daemon that logs a data race fails
# its test (tests/engine_helpers_test.go).
test-race:
	CGO_ENABLED=1 $(GO) build -race -o bin/minidock-race ./cmd/minidock
	MINIDOCK_BIN=$(CURDIR)/bin/minidock-race $(GO) test -count=1 -timeout 20m -run 'TestEngine|TestNetwork' ./tests/

# Benchmarks print medians and ratios measured side by side in one run.
bench: build
	MINIDOCK_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchtime=1x -timeout 30m ./...

clean:
	rm -rf bin

# OCI runtime-tools validation programs, runc vs minidock (root; see tests/oci/README.md).
.PHONY: oci-validation
oci-validation: build
	tests/oci/compare.sh

# The cgroup tests again on pure cgroup v2: each package in VM_PKGS is built
# as a static test binary and run as root in a VM (Debian's kernel under qemu,
# software emulation; see tests/vm/run.sh and docs/cgroups.md).
.PHONY: vm-test
VM_PKGS ?= ./cgroup
vm-test:
	@mkdir -p bin/vm
	@set -e; for p in $(VM_PKGS); do \
		t=bin/vm/$$(basename $$p).test; \
		CGO_ENABLED=0 $(GO) test -c -o $$t $$p; \
		tests/vm/run.sh $$t -test.v -test.count=1; \
	done

# The OCI distribution-spec conformance program (1.1 profile) against
# minidock's registry server, which must have no FAIL, and against Debian's
# docker-registry for comparison; prints the counts (docs/registry.md).
CONFORMANCE := github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111
.PHONY: registry-conformance
registry-conformance:
	GOBIN=$(CURDIR)/bin $(GO) install $(CONFORMANCE)
	MINIDOCK_CONFORMANCE=$(CURDIR)/bin/conformance $(GO) test -count=1 -v -run '^TestConformance' ./registry/server/

# The fuzz targets, each for FUZZTIME (go test -fuzz takes one target of
# one package at a time). Each new interesting input is minimized for 50
# runs at most: the default, a minute each, would spend a short run on
# minimizing. A crash is written to the package's testdata/fuzz/<target>/,
# which every go test then replays: commit it with the fix. See
# docs/security.md.
FUZZTIME ?= 20s
FUZZ_TARGETS := ./api:FuzzCreateRequest ./api:FuzzParseFilters ./api:FuzzParsePortSpec ./network:FuzzNames \
	./image:FuzzParseReference ./archive:FuzzUnpack ./seccomp:FuzzCompile ./build:FuzzParse
fuzz:
	@set -e; start=$$(date +%s); for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x $$pkg; \
	done; echo "fuzz: $$(( $$(date +%s) - start )) s in all"
