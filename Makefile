GO      ?= go
BIN     := bin/minidock
export CGO_ENABLED := 0

.PHONY: build deps demo test test-go test-runc test-race vet bench clean install uninstall debug debug-test readme-test docs-test fuzz

build:
	$(GO) build -trimpath -ldflags '-s -w' -o $(BIN) ./cmd/minidock

# minidock on PATH: $(PREFIX)/bin/minidock, and minidockd (the daemon role
# by its name). DESTDIR for packaging.
PREFIX ?= /usr/local
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/minidock
	ln -sf minidock $(DESTDIR)$(PREFIX)/bin/minidockd

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/minidock $(DESTDIR)$(PREFIX)/bin/minidockd

# A binary for Delve (docs/debugging.md): no optimisation, no inlining,
# symbols and DWARF kept (build's -s -w strips them: "could not find
# moduledata"), source paths as they are on this machine.
debug:
	$(GO) build -gcflags='all=-N -l' -o bin/minidock-debug ./cmd/minidock

# Delve, driven by a script, stops a container's init at pivot_root and
# reads a variable and the mount table across it (root).
debug-test: debug
	scripts/debug-pivot-root.sh bin/minidock-debug
	DEBUG_VIA=env scripts/debug-pivot-root.sh bin/minidock-debug

# README's "Try the runtime by hand", line by line as written (root;
# /usr/local/bin and /tmp/b are put back as they were).
readme-test:
	scripts/test-readme.sh

# The docs' exercises: docs/README.md's set-up, then every page's "Try it"
# block, as written (root; in a mount namespace of its own, default paths
# made private: scripts/test-docs.sh).
docs-test: build
	scripts/test-docs.sh

deps:
	scripts/install-deps.sh

# The README's first command: set up, build, run a busybox container.
demo: deps build
	scripts/demo.sh

vet:
	$(GO) vet ./...

# The README's second command, and what CI runs (as root).
test: build vet oci-validation vm-test vm-demo-test debug-test readme-test docs-test test-runc test-go test-race registry-conformance fuzz

# Every package's tests, the end-to-end tests/ against minidock's runtime
# (with the drop-in tests: runc, then minidock, under dockerd, containerd
# and the CRI plugin driven by crictl).
# -p 1: one package at a time, so that the leak checks (mount table,
# cgroups, processes) of one package never see another's work in progress.
test-go: crictl
	CRICTL=$(CRICTL) $(GO) test -count=1 -p 1 -timeout 20m ./...

# minidock's runtime where runc would be, alone (docs/drop-in.md).
.PHONY: test-dropin
test-dropin: build crictl
	CRICTL=$(CRICTL) MINIDOCK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v -timeout 10m -run '^TestDropin' ./tests/

# crictl, Kubernetes' CRI client, for the drop-in tests and benchmarks:
# built once from the module proxy into a cache kept across clones.
CRICTL_VERSION := v1.37.0
CRICTL_CACHE   ?= $(HOME)/.cache/minidock
CRICTL         := $(CRICTL_CACHE)/crictl-$(CRICTL_VERSION)
.PHONY: crictl
crictl: $(CRICTL)
$(CRICTL):
	mkdir -p $(CRICTL_CACHE)/gobin-$(CRICTL_VERSION)
	GOBIN=$(CRICTL_CACHE)/gobin-$(CRICTL_VERSION) $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION)
	mv $(CRICTL_CACHE)/gobin-$(CRICTL_VERSION)/crictl $@

# The runtime tests again, against runc: they test the OCI contract; and
# the engine's container, network and volume tests with runc under the
# shim (its command-line runtime path). Left out: what does not depend on
# the runtime (registries, builds, overlay networks, API hardening), what
# tests minidock's runtime alone (the drop-in tests run runc themselves;
# rootless, the runtime library), and the crash sweeps (with runc, a
# daemon killed after the shim's `runc start` but before it recorded the
# start leaves a record that a second start fails on: a known gap).
RUNC_TESTS := ^(TestRuntime|TestCgroup|TestEngine|TestNetwork|TestVolume|TestConfinementDefaults|TestExplain)
RUNC_SKIP  := ^(TestRuntimeLibrary|TestEngineCrash|TestEngineRegistry|TestNetworkCreateRefuses|TestNetworkNeverTakes)
test-runc:
	MINIDOCK_TEST_RUNTIME=runc $(GO) test -count=1 -timeout 15m -run '$(RUNC_TESTS)' -skip '$(RUNC_SKIP)' ./tests/

# The engine tests again with the race detector compiled into the daemon,
# shim and client (a cgo build: gcc); a daemon that logs a data race fails
# its test (tests/engine_helpers_test.go).
test-race:
	CGO_ENABLED=1 $(GO) build -race -o bin/minidock-race ./cmd/minidock
	MINIDOCK_BIN=$(CURDIR)/bin/minidock-race $(GO) test -count=1 -timeout 20m -run 'TestEngine|TestNetwork' ./tests/

# Benchmarks print medians and ratios measured side by side in one run.
bench: build crictl
	CRICTL=$(CRICTL) MINIDOCK_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchtime=1x -timeout 30m ./...

clean:
	rm -rf bin

# OCI runtime-tools validation programs, runc vs minidock (root; see tests/oci/README.md).
.PHONY: oci-validation
oci-validation: build
	tests/oci/compare.sh

# The cgroup tests again on pure cgroup v2: each package in VM_PKGS is built
# as a static test binary and run as root in a VM (Debian's kernel under qemu,
# software emulation; see tests/vm/run.sh, docs/vm.md and docs/cgroups.md).
.PHONY: vm-test
VM_PKGS ?= ./cgroup ./explain
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

# A throwaway VM to try minidock in (docs/vm.md): Debian's kernel under qemu
# (KVM when it works, else software emulation), pure cgroup v2, the daemon
# running and a busybox image loaded; a shell on the console. Leaves nothing.
.PHONY: vm-demo vm-demo-test
vm-demo: build
	tests/vm/demo.sh

# The demo VM booted without the shell: the banner's commands, checked.
vm-demo-test: build
	tests/vm/demo-test.sh
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
