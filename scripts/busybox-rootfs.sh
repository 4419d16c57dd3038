#!/bin/sh
# busybox-rootfs.sh DIR: make DIR a container root filesystem out of
# Debian's static busybox (package busybox-static): /bin/busybox, one
# symlink per applet (relative, so that they resolve inside the container),
# the directories a runtime mounts on, and an /etc/passwd with root.
# With a second argument, also write the tree as a tar archive for
# `minidock import FILE NAME` (owned by root whoever runs it).
#
#   scripts/busybox-rootfs.sh /tmp/b/rootfs
#   scripts/busybox-rootfs.sh /tmp/bb /tmp/bb.tar && minidock import /tmp/bb.tar busybox
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [TAR]" >&2; exit 2; }
dir=$1
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "$0: $bb not found: apt-get install busybox-static" >&2; exit 1; }
if od -An -c -N 1024 "$bb" 2>/dev/null | tr -d ' \n' | grep -q 'ld-linux'; then
	echo "$0: $bb is dynamically linked (package busybox?): a root filesystem of it alone cannot run it; apt-get install busybox-static" >&2
	exit 1
fi
mkdir -p "$dir/bin" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/etc" "$dir/tmp" "$dir/root"
cp "$bb" "$dir/bin/busybox"
for a in $("$bb" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
echo 'root:x:0:' >"$dir/etc/group"
if [ $# -ge 2 ]; then
	tar --owner=0 --group=0 --numeric-owner -C "$dir" -cf "$2" .
fi
