#!/bin/bash
# test-readme.sh: run README.md's "Try the runtime by hand" lines exactly as
# they are written there (the first ```sh block of that section), in a
# shell without a terminal, from the repository, as root; then check what
# they printed and that they left nothing: no container, and
# /usr/local/bin/minidock and /tmp/b as they were before. `make readme-test`
# (part of make test) runs it; hold /tmp/minidock-root.lock by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ "$(id -u)" = 0 ] || { echo "test-readme: the README's lines are for root" >&2; exit 1; }

block=$(awk '/^## Try the runtime by hand/ { s = 1; next }
	s && /^```sh$/ { b = 1; next }
	b && /^```$/ { exit }
	b { print }' README.md)
[ -n "$block" ] || { echo "test-readme: no \`\`\`sh block under '## Try the runtime by hand'" >&2; exit 1; }

work=$(mktemp -d /tmp/minidock-readme.XXXXXX)
# What the lines change outside the repository: keep it and put it back.
[ -e /tmp/b ] && { echo "test-readme: /tmp/b exists; the README's lines make it: move it away first" >&2; exit 1; }
for f in minidock minidockd; do
	[ -e "/usr/local/bin/$f" ] && cp -a "/usr/local/bin/$f" "$work/$f.before"
done
restore() {
	for id in demo demo2; do
		/usr/local/bin/minidock runtime delete --force "$id" >/dev/null 2>&1 || true
	done
	for f in minidock minidockd; do
		rm -f "/usr/local/bin/$f"
		[ -e "$work/$f.before" ] && cp -a "$work/$f.before" "/usr/local/bin/$f"
	done
	rm -rf /tmp/b "$work"
}
trap restore EXIT
fail() {
	echo "test-readme: FAIL: $*" >&2
	echo "--- the lines' output:" >&2
	cat "$work/out" >&2
	exit 1
}

echo "$block" >"$work/lines.sh"
# -e: each line must succeed, as a reader expects; no terminal on stdin
(cd "$repo" && timeout -k 5 300 bash -ex "$work/lines.sh" </dev/null) >"$work/out" 2>&1 ||
	fail "the lines exited $? (the last one run is the last '+' line)"

out=$work/out
grep -q '^  run  *Create and run a new container from an image$' "$out" || fail "minidock help lists no run"
grep -qE '\[init [0-9]+\] .*pivot_root' "$out" || fail "no pivot_root line of the init in --trace's output"
[ "$(grep -c '^minidock$' "$out")" = 2 ] || fail "the two containers did not print their hostname"
[ "$(grep -cE '^ +1 0 +\{ps\} sh -c hostname; ps$' "$out")" = 2 ] || fail "ps in the two containers does not show sh as PID 1"
grep -q '"status": "created"' "$out" || fail "runtime state did not show the created container"
[ "$(readlink -f "$(command -v minidock)")" = /usr/local/bin/minidock ] || fail "minidock on PATH is not /usr/local/bin/minidock"
cmp -s /usr/local/bin/minidock bin/minidock || fail "/usr/local/bin/minidock is not bin/minidock"

# nothing left by the lines themselves (restore only puts files back)
left=$(/usr/local/bin/minidock runtime list -q)
[ -z "$left" ] || fail "containers left: $left"
echo "test-readme: PASS: the README's $(echo "$block" | wc -l) lines, as written"
