#!/usr/bin/env bash
# `make demo`: a busybox bundle run by `minidock runtime run` (the hostname,
# `ps` with sh as PID 1, the mounts seen inside), then a daemon, the same
# rootfs imported as an image, a container run through the Engine API, and
# a network with a web server found by name and published on 127.0.0.1.
# Each stage starts with a heading saying what the output below it shows.
# Run as root after `make build`; TRACE=1 prints the runtime's kernel calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin/minidock
b=${DEMO_BUNDLE:-/tmp/minidock-demo}
n=0
# stage TEXT: the heading of the next stage (bold on a terminal)
stage() {
	n=$((n + 1))
	if [ -t 1 ]; then printf '\n\033[1m== %d. %s\033[0m\n' "$n" "$*"; else printf '\n== %d. %s\n' "$n" "$*"; fi
}

stage "The bundle: a root filesystem (static busybox, a link per command) and config.json, in $b"
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
echo "$(ls rootfs/bin | wc -l) files in rootfs/bin; config.json runs: $(jq -c .process.args config.json)"

stage "The runtime alone: minidock runtime run (create, start, wait, delete). Inside: its hostname, ps (sh is PID 1), its mounts${TRACE:+; first every kernel call of the set-up}"
"$bin" runtime ${TRACE:+--trace} run "demo-$$"

# The engine: a daemon on a private data root and socket, a busybox image
# imported from the same rootfs, and a container run through the Engine API
# by minidock's client (docker -H unix://... works the same).
d=$(mktemp -d /tmp/minidock-demo-engine.XXXXXX)
host=unix://$d/minidock.sock
run=/run/minidock-demo-$$   # short: shim sockets are named by the 64-hex container id
# its own bridge and nftables table, so that it never meets a daemon already running here
"$bin" daemon --data-root "$d/data" --exec-root "$run" -H "$host" \
  --bridge mddemo0 --nft-table minidock_demo > "$d/daemon.log" 2>&1 &
dpid=$!
cleanup() { kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; rm -rf "$d" "$run"; }
trap cleanup EXIT
stage "The daemon: minidock daemon on $host (pid $dpid), data root $d/data, its own bridge mddemo0"
for _ in $(seq 50); do [ -S "$d/minidock.sock" ] && break; sleep 0.1; done
"$bin" -H "$host" version

stage "The image: the same rootfs imported as the image busybox (minidock import), then minidock images"
tar -C "$b/rootfs" -c . | "$bin" -H "$host" import - busybox
"$bin" -H "$host" images

stage "The engine run: minidock run --rm busybox, client -> daemon -> shim -> runtime -> init; its hostname, pid, links, address${TRACE:+; then the timeline of all five (docs/trace.md)}"
"$bin" -H "$host" run --rm ${TRACE:+--trace} busybox sh -c 'echo "hello from $(hostname): pid $$, links: $(ls /sys/class/net | tr "\n" " ")"; ip -4 -o addr show eth0'

# Networking: a user-defined network, a web server on it, found by name by
# another container (the embedded DNS server), and published on 127.0.0.1.
stage "The network: demo-net, a web server on it found by name by another container, its port published on 127.0.0.1"
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

stage "Clean up: the daemon stopped (it removes its bridge and nftables table), its data root removed"
cleanup
trap - EXIT
ip link show mddemo0 >/dev/null 2>&1 && echo "bridge mddemo0 still there" || echo "no bridge mddemo0, no $d, no $run: nothing left"
