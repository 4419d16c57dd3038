#!/bin/bash
# make vm-demo: a throwaway VM to try minidock in, on pure cgroup v2.
#
#   tests/vm/demo.sh [BINARY]                  a shell on the VM's console
#   tests/vm/demo.sh --run 'COMMANDS' [BINARY] run COMMANDS (sh -c) instead of
#                                              the shell, print their output,
#                                              power off, exit with their status
#
# BINARY is minidock (default bin/minidock; make vm-demo builds it). The VM
# is Debian's kernel under qemu (KVM when it works, else software emulation)
# booted into an initramfs that holds busybox-static, minidock, nft with its
# libraries, the kernel modules containers need and a busybox image's root
# filesystem. tests/vm/demo-init.sh, its /init, mounts cgroup2, starts
# `minidock daemon`, imports the image as "busybox" and opens a shell on
# the console with a banner of things to try. Leave with `poweroff`, `exit`
# or Ctrl-D (Ctrl-A X kills the VM). Nothing stays on the host: the
# temporary directory and qemu go when this script ends.
#
# Environment: VM_ACCEL (auto, kvm or tcg; default auto: KVM when
# /dev/kvm opens and the kernel prints within VM_KVM_WAIT seconds, default
# 2, else TCG), VM_SMP (default 1: one emulated CPU boots faster), VM_MEM
# (default 1G), VM_KERNEL, VM_TIMEOUT (--run only, default 300 s).
# docs/vm.md explains each step.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

cmd=
if [ "${1:-}" = --run ]; then
	[ $# -ge 2 ] || vm_die "usage: $0 --run 'COMMANDS' [BINARY]"
	cmd=$2
	shift 2
fi
bin=${1:-$repo/bin/minidock}
[ -x "$bin" ] || vm_die "$bin: not built (make build)"
export VM_SMP=${VM_SMP:-1}

vm_setup
# the initramfs: minidock, nft (dynamically linked: its libraries too),
# the init, and a busybox root filesystem as a tar for `minidock import`
cp "$here/demo-init.sh" "$vm_root/init"
chmod 755 "$vm_root/init"
mkdir -p "$vm_root/usr/local/bin"
cp "$bin" "$vm_root/usr/local/bin/minidock"
command -v nft >/dev/null || vm_die "nft not found (apt-get install nftables)"
vm_add_program "$(command -v nft)" /usr/sbin/nft
"$repo/scripts/busybox-rootfs.sh" "$vm_work/busybox" "$vm_root/busybox.tar"
# overlayfs for the image layers; the bridge, veth pairs and the nftables
# table of minidock's default network (bridge/firewall.go's ruleset: nat
# chains, masquerade, dnat, ct status, fib); crc32c_generic first: the
# crc32c libcrc32c asks the crypto API for (a softdep, not in modules.dep);
# xfrm_user: vishvananda/netlink's NewHandleAt opens an XFRM socket too
for m in overlay bridge veth crc32c_generic nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_fib_inet xfrm_user; do
	vm_add_module "$m"
done
[ -n "$cmd" ] && printf '%s\n' "$cmd" >"$vm_root/demo.cmd"
vm_pack
vm_vmlinux

# The console: the shell on the first serial port, on this terminal
# (mon:stdio: Ctrl-A X quits, Ctrl-A H lists the keys); the kernel's own
# messages on the second, into a file, shown if the VM fails.
klog=$vm_work/kernel.log
size=
tty -s && size=$(stty size 2>/dev/null | tr ' ' x) || true
case $size in 0x* | *x0) size= ;; esac
append="console=ttyS1 loglevel=6 panic=-1 rdinit=/init mitigations=off no_timer_check tsc=reliable"
append+=" minidock.term=${TERM:-vt100}${size:+ minidock.size=$size}"
serial=(-serial mon:stdio -serial "file:$klog")
if [ -n "$cmd" ]; then
	serial=(-chardev "stdio,id=console,signal=off,logfile=$vm_work/console.log" -serial chardev:console -serial "file:$klog")
fi

# --run ends the VM after VM_TIMEOUT seconds at most
limit=()
[ -n "$cmd" ] && limit=(timeout "${VM_TIMEOUT:-300}")

exec 3<&0
boot() {
	# shellcheck disable=SC2046 # the arguments are words
	"${limit[@]}" qemu-system-x86_64 $(vm_qemu_args "$1") "${serial[@]}" -append "$append" <&3 &
	vm_qemu_pid=$!
}

start=$(date +%s.%N)
accel=$(vm_accel "${VM_ACCEL:-auto}")
boot "$accel"
if [ "$accel" = kvm ] && [ "${VM_ACCEL:-auto}" = auto ]; then
	# A nested KVM can take the VM and never run it: no kernel line within
	# VM_KVM_WAIT seconds means software emulation instead.
	for _ in $(seq $((${VM_KVM_WAIT:-2} * 10))); do
		[ -s "$klog" ] && break
		kill -0 "$vm_qemu_pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! [ -s "$klog" ]; then
		echo "vm: KVM did not start the kernel within ${VM_KVM_WAIT:-2}s: software emulation (VM_ACCEL=tcg skips the try)" >&2
		kill "$vm_qemu_pid" 2>/dev/null
		wait "$vm_qemu_pid" 2>/dev/null || true
		accel=tcg
		boot tcg
	fi
fi

set +e
wait "$vm_qemu_pid"
status=$?
set -e
vm_qemu_pid=
took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')

if [ -z "$cmd" ] && [ "$status" = 0 ]; then
	exit 0 # powered off from the shell
fi
# --run: the VM printed the commands' status and wrote it to isa-debug-exit
# (qemu exits with (status << 1) | 1); a status without that line is
# qemu's own failure or a VM that did not get that far.
rc=$(sed -n 's/.*MINIDOCK-VM-RESULT rc=\([0-9]*\).*/\1/p' "$vm_work/console.log" 2>/dev/null | tail -n1)
if [ -n "$rc" ] && [ "$status" = $(((rc & 255) << 1 | 1)) ]; then
	echo "vm: $accel, ${took}s, the commands exited $rc" >&2
	exit "$rc"
fi
echo "vm: qemu ended with status $status after ${took}s ($accel); the kernel's log:" >&2
tail -n 30 "$klog" >&2
exit 125
