#!/bin/bash
# Run one static test binary as root inside a small VM on pure cgroup v2.
#
#   tests/vm/run.sh TEST-BINARY [ARGS...]      e.g. bin/cgroup.test -test.v
#
# The VM is Debian's kernel (package linux-image-amd64) under qemu with
# software emulation (TCG; no KVM needed), booted straight into an initramfs
# that holds the static busybox of busybox-static, tests/vm/init.sh as
# /init, the test binary and the kernel modules named in VM_MODULES. init
# mounts cgroup2 at /sys/fs/cgroup, runs the binary with ARGS and reports
# the exit status through qemu's isa-debug-exit device. This script exits
# with the test binary's status (0 = pass); 125 means the VM itself failed.
#
# Build the binary static: CGO_ENABLED=0 go test -c -o bin/x.test ./pkg
#
# Environment: VM_KERNEL (default: newest /boot/vmlinuz-*), VM_MODULES
# (default "overlay"), VM_MEM (default 1G), VM_SMP (default 2),
# VM_TIMEOUT in seconds (default 900), VM_ACCEL (tcg, kvm or auto; default
# tcg). Missing Debian packages are installed with apt-get when running as
# root. tests/vm/lib.sh has the parts shared with make vm-demo (docs/vm.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -ge 1 ] || vm_die "usage: $0 TEST-BINARY [ARGS...]"
bin=$1
shift
[ -f "$bin" ] && [ -x "$bin" ] || vm_die "$bin: not an executable file"
[ "$(head -c4 "$bin" | tail -c3)" = ELF ] || vm_die "$bin: not an ELF binary"

vm_setup
mkdir -p "$vm_root/work"
cp "$here/init.sh" "$vm_root/init"
chmod 755 "$vm_root/init"
cp "$bin" "$vm_root/test.bin"
# The arguments, single-quoted for the VM's shell.
{
	printf 'set --'
	for a in "$@"; do printf " '%s'" "${a//\'/\'\\\'\'}"; done
	printf '\n'
} >"$vm_root/test.args"
for m in ${VM_MODULES-overlay}; do vm_add_module "$m"; done
vm_pack
vm_vmlinux

log=$vm_work/console.log
start=$(date +%s)
echo "vm: booting $vm_kernel with $(basename "$bin") $*" >&2
set +e
# shellcheck disable=SC2046 # the arguments are words
timeout --foreground "${VM_TIMEOUT:-900}" qemu-system-x86_64 $(vm_qemu_args "$(vm_accel)") \
	-serial stdio \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
	</dev/null | tee "$log"
status=${PIPESTATUS[0]}
set -e
echo "vm: qemu exited with status $status after $(($(date +%s) - start))s" >&2

rc=$(sed -n 's/.*MINIDOCK-VM-RESULT rc=\([0-9]*\).*/\1/p' "$log" | tail -n1)
case $status in
124) vm_die "timed out after ${VM_TIMEOUT:-900}s" ;;
1 | 3 | 0) ;;
*) vm_die "qemu failed (status $status)" ;;
esac
[ -n "$rc" ] || vm_die "no result line from the VM (did the kernel boot and /init run?)"
# isa-debug-exit: byte 0 -> status 1 (pass), byte 1 -> status 3 (fail).
if [ "$status" = 3 ] && [ "$rc" = 0 ]; then vm_die "result line says pass but the VM reported failure"; fi
[ "$rc" = 0 ] && echo "vm: PASS" >&2 || echo "vm: FAIL (test binary exited $rc)" >&2
exit "$rc"
