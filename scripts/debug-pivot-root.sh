#!/bin/bash
# debug-pivot-root.sh [BINARY]: stop a container's init in Delve at its
# pivot_root step, read a variable there and the init's mount table
# before, across and after it, then let the container run on. The
# walk-through of docs/debugging.md, without a person; `make debug-test`
# (part of make test) runs it. Root; hold /tmp/minidock-root.lock.
#
# BINARY is minidock built for debugging (make debug: bin/minidock-debug,
# -gcflags=all=-N -l, not stripped). The init is `/proc/self/exe init`,
# started by `minidock runtime run` in new namespaces. It waits for a
# debugger, the runtime says `dlv attach PID`, and this script attaches
# from there, as a person does; what makes the init wait is DEBUG_VIA:
#
#   hook  (default) scripts/wait-for-debugger.sh as the bundle's OCI
#         createRuntime hook: the runtime runs it while the init waits,
#         its mounts done and pivot_root next; the hook prints the line and
#         returns once the init is traced.
#   env   MINIDOCK_DEBUG_INIT=1: the init waits before its first step
#         (waitForDebugger) and the runtime prints the line (docs/step.md).
#
# Delve runs scripts/debug-pivot-root.star, which breaks on
# rootfs.PivotRoot and unix.PivotRoot and writes what it saw. The script
# checks it: the variable rootfs is the bundle's rootfs, pivot_root(".",
# ".") stacks the old root on "/", and after the detach one root is left;
# the container then prints its line and exits 0; nothing stays behind
# (DEBUG_KEEP=1 keeps the work directory, with Delve's output, to read).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-$here/../bin/minidock-debug}")
[ -x "$bin" ] || { echo "$bin: not built (make debug)" >&2; exit 1; }
command -v dlv >/dev/null || { echo "no dlv: go install github.com/go-delve/delve/cmd/dlv@v1.27.2" >&2; exit 1; }
command -v jq >/dev/null || { echo "no jq: apt-get install jq" >&2; exit 1; }
via=${DEBUG_VIA:-hook}
case $via in hook | env) ;; *) echo "DEBUG_VIA=$via: want hook or env" >&2; exit 1 ;; esac
id=debug-$$
work=$(mktemp -d /tmp/minidock-debug.XXXXXX)
runpid=
dlvpid=
# cleanup stops what this script started (Delve first: it frees the init)
# and removes what it made; it runs at the end and on any failure.
cleanup() {
	if [ -n "$dlvpid" ]; then kill "$dlvpid" 2>/dev/null || true; fi
	if [ -n "$runpid" ]; then kill -9 "$runpid" 2>/dev/null || true; fi
	"$bin" runtime delete --force "$id" 2>/dev/null || true
	if [ -n "${DEBUG_KEEP:-}" ]; then
		echo "debug-pivot-root: kept $work (Delve's output in dlv.out, the mount tables in mountinfo.*)" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
fail() {
	echo "debug-pivot-root: FAIL: $*" >&2
	for f in run.out dlv.out; do
		if [ -s "$work/$f" ]; then { echo "--- $f:"; cat "$work/$f"; } >&2; fi
	done
	exit 1
}

# A busybox bundle whose process prints a line, and no terminal.
bundle=$work/bundle
"$here/busybox-rootfs.sh" "$bundle/rootfs"
(cd "$bundle" && "$bin" runtime spec)
filter='.process.terminal = false | .process.args = ["sh", "-c", "echo the container ran on after the debugger"]'
env=()
case $via in
hook) filter+=' | .hooks.createRuntime = [{path: $hook}]' ;;
env) env=(MINIDOCK_DEBUG_INIT=1) ;;
esac
jq --arg hook "$here/wait-for-debugger.sh" "$filter" "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

# The runtime in the background until its init waits and it says so.
(cd "$bundle" && exec env "${env[@]}" timeout -k 5 120 "$bin" runtime run "$id") >"$work/run.out" 2>&1 &
runpid=$!
pid=
for _ in $(seq 100); do
	pid=$(sed -n 's/.*dlv attach \([0-9][0-9]*\).*/\1/p' "$work/run.out" | head -n1)
	[ -n "$pid" ] && break
	kill -0 "$runpid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$pid" ] || fail "the runtime printed no 'dlv attach PID' in 10 s (DEBUG_VIA=$via; env needs the runtime's MINIDOCK_DEBUG_INIT, docs/debugging.md)"

# Delve attaches, runs the Starlark script (its files land in $work) and
# detaches: `exit -d` leaves the init running on to execve.
printf 'source %s\nexit -d\n' "$here/debug-pivot-root.star" >"$work/init.dlv"
# (GO_TELEMETRY_CHILD=2: no crash-watching child of Delve's to outlive it)
(cd "$work" && GO_TELEMETRY_CHILD=2 exec timeout -k 5 120 dlv attach "$pid" --init "$work/init.dlv" --allow-non-terminal-interactive) \
	</dev/null >"$work/dlv.out" 2>&1 &
dlvpid=$!
# Delve resumes the init and then detaches its threads: an init that has
# run on to its execve and exited meanwhile makes the detach fail ("could
# not detach process PID: no such process") and Delve exit 1, which is
# not a failure here (run.out is checked below for the container's line).
rc=0
wait "$dlvpid" || rc=$?
if [ "$rc" != 0 ] && ! grep -q "could not detach process $pid: no such process" "$work/dlv.out"; then
	fail "dlv attach $pid exited $rc"
fi
dlvpid=
wait "$runpid" || fail "runtime run exited $?"
runpid=

# What Delve saw.
for f in rootfs newroot mountinfo.before mountinfo.pivoted mountinfo.after; do
	[ -s "$work/$f" ] || fail "Delve wrote no $f (did it stop at rootfs.PivotRoot? is $bin built by make debug?)"
done
roots() { awk '$5 == "/"' "$work/$1" | wc -l; }
[ "$(cat "$work/rootfs")" = "$bundle/rootfs" ] || fail "rootfs is '$(cat "$work/rootfs")', want $bundle/rootfs"
[ "$(cat "$work/newroot")" = . ] || fail "pivot_root's new_root is '$(cat "$work/newroot")', want ."
awk -v r="$bundle/rootfs" '$5 == r' "$work/mountinfo.before" | grep -q . || fail "before: $bundle/rootfs is not a mount point"
[ "$(roots mountinfo.pivoted)" -ge 2 ] || fail "after pivot_root: $(roots mountinfo.pivoted) mount(s) on /, want the new root and the old one on it"
[ "$(roots mountinfo.after)" = 1 ] || fail "after the detach: $(roots mountinfo.after) mounts on /, want 1"
grep -q "^the container ran on after the debugger$" "$work/run.out" || fail "the container did not run on after the detach"
summary="rootfs.PivotRoot(rootfs=$(cat "$work/rootfs")); mounts on /: $(roots mountinfo.before) before,"
summary+=" $(roots mountinfo.pivoted) after pivot_root, $(roots mountinfo.after) after the detach;"
summary+=" the mount table $(wc -l <"$work/mountinfo.before") -> $(wc -l <"$work/mountinfo.after") lines"

# Nothing left: no Delve attached to anything of ours, no container state,
# no work directory.
cleanup
trap - EXIT
if pgrep -f "dlv attach $pid( |$)" >/dev/null; then fail "dlv attach $pid still running"; fi
if "$bin" runtime state "$id" >/dev/null 2>&1; then fail "container $id still known to the runtime"; fi
if [ -z "${DEBUG_KEEP:-}" ] && [ -e "$work" ]; then fail "$work still there"; fi
echo "debug-pivot-root: PASS ($via): Delve stopped at $summary"
