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
# VM_TIMEOUT in seconds (default 900). Missing Debian packages are
# installed with apt-get when running as root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "vm: $*" >&2; exit 125; }

[ $# -ge 1 ] || die "usage: $0 TEST-BINARY [ARGS...]"
bin=$1
shift
[ -f "$bin" ] && [ -x "$bin" ] || die "$bin: not an executable file"
[ "$(head -c4 "$bin" | tail -c3)" = ELF ] || die "$bin: not an ELF binary"

# Install what is missing, or say exactly what is needed.
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
compgen -G '/boot/vmlinuz-*' >/dev/null || missing+=(linux-image-amd64)
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (apt-get install --no-install-recommends ${missing[*]})"
	echo "vm: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
fi

kernel=${VM_KERNEL:-$(ls -v /boot/vmlinuz-* | tail -n1)}
[ -r "$kernel" ] || die "kernel $kernel is not readable"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver

work=$(mktemp -d /tmp/minidock-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,etc,root,work,modules}
cp /bin/busybox "$root/bin/busybox"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init"
cp "$bin" "$root/test.bin"
# The arguments, single-quoted for the VM's shell.
{
	printf 'set --'
	for a in "$@"; do printf " '%s'" "${a//\'/\'\\\'\'}"; done
	printf '\n'
} > "$root/test.args"

# Kernel modules and, first, what they depend on (modules.dep).
add_module() {
	local name=$1 line path dep
	line=$(grep -E "/${name//[-_]/[-_]}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -n1) ||
		die "module $name not in $moddir/modules.dep (is the kernel's modules package installed?)"
	path=${line%%:*}
	for dep in ${line#*:}; do
		dep=${dep##*/}
		add_module "${dep%%.ko*}"
	done
	grep -qx "/modules/${path##*/}" "$root/modules.list" 2>/dev/null && return
	case $path in
	*.ko) cp "$moddir/$path" "$root/modules/" ;;
	*.ko.xz) xz -dc "$moddir/$path" > "$root/modules/$(basename "$path" .xz)"; path=${path%.xz} ;;
	*.ko.zst) zstd -qdc "$moddir/$path" > "$root/modules/$(basename "$path" .zst)"; path=${path%.zst} ;;
	*.ko.gz) gzip -dc "$moddir/$path" > "$root/modules/$(basename "$path" .gz)"; path=${path%.gz} ;;
	*) die "module $path: unknown compression" ;;
	esac
	echo "/modules/${path##*/}" >> "$root/modules.list"
}
: > "$root/modules.list"
for m in ${VM_MODULES-overlay}; do add_module "$m"; done

(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 > "$work/initrd.gz"

log=$work/console.log
start=$(date +%s)
echo "vm: booting $kernel with $(basename "$bin") $*" >&2
set +e
timeout --foreground "${VM_TIMEOUT:-900}" qemu-system-x86_64 \
	-machine pc -accel tcg -cpu max -smp "${VM_SMP:-2}" -m "${VM_MEM:-1G}" \
	-display none -monitor none -serial stdio -no-reboot \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	-kernel "$kernel" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
	< /dev/null | tee "$log"
status=${PIPESTATUS[0]}
set -e
echo "vm: qemu exited with status $status after $(($(date +%s) - start))s" >&2

rc=$(sed -n 's/.*MINIDOCK-VM-RESULT rc=\([0-9]*\).*/\1/p' "$log" | tail -n1)
case $status in
124) die "timed out after ${VM_TIMEOUT:-900}s" ;;
1 | 3 | 0) ;;
*) die "qemu failed (status $status)" ;;
esac
[ -n "$rc" ] || die "no result line from the VM (did the kernel boot and /init run?)"
# isa-debug-exit: byte 0 -> status 1 (pass), byte 1 -> status 3 (fail).
if [ "$status" = 3 ] && [ "$rc" = 0 ]; then die "result line says pass but the VM reported failure"; fi
[ "$rc" = 0 ] && echo "vm: PASS" >&2 || echo "vm: FAIL (test binary exited $rc)" >&2
exit "$rc"
