#!/usr/bin/env bash
# The main job so far: make a busybox bundle and run it with
# `minidock runtime run`, showing the hostname, `ps` (PID 1) and the mounts
# seen inside. Run as root after `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin/minidock
b=${DEMO_BUNDLE:-/tmp/minidock-demo}
rm -rf "$b"
mkdir -p "$b/rootfs/bin"
cp /bin/busybox "$b/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
  [ "$a" = busybox ] || ln -s busybox "$b/rootfs/bin/$a"
done
mkdir -p "$b/rootfs/"{proc,sys,dev,etc,tmp}
echo 'root:x:0:0:root:/root:/bin/sh' > "$b/rootfs/etc/passwd"
cd "$b"
"$bin" runtime spec
# not a terminal, and a command instead of an interactive shell
sed -i -e 's/"terminal": true/"terminal": false/' \
       -e 's/"sh"$/"sh", "-c", "echo \\"hostname: $(hostname)\\"; ps; echo; mount"/' config.json
"$bin" runtime ${TRACE:+--trace} run "demo-$$"
