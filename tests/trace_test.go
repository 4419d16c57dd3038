package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The runtime's trace explains each kernel call: the cgroup's mkdir and
// writes, the mounts with their flags by name (the rslave remount, both
// halves of a read-only path), the seccomp load; each with the function
// that made it, its result and why (docs/trace.md).
func TestTraceRuntimeExplainsItself(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--trace is minidock's")
	}
	limit := int64(64)
	out := r.must("--trace", "run", "--bundle", bundle(t, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
		s.Process.NoNewPrivileges = true
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActErrno}}}
	}), newID(t))
	for _, re := range []string{
		// the cgroup, per file, by the function that wrote it
		`\[runtime [0-9]+\] +cgroup +cgroup\.\S+ +mkdir /sys/fs/cgroup/\S+, 0755 = (ok|EEXIST .*)  # a new cgroup`,
		`\[runtime [0-9]+\] +cgroup +cgroup\.\S+ +write /sys/fs/cgroup/\S+/pids\.max, "64" = ok  # the most processes`,
		// the init is born in it: clone3 into the v2 directory, or the
		// forking thread moves itself into the v1 hierarchies first
		`\[runtime [0-9]+\] +cgroup +\S+ +(open /sys/fs/cgroup/\S+, O_RDONLY\|O_DIRECTORY\|O_CLOEXEC = fd [0-9]+  # for clone3's CLONE_INTO_CGROUP|write /sys/fs/cgroup/\S+/tasks, "0" = ok  # move the process)`,
		// the mounts, flags by name
		`\[init 1\] +\S+ +rootfs\.\S+ +mount dst=\S+, flags=MS_REC\|MS_SLAVE = ok  # change the propagation`,
		`\[init 1\] +\S+ +rootfs\.\S+ +mount src=\S*/proc/sys, dst=\S*/proc/sys, flags=MS_BIND\|MS_REC = ok  # bind the path onto itself`,
		`\[init 1\] +\S+ +rootfs\.\S+ +mount dst=\S*/proc/sys, flags=MS_RDONLY\|\S*MS_REMOUNT\|\S*MS_BIND\S* = ok  # remount the bind read-only`,
		// the seccomp filter, loaded
		`\[init 1\] +\S+ +seccomp\.Filter\.Load +seccomp SECCOMP_SET_MODE_FILTER, flags=SECCOMP_FILTER_FLAG_TSYNC, [0-9]+ instructions = ok  # `,
		`\[init 1\] +\S+ +\S+ +prctl PR_SET_NO_NEW_PRIVS, 1 = ok  # `,
	} {
		assert.Regexp(t, re, out)
	}
	// no flag is left as a raw number
	assert.NotRegexp(t, `(flags|nstype|mode)=[A-Z_|]*0x`, out)
	// every line names the function that made the call
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.Regexp(t, `^[0-9:.]+ \[(runtime|init) [0-9]+\] +\S+ +[a-z]+\.\S+ +\S`, l)
	}
}

// A failing call is traced with its error, before the runtime gives up.
func TestTraceRuntimeShowsTheError(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--trace is minidock's")
	}
	out, code := r.run("--trace", "run", "--bundle", bundle(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "no-such-fs", Source: "none"})
	}), newID(t))
	require.NotEqual(t, 0, code, out)
	assert.Regexp(t, `\[init 1\] +prepareRootfs +rootfs\.\S+ +mount src=none, dst=\S+, type=no-such-fs = ENODEV \(no such device\)  # `, out)
}

// timelineLine is one line of `run --trace`'s timeline.
var timelineLine = regexp.MustCompile(`^\+ *([0-9]+\.[0-9]+)ms \[(client|daemon|shim|runtime|init) [0-9]+\] +(\S+) +(\S+) +(.*)$`)

// runTraced runs `minidock run --trace ARGS` and returns its stdout, its
// timeline and the rest of its stderr (the container's).
func runTraced(t *testing.T, e *engine, args ...string) (stdout string, timeline []string, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"-H", "unix://" + e.sock, "run", "--trace"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), errb.String())
	var rest []string
	for _, l := range strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n") {
		if timelineLine.MatchString(l) {
			timeline = append(timeline, l)
		} else {
			rest = append(rest, l)
		}
	}
	return out.String(), timeline, strings.Join(rest, "\n")
}

// find is the index of the first timeline line of proc that holds what,
// or -1.
func find(timeline []string, proc, what string) int {
	for i, l := range timeline {
		if m := timelineLine.FindStringSubmatch(l); m[2] == proc && strings.Contains(m[5], what) {
			return i
		}
	}
	return -1
}

// `run --trace` prints one timeline of the five processes, in order of
// time, with the network's veth and nft calls on the default bridge; the
// container's logs hold its output only.
func TestRunTraceTimeline(t *testing.T) {
	e := newEngine(t)
	if e.runtime != "" {
		t.Skip("the runtime's and the init's events come from minidock's runtime in the shim")
	}
	e.importBusybox("busybox:latest")
	// a published port: the nftables table is made again with its rule
	stdout, timeline, stderr := runTraced(t, e, "--name", "traced", "-p", "127.0.0.1::8080", "busybox", "sh", "-c", "echo out; echo err >&2")
	assert.Equal(t, "out\n", stdout)
	assert.Equal(t, "err", stderr)
	all := strings.Join(timeline, "\n")
	require.NotEmpty(t, timeline)
	// in order of time, from 0
	last := -1.0
	for _, l := range timeline {
		ms, _ := strconv.ParseFloat(timelineLine.FindStringSubmatch(l)[1], 64)
		assert.GreaterOrEqual(t, ms, last, l)
		last = ms
	}
	assert.True(t, strings.HasPrefix(timeline[0], "+    0.000ms [client "), timeline[0])
	// the path of the run, one process after the other
	path := []struct{ proc, what string }{
		{"client", "POST /containers/create?name=traced&trace=1"},
		{"daemon", "resolve image"},
		{"client", "/start"},
		{"daemon", "mount src=overlay, dst="},
		{"daemon", "ipam allocate"},
		{"daemon", "write " + "/"},
		{"daemon", "launch shim"},
		{"shim", "pipe2"},
		{"shim", "runtime create"},
		{"daemon", "RTM_NEWLINK kind=veth"},
		{"daemon", "bind tcp 127.0.0.1:"},
		{"daemon", "nft -f -"},
		{"shim", "runtime start"},
		{"init", "execve /bin/sh"},
		{"shim", "wait4"},
		{"daemon", "shim wait"},
		{"daemon", "umount2"},
	}
	at := -1
	for _, p := range path {
		i := find(timeline, p.proc, p.what)
		if !assert.GreaterOrEqual(t, i, 0, "no %s line with %q in:\n%s", p.proc, p.what, all) {
			continue
		}
		assert.Greater(t, i, at, "%s %q comes too early in:\n%s", p.proc, p.what, all)
		at = i
	}
	for _, proc := range []string{"client", "daemon", "shim", "runtime", "init"} {
		assert.GreaterOrEqual(t, find(timeline, proc, ""), 0, "no line of %s", proc)
	}
	assert.Contains(t, all, "lowerdir=")
	assert.Contains(t, all, "RTM_NEWADDR eth0, ")
	assert.Contains(t, all, "RTM_NEWROUTE default via ")
	assert.Contains(t, all, "write /sys/fs/cgroup/")
	// none of it in the logs
	id := e.inspect("traced").ID
	out, errOut := e.logs(id, "")
	assert.Equal(t, "out\n", out)
	assert.Equal(t, "err\n", errOut)
	// the trace goes with the container
	tracePath := filepath.Join(e.execRoot, "trace", id+".jsonl")
	assert.FileExists(t, tracePath)
	e.mustCLI("rm", "traced")
	assert.NoFileExists(t, tracePath)
}

// With --rm, the removal is in the timeline; the trace file, kept for
// that one fetch, is gone after it. --network none has no veth.
func TestRunTraceRemoveNoNetwork(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	stdout, timeline, _ := runTraced(t, e, "--rm", "--network", "none", "busybox", "echo", "hi")
	assert.Equal(t, "hi\n", stdout)
	all := strings.Join(timeline, "\n")
	assert.GreaterOrEqual(t, find(timeline, "daemon", "rm -r "), 0, all)
	assert.GreaterOrEqual(t, find(timeline, "daemon", "RTM_NEWLINK lo in /proc/"), 0, all)
	assert.Equal(t, -1, find(timeline, "daemon", "kind=veth"), all)
	ents, _ := os.ReadDir(filepath.Join(e.execRoot, "trace"))
	assert.Empty(t, ents, "trace files left")
}

// A daemon started with MINIDOCK_TRACE=1 traces every container into its
// trace file, never into its stdio: the logs hold the output only.
func TestDaemonTraceEnvKeepsLogsClean(t *testing.T) {
	t.Setenv("MINIDOCK_TRACE", "1") // the daemon's environment, as a user would start it
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.mustCLI("run", "--name", "plain", "busybox", "sh", "-c", "echo out; echo err >&2")
	id := e.inspect("plain").ID
	out, errOut := e.logs(id, "")
	assert.Equal(t, "out\n", out)
	assert.Equal(t, "err\n", errOut)
	st, data := e.do("GET", "/containers/plain/trace", nil)
	require.Equal(t, 200, st, string(data))
	assert.Contains(t, string(data), `"op":"runtime start"`)
	if e.runtime == "" { // minidock's runtime, in the shim
		assert.Contains(t, string(data), `"proc":"init"`)
		assert.Contains(t, string(data), `"op":"execve"`)
	}
	e.mustCLI("rm", "plain")
}
