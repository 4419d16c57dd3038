#!/usr/bin/env bash
# tests/oci/compare.sh — run the OCI validation programs against runc and
# against `bin/minidock runtime` (through tests/oci/minidock-runtime), print
# both counts and the programs where they differ, and exit non-zero when
# minidock passes fewer programs than runc.
#
# runc's count comes from a live run when runc is installed; otherwise (or
# with OCI_USE_BASELINE=1) from tests/oci/runc-baseline.txt.
# Other OCI_* variables are passed on to run.sh (OCI_TIMEOUT, OCI_ONLY, ...;
# with OCI_ONLY the baseline is narrowed to those programs).
# Exit: 0 minidock >= runc, 1 minidock < runc (or bin/minidock missing),
# 2 harness error.
set -uo pipefail
HERE=$(dirname "$(readlink -f "$0")")
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${OCI_CACHE:-$REPO/.cache/oci}
RESULTS=${OCI_RESULTS:-$CACHE/results}
export OCI_CACHE=$CACHE OCI_RESULTS=$RESULTS
BASELINE=$HERE/runc-baseline.txt
MINIDOCK_BIN=${MINIDOCK_BIN:-$REPO/bin/minidock}

passlist() { # RESULT-TXT -> names of passing programs
	awk '$2 == "pass" { print $1 }' "$1" | sort
}
only() { # filter names by OCI_ONLY when set
	if [ -n "${OCI_ONLY:-}" ]; then grep -Fxf <(tr ' ' '\n' <<<"$OCI_ONLY") || true; else cat; fi
}

# ---- runc
if [ "${OCI_USE_BASELINE:-}" != 1 ] && command -v runc >/dev/null; then
	OCI_LABEL=runc "$HERE/run.sh" runc || exit 2
	RUNC_PASS=$(passlist "$RESULTS/runc.txt")
	RUNC_SRC="live run of $(runc --version | head -n1)"
else
	[ -f "$BASELINE" ] || { echo "compare: runc not installed and no $BASELINE" >&2; exit 2; }
	RUNC_PASS=$(awk '$2 == "pass" { print $1 }' "$BASELINE" | only | sort)
	RUNC_SRC="recorded baseline $BASELINE"
fi
RUNC_N=$(grep -c . <<<"$RUNC_PASS")

# ---- minidock
if [ ! -x "$MINIDOCK_BIN" ]; then
	echo "compare: $MINIDOCK_BIN not found: run 'make build' first" >&2
	echo "oci-validation compare: runc $RUNC_N passed ($RUNC_SRC); minidock: no binary"
	exit 1
fi
if ! "$MINIDOCK_BIN" runtime --help >/dev/null 2>&1 && ! "$MINIDOCK_BIN" runtime --version >/dev/null 2>&1; then
	echo "compare: warning: '$MINIDOCK_BIN runtime --help' fails; running the suite anyway" >&2
fi
MINIDOCK_BIN=$MINIDOCK_BIN OCI_LABEL=minidock "$HERE/run.sh" "$HERE/minidock-runtime" || exit 2
MD_PASS=$(passlist "$RESULTS/minidock.txt")
MD_N=$(grep -c . <<<"$MD_PASS")

only_runc=$(comm -23 <(echo "$RUNC_PASS") <(echo "$MD_PASS") | grep . | tr '\n' ' ')
only_md=$(comm -13 <(echo "$RUNC_PASS") <(echo "$MD_PASS") | grep . | tr '\n' ' ')
echo
echo "passed by runc only:     ${only_runc:-(none)}"
echo "passed by minidock only: ${only_md:-(none)}"
echo "oci-validation compare: runc $RUNC_N passed ($RUNC_SRC), minidock $MD_N passed"
if [ "$MD_N" -lt "$RUNC_N" ]; then
	echo "FAIL: minidock passes fewer OCI validation programs than runc"
	exit 1
fi
echo "OK: minidock passes at least as many OCI validation programs as runc"
