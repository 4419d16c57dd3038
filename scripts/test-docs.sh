#!/bin/bash
# test-docs.sh: run the course's exercises as they are written in the docs:
# first docs/README.md's "## Before the exercises" block (make install, a
# busybox bundle in /tmp/course, a daemon with the default paths, the image
# busybox), then the first ```sh block of every "## Try it" section of
# docs/*.md, each in `bash -e` from the repository, without a terminal. A
# page without exercises fails; one whose exercises are prose only is
# named and left out.
# A block right after a line `<!-- docs-test: skip REASON -->` is left out
# (a VM to boot, a second host): the script says which and why.
#
# The lines use the default paths (/usr/local/bin, /var/lib/minidock,
# /run/minidock, /tmp/course): the script runs them in a mount namespace of
# its own where those are directories it made, so that nothing of this
# machine's is touched, and removes them after. The default bridge
# (minidock0) and nftables table (inet minidock) are the host's: it refuses
# to start when they exist, and checks that the daemon took them away.
# VERBOSE=1 prints every block's output. Root; hold /tmp/minidock-root.lock.
# `make docs-test`, part of make test.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ "$(id -u)" = 0 ] || { echo "test-docs: the exercises are for root" >&2; exit 1; }

if [ -z "${_MINIDOCK_DOCS_NS:-}" ]; then
	for p in /tmp/course; do
		[ -e "$p" ] && { echo "test-docs: $p exists; the exercises make it: move it away first" >&2; exit 1; }
	done
	if ip link show minidock0 >/dev/null 2>&1 || nft list table inet minidock >/dev/null 2>&1; then
		echo "test-docs: a default daemon's bridge minidock0 or table inet minidock exists here: stop that daemon first" >&2
		exit 1
	fi
	made=()
	for p in /tmp/course /var/lib/minidock /run/minidock; do
		[ -e "$p" ] || { mkdir -p "$p"; made+=("$p"); }
	done
	rc=0
	_MINIDOCK_DOCS_NS=1 unshare --mount --propagation private "$0" "$@" || rc=$?
	for p in "${made[@]}"; do rmdir "$p"; done
	left=""
	ip link show minidock0 >/dev/null 2>&1 && left="$left bridge minidock0;"
	nft list table inet minidock >/dev/null 2>&1 && left="$left table inet minidock;"
	[ -z "$(ip -o link show type veth 2>/dev/null | grep -E ': veth[0-9a-f]{7}@' || true)" ] || left="$left veths;"
	if [ -n "$left" ]; then
		echo "test-docs: FAIL: left on the host:$left" >&2
		exit 1
	fi
	exit $rc
fi

# In the private mount namespace: the default paths are empty directories
# of our own, /usr/local/bin a copy of the host's.
work=$(mktemp -d /tmp/minidock-docs.XXXXXX)
mkdir -p "$work/course" "$work/lib" "$work/run" "$work/bin"
cp -a /usr/local/bin/. "$work/bin/"
mount --bind "$work/course" /tmp/course
mount --bind "$work/lib" /var/lib/minidock
mount --bind "$work/run" /run/minidock
mount --bind "$work/bin" /usr/local/bin
export PATH=/usr/local/bin:$PATH

daemon_pid() { cat /var/lib/minidock/minidock.lock 2>/dev/null || true; }
cleanup() {
	if [ -x /usr/local/bin/minidock ] && [ -S /run/minidock/minidock.sock ]; then
		ids=$(minidock ps -aq 2>/dev/null || true)
		[ -z "$ids" ] || minidock rm -f $ids >/dev/null 2>&1 || true
	fi
	for id in $(minidock runtime list -q 2>/dev/null || true); do
		minidock runtime delete --force "$id" >/dev/null 2>&1 || true
	done
	pid=$(daemon_pid)
	if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	umount /tmp/course /var/lib/minidock /run/minidock /usr/local/bin 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# block FILE HEADING: the first ```sh block under the heading (a line
# starting with it), or nothing; "SKIP reason" when a skip mark precedes it.
block() {
	awk -v h="$2" '
		index($0, h) == 1 { s = 1; next }
		s && /^## / { exit }
		s && /^<!-- docs-test: skip/ { sub(/^<!-- docs-test: skip */, ""); sub(/ *-->.*/, ""); print "SKIP " $0; exit }
		s && /^```sh$/ { b = 1; next }
		b && /^```$/ { exit }
		b { print }' "$1"
}

failed=0
run() { # run NAME TEXT
	local name=$1 text=$2
	if [[ $text == SKIP* ]]; then
		echo "test-docs: skip $name: ${text#SKIP }"
		return
	fi
	printf '%s\n' "$text" >"$work/block.sh"
	if (cd "$repo" && timeout -k 5 300 bash -e "$work/block.sh" </dev/null) >"$work/out" 2>&1; then
		echo "test-docs: ok   $name ($(printf '%s\n' "$text" | wc -l) lines)"
		[ -z "${VERBOSE:-}" ] || sed 's/^/    /' "$work/out"
	else
		echo "test-docs: FAIL $name: exit $?; its output:" >&2
		sed 's/^/    /' "$work/out" >&2
		failed=$((failed + 1))
	fi
}

setup=$(block docs/README.md "## Before the exercises")
[ -n "$setup" ] || { echo "test-docs: no \`\`\`sh block under docs/README.md's '## Before the exercises'" >&2; exit 1; }
run "docs/README.md: Before the exercises" "$setup"
[ "$failed" = 0 ] || exit 1

pages=0
for f in docs/README.md $(ls docs/*.md | grep -v '^docs/README.md$'); do
	text=$(block "$f" "## Try it")
	if [ -z "$text" ]; then
		# every page ends with exercises; those in prose only are not run
		if grep -qE '^## (Try it|Exercises)' "$f"; then
			echo "test-docs: note $f: its exercises have no \`\`\`sh block under '## Try it': not run"
		else
			echo "test-docs: FAIL $f has no exercises ('## Try it')" >&2
			failed=$((failed + 1))
		fi
		continue
	fi
	pages=$((pages + 1))
	run "$f" "$text"
done

# what the exercises leave: nothing but the image they were given
left=$(minidock ps -aq)
[ -z "$left" ] || { echo "test-docs: FAIL containers left: $left" >&2; failed=$((failed + 1)); }
left=$(minidock runtime list -q)
[ -z "$left" ] || { echo "test-docs: FAIL runtime containers left: $left" >&2; failed=$((failed + 1)); }
left=$(minidock volume ls -q)
[ -z "$left" ] || { echo "test-docs: FAIL volumes left: $left" >&2; failed=$((failed + 1)); }
left=$(minidock network ls | awk 'NR > 1 { print $2 }' | grep -vxE 'bridge|host|none' || true)
[ -z "$left" ] || { echo "test-docs: FAIL networks left: $left" >&2; failed=$((failed + 1)); }
left=$(minidock images --format '{{.Repository}}' | grep -vx busybox || true)
[ -z "$left" ] || { echo "test-docs: FAIL images left: $left" >&2; failed=$((failed + 1)); }

if [ "$failed" != 0 ]; then
	echo "test-docs: FAIL: $failed of the exercises" >&2
	exit 1
fi
echo "test-docs: PASS: the set-up and the exercises of $pages pages, as written"
