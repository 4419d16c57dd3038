#!/bin/busybox sh
# PID 1 of the test VM (see run.sh). It sets up a pure cgroup v2 machine,
# runs /test.bin with the arguments in /test.args, prints a result line and
# tells qemu to exit through the isa-debug-exit device.
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root TMPDIR=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# Pure cgroup v2: one hierarchy at /sys/fs/cgroup, controllers enabled for
# children the way systemd does it on a current distribution.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for c in cpu cpuset io memory pids; do
	echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "vm: cannot enable cgroup controller $c"
done
echo "vm: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

# Kernel modules listed by run.sh, in dependency order.
if [ -s /modules.list ]; then
	while read -r m; do
		insmod "$m" || echo "vm: insmod $m failed"
	done < /modules.list
fi

mkdir -p /root /work
cd /work
. /test.args
/test.bin "$@"
rc=$?

echo "MINIDOCK-VM-RESULT rc=$rc"
sync
# isa-debug-exit at port 0xf4: qemu exits with status (byte << 1) | 1.
code=1
[ "$rc" -eq 0 ] && code=0
printf "\\$(printf %03o $code)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
# Not reached when the device is there; otherwise power off.
poweroff -f
