#!/usr/bin/env bash
# The main job so far: make a busybox bundle and run it with
# `minidock runtime run`, showing the hostname, `ps` (PID 1) and the mounts
# seen inside. Run as root after `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin/minidock
b=${DEMO_BUNDLE:-/tmp/minidock-demo}
echo "== the bundle: a busybox root filesystem and config.json (minidock runtime spec) in $b"
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
echo
echo "== the runtime: minidock runtime run${TRACE:+ --trace} (create, start, wait): the container's hostname, ps and mounts"
"$bin" runtime ${TRACE:+--trace} run "demo-$$"

# The engine: a daemon on a private data root and socket, a busybox image
# imported from the same rootfs, and a container run through the Engine API
# by minidock's client (docker -H unix://... works the same).
echo
echo "== the daemon: minidock daemon on a private data root, exec root and socket"
d=$(mktemp -d /tmp/minidock-demo-engine.XXXXXX)
host=unix://$d/minidock.sock
run=/run/minidock-demo-$$   # short: shim sockets are named by the 64-hex container id
# its own bridge and nftables table, so that it never meets a daemon already running here
"$bin" daemon --data-root "$d/data" --exec-root "$run" -H "$host" \
  --bridge mddemo0 --nft-table minidock_demo > "$d/daemon.log" 2>&1 &
dpid=$!
cleanup() { kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; rm -rf "$d" "$run"; }
trap cleanup EXIT
for _ in $(seq 50); do [ -S "$d/minidock.sock" ] && break; sleep 0.1; done
echo
echo "== the image: the same root filesystem imported as busybox"
tar -C "$b/rootfs" -c . | "$bin" -H "$host" import - busybox
"$bin" -H "$host" images
echo
echo "== the engine: minidock run --rm${TRACE:+ --trace} busybox, through the Engine API (client, daemon, shim, runtime, init)"
"$bin" -H "$host" run --rm ${TRACE:+--trace} busybox sh -c 'echo "hello from $(hostname): pid $$, links: $(ls /sys/class/net | tr "\n" " ")"; ip -4 -o addr show eth0'

# Networking: a user-defined network, a web server on it, found by name by
# another container (the embedded DNS server), and published on 127.0.0.1.
echo
echo "== the network: a user-defined bridge, a web server found by name, a port published on 127.0.0.1"
"$bin" -H "$host" network create demo-net >/dev/null
"$bin" -H "$host" run -d --name web --network demo-net -p 127.0.0.1::8000 busybox \
  sh -c 'mkdir /www && echo "hello from web" > /www/index.html && exec httpd -f -p 8000 -h /www' >/dev/null
"$bin" -H "$host" network ls
"$bin" -H "$host" ps
"$bin" -H "$host" run --rm --network demo-net busybox sh -c 'sleep 0.2; echo "by name: $(wget -qO- http://web:8000/)"'
port=$("$bin" -H "$host" port web 8000)
echo "published on $port: $(busybox wget -qO- "http://$port/")"
"$bin" -H "$host" rm -f web >/dev/null
"$bin" -H "$host" network rm demo-net >/dev/null
