#!/usr/bin/env bash
# tests/oci/run.sh [RUNTIME] — run the OCI runtime-tools validation programs
# against RUNTIME (a command name or path; default runc) and count passes.
#
# Builds (once, into $OCI_CACHE, default <repo>/.cache/oci) the validation
# programs and the static cmd/runtimetest of github.com/opencontainers/
# runtime-tools (fetched through the Go module proxy into a private module
# cache, pinned by version and hash), a busybox rootfs tarball made from the
# static /bin/busybox (apt-get install busybox-static), and a small subreaper
# (tests/oci/reaper) that runs each program so nothing it starts survives it.
#
# Then runs every program (as root) with a per-program timeout, parses its
# TAP, prints one line per program and the summary
#     oci-validation <label>: N passed, M failed
# and writes <results>/<label>.json and <label>.txt (+ <label>-logs/).
# It never runs `oci-runtime-tool validate` (that one downloads a schema).
#
# Environment:
#   OCI_LABEL        name in the summary/result files (default: basename of RUNTIME)
#   OCI_TIMEOUT      seconds per program (default 60)
#   OCI_ONLY         space-separated program names to run (default: all)
#   OCI_CACHE        build cache (default <repo>/.cache/oci)
#   OCI_RESULTS      result directory (default $OCI_CACHE/results)
#   OCI_STATE_ROOTS  runtime state roots checked for leftovers
#                    (default "/run/runc /run/minidock/runtime")
#   OCI_ROOTFS_TARBALL  use this rootfs tarball instead of building one
#   OCI_MIN_PASS     exit 1 when fewer programs pass
#   OCI_KEEP=1       keep the per-program work directories
#   OCI_RUNTIME_TOOLS_VERSION / OCI_RUNTIME_TOOLS_SUM  override the pinned module
# Exit status: 0 when the suite ran (whatever the count), 1 below OCI_MIN_PASS,
# 2 when the harness itself could not run.
set -uo pipefail

SELF=$(readlink -f "$0")
HERE=$(dirname "$SELF")
REPO=$(cd "$HERE/../.." && pwd)

RT_MODULE=github.com/opencontainers/runtime-tools
RT_VERSION=${OCI_RUNTIME_TOOLS_VERSION:-v0.9.1-0.20251114084447-edf4cb3d2116}
if [ -n "${OCI_RUNTIME_TOOLS_VERSION:-}" ]; then
	RT_SUM=${OCI_RUNTIME_TOOLS_SUM:-}
else
	RT_SUM=h1:tAKu3NkKWZYpqBSOJKwTxT1wIGueiF7gcmcNgr5pNTY=
fi
ROOTFS_RECIPE=1 # bump when build_rootfs changes

CACHE=${OCI_CACHE:-$REPO/.cache/oci}
TIMEOUT=${OCI_TIMEOUT:-60}
STATE_ROOTS=${OCI_STATE_ROOTS:-/run/runc /run/minidock/runtime}
UUID_RE='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

log() { printf '%s\n' "$*" >&2; }
die() { log "oci-validation: $*"; exit 2; }

# ---------------------------------------------------------------- cleanup mode
# `run.sh __cleanup RUNTIME WORKDIR` is what the reaper calls after each
# program: force-delete every container whose bundle lies under WORKDIR.
our_containers() { # RUNTIME WORKDIR -> ids, one per line
	local rt=$1 wd=$2 root d
	"$rt" list 2>/dev/null | awk -v w="$wd/" 'NR > 1 { for (i = 2; i <= NF; i++) if (index($i, w) == 1) { print $1; break } }'
	for root in $STATE_ROOTS; do
		for d in "$root"/*/; do
			[ -d "$d" ] || continue
			if grep -qsF -- "$wd/" "$d"*.json 2>/dev/null; then basename "$d"; fi
		done
	done
}
if [ "${1:-}" = __cleanup ]; then
	rt=$2 wd=$3
	for id in $(our_containers "$rt" "$wd" | sort -u); do
		echo "cleanup: $rt delete --force $id" >&2
		"$rt" delete --force "$id" >&2 || true
	done
	exit 0
fi

# ---------------------------------------------------------------- arguments
RUNTIME_ARG=${1:-runc}
RUNTIME=$(command -v -- "$RUNTIME_ARG") || die "runtime '$RUNTIME_ARG' not found"
case $RUNTIME in /*) ;; *) RUNTIME=$(readlink -f -- "$RUNTIME") ;; esac
LABEL=${OCI_LABEL:-$(basename -- "$RUNTIME_ARG")}
RESULTS=${OCI_RESULTS:-$CACHE/results}

[ "$(id -u)" = 0 ] || die "must run as root (the programs create containers)"
for tool in go tar gzip unshare awk; do
	command -v "$tool" >/dev/null || die "missing '$tool' (Go >= 1.21 in PATH; apt-get install -y busybox-static util-linux tar gzip)"
done

# ---------------------------------------------------------------- build
BUILD=$CACHE/runtime-tools-$RT_VERSION
BIN=$BUILD/bin

build_programs() {
	local tmp=$BUILD.tmp json dir sum n
	export GOMODCACHE=$CACHE/gomod GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local
	log "oci-validation: fetching $RT_MODULE@$RT_VERSION through the Go module proxy"
	json=$(go mod download -json "$RT_MODULE@$RT_VERSION") || die "go mod download failed"
	dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
	sum=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",*$/\1/p')
	[ -d "$dir" ] || die "no module directory in: $json"
	if [ -n "$RT_SUM" ] && [ "$sum" != "$RT_SUM" ]; then
		die "$RT_MODULE@$RT_VERSION has hash $sum, expected $RT_SUM"
	fi
	rm -rf "$tmp" && mkdir -p "$tmp/bin" || die "cannot create $tmp"
	cp -r "$dir" "$tmp/src" && chmod -R u+w "$tmp/src" || die "copy failed"
	# The module zip keeps vendor/modules.txt but not the vendored code:
	# drop it and build in module mode against the module's own go.sum.
	rm -rf "$tmp/src/vendor"
	log "oci-validation: building runtimetest (static) and the validation programs"
	(
		cd "$tmp/src" &&
			CGO_ENABLED=0 go build -mod=mod -trimpath -tags 'netgo osusergo' -o "$tmp/bin/runtimetest" ./cmd/runtimetest &&
			mkdir -p "$tmp/progs" &&
			CGO_ENABLED=0 go build -mod=mod -trimpath -o "$tmp/progs/" ./validation/...
	) || die "build failed"
	for n in "$tmp"/progs/*; do mv "$n" "$tmp/bin/$(basename "$n").t"; done
	rmdir "$tmp/progs"
	rm -rf "$BUILD" && mv "$tmp" "$BUILD"
}

build_reaper() { # a throwaway module, so a broken repo go.mod cannot stop us
	local d=$CACHE/reaper
	rm -rf "$d" && mkdir -p "$d" && cp "$HERE/reaper/main.go" "$d/" &&
		printf 'module ocireap\n\ngo 1.21\n' >"$d/go.mod" &&
		(cd "$d" && GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0 go build -o "$CACHE/ocireap" .) ||
		die "cannot build tests/oci/reaper"
}

build_rootfs() { # busybox rootfs the programs untar into each bundle
	local out=$1 bb=${OCI_BUSYBOX:-/bin/busybox} r p
	[ -x "$bb" ] || die "no $bb: apt-get install -y busybox-static"
	if ldd "$bb" >/dev/null 2>&1; then die "$bb is dynamically linked: apt-get install -y busybox-static"; fi
	r=$(mktemp -d) || die mktemp
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,var} && chmod 1777 "$r/tmp"
	cp "$bb" "$r/bin/busybox"
	for p in $("$bb" --list-full); do
		[ -e "$r/$p" ] || [ -L "$r/$p" ] || ln -s /bin/busybox "$r/$p"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	tar --numeric-owner --owner=0 --group=0 -czf "$out.tmp" -C "$r" . && mv "$out.tmp" "$out" || die "tar failed"
	rm -rf "$r"
}

mkdir -p "$CACHE" || die "cannot create $CACHE"
[ -x "$BIN/runtimetest" ] || build_programs
if [ ! -x "$CACHE/ocireap" ] || [ "$HERE/reaper/main.go" -nt "$CACHE/ocireap" ]; then build_reaper; fi
ROOTFS=${OCI_ROOTFS_TARBALL:-$CACHE/rootfs-amd64-r$ROOTFS_RECIPE.tar.gz}
[ -f "$ROOTFS" ] || build_rootfs "$ROOTFS"

if [ -n "${OCI_ONLY:-}" ]; then
	PROGRAMS=$OCI_ONLY
else
	PROGRAMS=$(cd "$BIN" && ls -- *.t | sed 's/\.t$//' | sort)
fi

# ---------------------------------------------------------------- run
RUNROOT=$(mktemp -d /tmp/minidock-oci.XXXXXX) || die mktemp
LOGS=$RESULTS/$LABEL-logs
rm -rf "$LOGS" && mkdir -p "$LOGS" || die "cannot create $LOGS"
cp "$ROOTFS" "$RUNROOT/rootfs-amd64.tar.gz" && cp "$BIN/runtimetest" "$RUNROOT/runtimetest" || die "copy failed"

cgroup_dirs() { find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | sort; }
CG_BEFORE=$RUNROOT/cgroups.before
cgroup_dirs >"$CG_BEFORE"

ABSENT_ROOTS=""
for d in $STATE_ROOTS; do [ -e "$d" ] || ABSENT_ROOTS="$ABSENT_ROOTS $d"; done
on_exit() {
	local d
	# a state root the runtime created during the run goes again if empty
	for d in $ABSENT_ROOTS; do rmdir "$d" 2>/dev/null; done
	if [ "${OCI_KEEP:-}" = 1 ]; then log "oci-validation: kept $RUNROOT"; else rm -rf "$RUNROOT"; fi
}
trap on_exit EXIT
trap 'log "oci-validation: interrupted"; exit 130' INT TERM

# after_program WORKDIR -> prints notes about leftovers it had to clean up
after_program() {
	local wd=$1 notes=() m id d
	if [ -s "$wd.leftovers" ]; then
		notes+=("killed $(wc -l <"$wd.leftovers") leftover process(es): $(awk '{ $1 = $1; printf "%s%s", sep, $0; sep = "; " }' "$wd.leftovers" | cut -c1-300)")
	fi
	# runtime state still naming our bundles after delete --force and the kill
	for id in $(our_containers "$RUNTIME" "$wd" | sort -u); do
		"$RUNTIME" delete --force "$id" >/dev/null 2>&1
		for d in $STATE_ROOTS; do
			if [ -e "$d/$id" ]; then
				notes+=("state $d/$id left after delete --force; removed")
				rm -rf "${d:?}/$id"
			fi
		done
	done
	# mounts under the work dir (none should exist on the host)
	local mounts
	mounts=$(awk -v w="$wd" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	if [ -n "$mounts" ]; then
		for m in $mounts; do umount -l "$m" 2>/dev/null; done
		printf 'leftover mount unmounted: %s\n' $mounts >>"$LOGS/$name.err"
		notes+=("$(wc -l <<<"$mounts") mount(s) under the bundle left on the host, unmounted (e.g. $(tail -n1 <<<"$mounts"))")
	fi
	# cgroups made during this program for the test containers: named by the
	# container id (a UUID) or the suite's cgrouptest/testdir paths
	local removed=() stuck=()
	for d in $(cgroup_dirs | comm -13 "$CG_BEFORE" - | grep -E "/($UUID_RE|cgrouptest|testdir)(/|$)" | sort -r); do
		if rmdir "$d" 2>/dev/null; then removed+=("$d"); else stuck+=("$d"); fi
	done
	if [ ${#removed[@]} -gt 0 ]; then
		printf 'leftover cgroup removed: %s\n' "${removed[@]}" >>"$LOGS/$name.err"
		notes+=("${#removed[@]} cgroup dir(s) left behind, removed (e.g. ${removed[0]})")
	fi
	if [ ${#stuck[@]} -gt 0 ]; then
		notes+=("${#stuck[@]} cgroup dir(s) left behind and NOT removable: ${stuck[*]}")
	fi
	[ ${#notes[@]} -eq 0 ] || printf '%s\n' "${notes[@]}"
}

# tap_counts FILE -> "ok notok skip todo plan tests badplan orphanerr bail"
# Only top-level lines count: programs nest the container's own TAP inside
# indented YAML. A program may print several TAP streams (one per
# "TAP version" line), each with its own plan. Some programs (the hook ones)
# report failure only as a YAML diagnostic with an "error" key that belongs
# to no test point (and a "1..0" plan): those are counted in orphanerr.
tap_counts() {
	awk '
		function endstream() {
			if (instream && (hasplan ? sp != st : st > 0)) badplan++
			sp = 0; st = 0; hasplan = 0
		}
		/^TAP version/ { endstream(); instream = 1; attach = 0; next }
		/^  ---[ \t]*$/ { inyaml = 1; orphan = !attach; attach = 0; next }
		inyaml && /^  \.\.\.[ \t]*$/ { inyaml = 0; next }
		inyaml { if (orphan && $0 ~ /"error"[ \t]*:/) { orphanerr++; orphan = 0 }; next }
		/^ok( |$)/ { instream = 1; ok++; st++; attach = 1; if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) skip++; next }
		/^not ok( |$)/ { instream = 1; st++; attach = 1; if ($0 ~ /# *[Tt][Oo][Dd][Oo]/) todo++; else notok++; next }
		/^1\.\.[0-9]+/ { instream = 1; split($0, a, /\.\.|[ \t#]/); sp = a[2] + 0; plan += sp; hasplan = 1; attach = 0; next }
		/^Bail out!/ { bail = 1; next }
		/^#/ { next }
		END {
			endstream()
			printf "%d %d %d %d %d %d %d %d %d\n", ok, notok, skip, todo, plan, ok + notok + todo, badplan, orphanerr, bail
		}' "$1"
}

json_str() { # escape for JSON
	printf '%s' "$1" | awk 'BEGIN { ORS = "" } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); if (NR > 1) print "\\n"; print }'
}

RT_VERSION_STR=$("$RUNTIME" --version 2>/dev/null | head -n1)
log "oci-validation: runtime $RUNTIME (${RT_VERSION_STR:-no --version}), $(wc -w <<<"$PROGRAMS") programs, timeout ${TIMEOUT}s each"
START=$(date +%s.%N)
PASSED=0 FAILED=0
PASS_LIST=() FAIL_LIST=()
JSON_PROGS=()
TXT=$RESULTS/$LABEL.txt.tmp
: >"$TXT"

for name in $PROGRAMS; do
	prog=$BIN/$name.t
	if [ ! -x "$prog" ]; then
		log "oci-validation: no program $name"
		FAILED=$((FAILED + 1)); FAIL_LIST+=("$name")
		continue
	fi
	wd=$RUNROOT/$name
	mkdir -p "$wd/tmp"
	ln "$RUNROOT/rootfs-amd64.tar.gz" "$wd/" && ln "$RUNROOT/runtimetest" "$wd/"
	t0=$(date +%s.%N)
	(
		cd "$wd" &&
			exec env TMPDIR="$wd/tmp" RUNTIME="$RUNTIME" "$CACHE/ocireap" \
				-timeout "${TIMEOUT}s" -grace 5s \
				-cleanup "'$SELF' __cleanup '$RUNTIME' '$wd'" \
				-leftovers "$wd.leftovers" -- "$prog"
	) </dev/null >"$LOGS/$name.tap" 2>"$LOGS/$name.err"
	rc=$?
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	notes=$(after_program "$wd")
	[ -z "$notes" ] || printf '%s\n' "$notes" >>"$LOGS/$name.err"
	[ "${OCI_KEEP:-}" = 1 ] || rm -rf "$wd"

	read -r ok notok skip todo plan tests badplan orphanerr bail <<<"$(tap_counts "$LOGS/$name.tap")"
	# Pass: exit status 0, no "not ok" (SKIP and TODO count as ok), every
	# stream's test count equal to its plan, no error diagnostic outside a
	# test point, no "Bail out!". (Empty output with exit 0 is how the
	# *_fail programs that use util.Fatal report success.)
	if [ "$rc" = 0 ] && [ "$notok" = 0 ] && [ "$badplan" = 0 ] && [ "$orphanerr" = 0 ] && [ "$bail" = 0 ]; then
		result=pass
	elif [ "$rc" = 124 ]; then
		result=timeout
	else
		result=fail
	fi
	if [ $result = pass ]; then
		PASSED=$((PASSED + 1)); PASS_LIST+=("$name")
	else
		FAILED=$((FAILED + 1)); FAIL_LIST+=("$name")
	fi
	why=""
	if [ $result != pass ]; then
		why=$(grep -m1 '^not ok' "$LOGS/$name.tap" | cut -c1-150)
		[ -n "$why" ] || [ "$orphanerr" = 0 ] || why=$(grep -m1 '"error"' "$LOGS/$name.tap" | sed 's/^ *//' | cut -c1-150)
		[ -n "$why" ] || why=$(grep -v '^[[:space:]]*$' "$LOGS/$name.err" | head -n1 | cut -c1-150)
	fi
	printf '%-7s %-31s %5ss ok=%s/%s not_ok=%s skip=%s exit=%s%s\n' \
		"$(tr a-z A-Z <<<"$result")" "$name" "$secs" "$ok" "$plan" "$notok" "$skip" "$rc" "${why:+  # $why}"
	[ -z "$notes" ] || sed 's/^/         leftover: /' <<<"$notes"
	printf '%s %s\n' "$name" "$result" >>"$TXT"
	JSON_PROGS+=("$(printf '{"name":"%s","result":"%s","exit":%s,"seconds":%s,"ok":%s,"not_ok":%s,"skip":%s,"todo":%s,"plan":%s,"bad_plan":%s,"orphan_errors":%s,"first_failure":"%s","leftovers":"%s"}' \
		"$name" "$result" "$rc" "$secs" "$ok" "$notok" "$skip" "$todo" "$plan" "$badplan" "$orphanerr" "$(json_str "$why")" "$(json_str "$notes")")")
done

TOTAL=$(awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
mv "$TXT" "$RESULTS/$LABEL.txt"
{
	printf '{"runtime":"%s","label":"%s","runtime_version":"%s","runtime_tools":"%s@%s","date":"%s","timeout_seconds":%s,"duration_seconds":%s,"passed":%d,"failed":%d,"programs":[' \
		"$(json_str "$RUNTIME")" "$(json_str "$LABEL")" "$(json_str "$RT_VERSION_STR")" "$RT_MODULE" "$RT_VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$TIMEOUT" "$TOTAL" "$PASSED" "$FAILED"
	(IFS=,; printf '%s' "${JSON_PROGS[*]}")
	printf ']}\n'
} >"$RESULTS/$LABEL.json"

log "oci-validation: results in $RESULTS/$LABEL.json, logs in $LOGS/ (${TOTAL}s)"
echo "oci-validation $LABEL: $PASSED passed, $FAILED failed"
if [ -n "${OCI_MIN_PASS:-}" ] && [ "$PASSED" -lt "$OCI_MIN_PASS" ]; then exit 1; fi
exit 0
