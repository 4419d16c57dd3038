# The parts of a throwaway VM that tests/vm/run.sh (a test binary on pure
# cgroup v2) and tests/vm/demo.sh (make vm-demo) share: the Debian packages,
# the kernel, an initramfs built in a temporary directory, and qemu.
# Sourced, not run. docs/vm.md explains each step.
#
# After vm_setup: $vm_work (temporary, removed at exit), $vm_root (the
# initramfs tree), $vm_kernel, $vm_kver, $vm_moddir.

vm_die() {
	echo "vm: $*" >&2
	exit 125
}

# vm_setup installs what is missing (as root) or names it, picks the kernel
# and makes the work directory, removed on exit with whatever qemu is left.
vm_setup() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	command -v cpio >/dev/null || missing+=(cpio)
	command -v xz >/dev/null || missing+=(xz-utils)
	dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
	compgen -G '/boot/vmlinuz-*' >/dev/null || missing+=(linux-image-amd64)
	if [ ${#missing[@]} -gt 0 ]; then
		[ "$(id -u)" = 0 ] || vm_die "missing Debian packages: ${missing[*]} (apt-get install --no-install-recommends ${missing[*]})"
		echo "vm: installing ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >&2 || vm_die "apt-get update failed"
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || vm_die "apt-get install ${missing[*]} failed"
	fi

	vm_kernel=${VM_KERNEL:-$(ls -v /boot/vmlinuz-* | tail -n1)}
	[ -r "$vm_kernel" ] || vm_die "kernel $vm_kernel is not readable"
	vm_kver=${vm_kernel##*/vmlinuz-}
	vm_moddir=/lib/modules/$vm_kver

	vm_work=$(mktemp -d /tmp/minidock-vm.XXXXXX)
	vm_qemu_pid=
	trap vm_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	vm_root=$vm_work/root
	mkdir -p "$vm_root"/{bin,dev,proc,sys,tmp,run,etc,root,modules}
	cp /bin/busybox "$vm_root/bin/busybox"
	: >"$vm_root/modules.list"
}

vm_cleanup() {
	if [ -n "$vm_qemu_pid" ]; then
		kill "$vm_qemu_pid" 2>/dev/null
		wait "$vm_qemu_pid" 2>/dev/null
	fi
	rm -rf "$vm_work"
}

# vm_add_module NAME copies a kernel module and, first, what it depends on
# (modules.dep), decompressed, and lists it in /modules.list in load order.
vm_add_module() {
	local name=$1 line path dep
	line=$(grep -E "/${name//[-_]/[-_]}\.ko(\.[a-z]+)?:" "$vm_moddir/modules.dep" | head -n1) ||
		vm_die "module $name not in $vm_moddir/modules.dep (is the kernel's modules package installed?)"
	path=${line%%:*}
	for dep in ${line#*:}; do
		dep=${dep##*/}
		vm_add_module "${dep%%.ko*}"
	done
	grep -qx "/modules/$(basename "${path%.ko*}").ko" "$vm_root/modules.list" && return
	case $path in
	*.ko) cp "$vm_moddir/$path" "$vm_root/modules/" ;;
	*.ko.xz) xz -dc "$vm_moddir/$path" >"$vm_root/modules/$(basename "$path" .xz)" ;;
	*.ko.zst) zstd -qdc "$vm_moddir/$path" >"$vm_root/modules/$(basename "$path" .zst)" ;;
	*.ko.gz) gzip -dc "$vm_moddir/$path" >"$vm_root/modules/$(basename "$path" .gz)" ;;
	*) vm_die "module $path: unknown compression" ;;
	esac
	echo "/modules/$(basename "${path%.ko*}").ko" >>"$vm_root/modules.list"
}

# vm_add_program PATH [DEST] copies a dynamically linked program and the
# shared libraries ldd names, at the same paths, into the initramfs.
vm_add_program() {
	local prog=$1 dest=${2:-$1} lib
	[ -x "$prog" ] || vm_die "$prog: not an executable"
	mkdir -p "$vm_root$(dirname "$dest")"
	cp "$prog" "$vm_root$dest"
	for lib in $(ldd "$prog" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$vm_root$lib" ] && continue
		mkdir -p "$vm_root$(dirname "$lib")"
		cp -L "$lib" "$vm_root$lib"
	done
}

# vm_pack writes the initramfs: a newc cpio of $vm_root, every file owned
# by root. Not compressed: under emulation the kernel unpacks it quicker
# than it would gunzip it.
vm_pack() {
	(cd "$vm_root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$vm_work/initrd.cpio"
}

# vm_vmlinux sets $vm_boot_kernel: the kernel qemu loads. Debian ships a
# bzImage whose compressed payload a VM would first unpack in emulated
# code (about 5 s under TCG); the payload is the plain vmlinux ELF, which
# carries a PVH entry note, so qemu can jump straight into it. The
# payload's place is in the boot header (Documentation/arch/x86/boot.rst):
# setup_sects at 0x1f1, payload_offset at 0x248, payload_length at 0x24c.
# Without xz/zstd/gzip for the payload's format, the bzImage is booted.
vm_vmlinux() {
	vm_boot_kernel=$vm_kernel
	[ "${VM_PVH:-1}" = 1 ] || return 0
	local setup off len magic unpack out=$vm_work/vmlinux
	u32() { od -An -tu4 -j "$1" -N4 "$vm_kernel" | tr -d ' '; }
	setup=$(od -An -tu1 -j $((0x1f1)) -N1 "$vm_kernel" | tr -d ' ')
	[ "$setup" = 0 ] && setup=4
	off=$(($(u32 $((0x248))) + (setup + 1) * 512))
	len=$(u32 $((0x24c)))
	magic=$(od -An -tx1 -j "$off" -N4 "$vm_kernel" | tr -d ' ')
	case $magic in
	fd377a58) unpack="xz -dc" ;;
	28b52ffd) unpack="zstd -qdc" ;;
	1f8b08*) unpack="gzip -dc" ;;
	*) return 0 ;;
	esac
	command -v "${unpack%% *}" >/dev/null || return 0
	# xz and zstd stop at the end of their stream; the size at the end
	# of the payload is not part of it: the check is the ELF magic, not
	# the status.
	tail -c +$((off + 1)) "$vm_kernel" | head -c "$len" | $unpack >"$out" 2>/dev/null || true
	[ "$(head -c4 "$out" | tail -c3)" = ELF ] && vm_boot_kernel=$out
	return 0
}

# vm_accel prints qemu's accelerator: VM_ACCEL (tcg or kvm), or for
# "auto" kvm when /dev/kvm can be opened, else tcg.
vm_accel() {
	case ${1:-${VM_ACCEL:-tcg}} in
	tcg) echo tcg ;;
	kvm) echo kvm ;;
	auto) if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then echo kvm; else echo tcg; fi ;;
	*) vm_die "VM_ACCEL=$VM_ACCEL: want tcg, kvm or auto" ;;
	esac
}

# vm_qemu_args ACCEL prints qemu's arguments common to every boot: the
# machine, the isa-debug-exit port the VM reports its result through (0xf4:
# qemu exits with (byte << 1) | 1), the kernel and the initramfs. No disk, no
# network card: the VM reaches nothing of the host.
vm_qemu_args() {
	# TCG emulates every feature of max; qemu64 (x86-64 baseline, all Go
	# needs) is quicker to emulate. Nested KVM refuses some of max's MSRs
	# (arch-capabilities).
	local cpu=${VM_CPU:-qemu64}
	[ "$1" = kvm ] && cpu=${VM_CPU:-max,-arch-capabilities}
	echo -machine pc -accel "$1" -cpu "$cpu" -smp "${VM_SMP:-2}" -m "${VM_MEM:-1G}" \
		-display none -monitor none -nic none -no-reboot \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel "$vm_boot_kernel" -initrd "$vm_work/initrd.cpio"
}
