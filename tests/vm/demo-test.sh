#!/bin/bash
# The demo VM's test (make vm-demo-test, part of make test): boot it as
# make vm-demo does, run the banner's commands instead of the shell
# (tests/vm/demo.sh --run), check what they printed, and check that
# nothing of the VM is left on the host. Needs bin/minidock (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-bin/minidock}
out=$(mktemp /tmp/minidock-vm-demo-test.XXXXXX)
trap 'rm -f "$out"' EXIT
before=$(ls -d /tmp/minidock-vm.* 2>/dev/null || true)

fail() {
	echo "vm-demo-test: FAIL: $*" >&2
	echo "--- the VM's console:" >&2
	cat "$out" >&2
	exit 1
}

# What the banner offers (tests/vm/demo-init.sh), as a person types it,
# without the interactive `run -it`; markers to find each answer.
start=$(date +%s.%N)
set +e
tests/vm/demo.sh --run '
echo "== images"; minidock images
echo "== run"; minidock run --rm busybox echo hello from a container
echo "== web"
minidock run -d --name web -p 8080:80 busybox httpd -f -p 80 -h /etc >/dev/null
for i in $(seq 50); do wget -qO- 127.0.0.1:8080/passwd && break; sleep 0.2; done
echo "== cgroup"; cat /sys/fs/cgroup/minidock/*/cgroup.procs | wc -l
minidock rm -f web >/dev/null
echo "== check"; minidock check --format "{{.Name}}: {{.Status}}: {{.Found}}"
echo "== left"; minidock ps -aq | wc -l; ls /sys/fs/cgroup/minidock 2>/dev/null | grep -c "^[0-9a-f]\{64\}$" || true
echo "== end"
' "$bin" >"$out" 2>&1
rc=$?
set -e
took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
[ "$rc" = 0 ] || fail "the commands in the VM exited $rc"

section() { sed -n "/^== $1\r\?$/,/^== /p" "$out" | tr -d '\r' | sed '1d;$d'; }
section images | grep -q '^busybox  *latest ' || fail "no busybox image"
[ "$(section run)" = "hello from a container" ] || fail "run printed '$(section run)'"
section web | grep -q '^root:x:0:0:root:/root:/bin/sh$' || fail "the published port did not serve /etc/passwd"
[ "$(section cgroup)" -ge 1 ] || fail "no process in /sys/fs/cgroup/minidock/*/cgroup.procs"
section check | grep -q '^cgroups: ok: v2, controllers ' || fail "check does not see pure cgroup v2"
section check | grep -q '^root: ok: uid 0$' || fail "check is not root in the VM"
[ "$(section left | tr '\n' ' ')" = "0 0 " ] || fail "containers or cgroups left in the VM: $(section left)"

# nothing on the host: no work directory, no qemu of ours
after=$(ls -d /tmp/minidock-vm.* 2>/dev/null || true)
[ "$before" = "$after" ] || fail "left on the host: $(comm -13 <(echo "$before") <(echo "$after"))"
if pgrep -f "qemu-system-x86_64 .*minidock-vm\." | grep -q .; then
	for p in $(pgrep -f "qemu-system-x86_64 .*minidock-vm\."); do
		[ -d "/tmp/$(grep -ao 'minidock-vm\.[A-Za-z0-9]*' "/proc/$p/cmdline" | head -n1)" ] ||
			fail "qemu $p still running with a removed work directory"
	done
fi
echo "vm-demo-test: PASS (${took}s: boot, daemon, image, the banner's commands, power-off)"
