#!/bin/bash
# demo-time.sh [RUNS]: how long `make vm-demo` takes from its start to the
# shell prompt on the VM's console, as a person sees it. It runs
# tests/vm/demo.sh RUNS times (default 3) on a pseudo-terminal (script(1)),
# reads the console until the prompt "minidock-vm:/# " appears, notes the
# time, types `poweroff` and waits for the VM to end. Prints each time and
# the median. VM_ACCEL=tcg measures software emulation (the default here
# is tcg; auto and kvm as in demo.sh). Needs bin/minidock (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
export VM_ACCEL=${VM_ACCEL:-tcg}
[ -x bin/minidock ] || { echo "demo-time: bin/minidock not built (make build)" >&2; exit 1; }

once() {
	local start buf c took pid out in
	start=$(date +%s.%N)
	coproc VM { exec script -qfec tests/vm/demo.sh /dev/null 2>&1; }
	# bash forgets a coprocess's pid and descriptors once it ends
	pid=$VM_PID
	exec {out}<&"${VM[0]}" {in}>&"${VM[1]}"
	buf=
	while IFS= read -r -d '' -n 1 -t 60 c <&"$out"; do
		buf+=$c
		case $buf in *"minidock-vm:/# ") break ;; esac
	done
	case $buf in *"minidock-vm:/# ") ;; *)
		echo "demo-time: no prompt within 60 s of silence; the console said:" >&2
		printf '%s\n' "$buf" | tail -n 20 >&2
		kill "$pid" 2>/dev/null
		return 1
		;;
	esac
	took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	printf 'poweroff\r' >&"$in"
	# the rest of the console, until the VM is gone
	cat <&"$out" >/dev/null || true
	wait "$pid" || true
	echo "$took"
}

times=()
for i in $(seq "$runs"); do
	t=$(once)
	echo "run $i: prompt after ${t}s ($VM_ACCEL, load $(cut -d' ' -f1 /proc/loadavg))"
	times+=("$t")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "median: %.1fs of %d runs\n", a[int((NR + 1) / 2)], NR }'
