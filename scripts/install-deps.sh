#!/usr/bin/env bash
# Installs the Debian packages minidock's demo, tests and benchmarks use.
# One list for the README's set-up command and for CI (.ci/run).
set -euo pipefail
pkgs=(
  busybox-static   # the static busybox that test and demo images are made of
  runc             # reference runtime: the tests also run against it
  iproute2         # ip, for tests that look at links and namespaces
  nftables         # nft: the bridge firewall (bridge/firewall.go)
  etcd-server etcd-client  # the cluster store of overlay networks: cluster/ and vxlan/ tests start one (etcdctl reads its keys)
  skopeo umoci     # third-party image tools for the interop tests
  docker-registry  # distribution 2.8: the reference registry of the registry tests
  docker.io        # dockerd: pulls from minidock's registry in the tests; bench peer; the drop-in tests run minidock's runtime under it
  containerd       # containerd, ctr and its runc v2 shim: the drop-in tests (tests/dropin_*), its CRI plugin with crictl (make crictl)
  util-linux       # nsenter: the drop-in tests start dockerd and containerd in a mount namespace kept for them
  podman conmon    # the drop-in tests run minidock's runtime under podman too (the bundles it writes)
  qemu-system-x86 linux-image-amd64 cpio xz-utils  # make vm-test, vm-demo: VMs on pure cgroup v2
  jq               # scripts/debug-pivot-root.sh edits a bundle's config.json; the docs' exercises read JSON
  curl             # the docs' exercises (make docs-test) ask the Engine API and a registry directly
  gcc libc6-dev    # make test-race: the race detector needs cgo
  uidmap           # newuidmap/newgidmap: the rootless runtime's subordinate id ranges (tests/rootless_test.go)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
go version
# Delve, the debugger of docs/debugging.md and make debug-test: 1.27 or
# newer (older ones refuse what Go 1.26 builds), from the module proxy
if ! dlv version 2>/dev/null | grep -qE 'Version: 1\.(2[7-9]|[3-9][0-9])\.'; then
  echo "installing: dlv (github.com/go-delve/delve v1.27.2) into /usr/local/bin"
  GOBIN=/usr/local/bin CGO_ENABLED=0 go install github.com/go-delve/delve/cmd/dlv@v1.27.2
fi
