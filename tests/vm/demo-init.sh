#!/bin/busybox sh
# PID 1 of the demo VM (tests/vm/demo.sh, make vm-demo; docs/vm.md).
#
# Stage 1 runs from the initramfs. pivot_root(2) refuses to move a process
# away from the initramfs (the "rootfs" mount has no parent), and a
# container's init calls it from a copy of this mount table. So stage 1
# bind-mounts the initramfs onto itself, moves that mount over "/" and
# chroots into it, as switch_root does (without copying or deleting
# anything): the root is then a mount with a parent. Stage 2 is the
# machine: pure cgroup v2, minidock's daemon, the busybox image, and a shell
# on the first serial port (the kernel's messages go to the second).
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root

if [ "$1" != stage2 ]; then
	/bin/busybox mkdir -p /newroot
	/bin/busybox mount --rbind / /newroot
	cd /newroot
	/bin/busybox mount --move . /
	exec /bin/busybox chroot . /init stage2
fi

# result N: print the status line demo.sh looks for and end the VM with
# N through qemu's isa-debug-exit port (0xf4; qemu exits (N << 1) | 1).
result() {
	echo "MINIDOCK-VM-RESULT rc=$1"
	sync
	printf "\\$(printf %03o $(($1 & 255)))" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	poweroff -f
}

fail() {
	echo "minidock-vm: $*"
	result 125
}

# setup makes the machine: cgroup v2, the modules, the daemon, the image.
setup() {
	# the terminal's type and size, passed on the kernel command line, so
	# that the shell and `run -it` fit the window
	for w in $(cat /proc/cmdline); do
		case $w in
		minidock.term=*) export TERM=${w#*=} ;;
		minidock.size=*) size=${w#*=} && stty rows "${size%x*}" cols "${size#*x}" ;;
		esac
	done

	# Pure cgroup v2: one hierarchy, the controllers enabled for children
	# the way systemd does it on a current distribution.
	mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2 failed"
	for c in cpu cpuset io memory pids; do
		echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "minidock-vm: cannot enable cgroup controller $c"
	done

	while read -r m; do
		insmod "$m" || echo "minidock-vm: insmod $m failed"
	done </modules.list

	hostname minidock-vm
	ip link set lo up
	mkdir -p /var/log /var/lib
	echo "127.0.0.1 localhost minidock-vm" >/etc/hosts
	# no network card: the embedded DNS server has nothing to forward to
	: >/etc/resolv.conf
	printf '%s\n' 'export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "PS1='minidock-vm:\\w# '" >/etc/profile

	minidock daemon >/var/log/minidock-daemon.log 2>&1 &
	for _ in $(seq 100); do
		[ -S /run/minidock/minidock.sock ] && break
		sleep 0.1
	done
	[ -S /run/minidock/minidock.sock ] || fail "the daemon did not start: $(tail -n 5 /var/log/minidock-daemon.log)"
	minidock import /busybox.tar busybox >/dev/null || fail "minidock import busybox failed"
	rm -f /busybox.tar
}

banner() {
	cat <<EOF

  minidock demo VM: Debian's kernel $(uname -r), cgroup v2 ($(cat /sys/fs/cgroup/cgroup.subtree_control)),
  minidock's daemon running (log: /var/log/minidock-daemon.log), the image busybox loaded.
  Up in $(cut -d' ' -f1 /proc/uptime)s. Things to try:

    minidock run --rm busybox echo hello            # a container through the daemon
    minidock run -it --rm busybox sh                # a shell inside; exit to leave
    minidock run -d --name web -p 8080:80 busybox httpd -f -p 80 -h /etc
    wget -qO- 127.0.0.1:8080/passwd                 # the published port
    cat /sys/fs/cgroup/minidock/*/cgroup.procs      # its cgroup
    minidock check                                  # what this machine offers

  poweroff or Ctrl-D to leave (Ctrl-A X kills the VM). Nothing is kept.

EOF
}

# machine is what the console shows: the set-up, then the --run commands
# (/demo.cmd) and their status, or the banner and a shell in its own
# session with the serial port as its controlling terminal (job control,
# Ctrl-C). It runs as a child of PID 1: a session leader (PID 1) that
# opens a terminal takes it as its controlling terminal, and then the shell
# could not; PID 1 never opens ttyS0.
machine() {
	setup
	if [ -f /demo.cmd ]; then
		sh -e /demo.cmd
		result $?
	fi
	banner
	exec setsid -c sh -l
}

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

# PID 1 waits for the machine to end, or for `poweroff`, `reboot` or
# `halt` (busybox's signal PID 1: USR2, TERM, USR1), then powers off.
trap 'poweroff -f' USR1 USR2 TERM
machine </dev/ttyS0 >/dev/ttyS0 2>&1 &
wait
poweroff -f
