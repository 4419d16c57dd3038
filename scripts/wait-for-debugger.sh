#!/bin/sh
# wait-for-debugger.sh: an OCI createRuntime hook that holds a container's
# init before pivot_root until a debugger has attached to it
# (docs/debugging.md). The runtime runs createRuntime hooks while the init
# waits for them: its namespaces made, its mounts done, pivot_root next.
# The hook reads the init's pid from the state on its stdin, says
#
#   minidock: init 12345 waits before pivot_root: dlv attach 12345
#
# on the runtime's stderr (the hook's own output is the runtime's to keep),
# and returns once /proc/PID/status shows a tracer (TracerPid). The init
# then goes on under the debugger, stopped until you `continue`.
#
# In config.json:
#   "hooks": {"createRuntime": [{"path": "/path/to/scripts/wait-for-debugger.sh"}]}
set -eu
pid=$(sed -n 's/.*"pid":\([0-9][0-9]*\).*/\1/p')
[ -n "$pid" ] || { echo "wait-for-debugger: no pid in the state on stdin" >&2; exit 1; }
echo "minidock: init $pid waits before pivot_root: dlv attach $pid" >>"/proc/$PPID/fd/2"
while :; do
	tracer=$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$pid/status") || exit 1
	[ "$tracer" != 0 ] && exit 0
	sleep 0.1
done
