package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docSteps reads the numbered step lists of docs/runtime.md: under the
// heading that starts with heading, every "N. `name`" line, in order; for
// `runtime run` (run) without those marked "`runtime create` only".
func docSteps(t *testing.T, heading string, run bool) []string {
	data, err := os.ReadFile("../docs/runtime.md")
	require.NoError(t, err)
	item := regexp.MustCompile("^[0-9]+\\. `([A-Za-z]+)`")
	var steps []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			in = strings.HasPrefix(strings.TrimLeft(line, "# "), heading)
			continue
		}
		if m := item.FindStringSubmatch(line); in && m != nil && !(run && strings.Contains(line, "`runtime create` only")) {
			steps = append(steps, m[1])
		}
	}
	require.NotEmpty(t, steps, "no steps under %q in docs/runtime.md", heading)
	return steps
}

// traceSteps lists the steps one role began in a trace, in order.
func traceSteps(out, role string) []string {
	line := regexp.MustCompile(`^[0-9:.]+ \[` + role + ` [0-9]+\] +(\S+) +\S+ +begin$`)
	var steps []string
	for _, l := range strings.Split(out, "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			steps = append(steps, m[1])
		}
	}
	return steps
}

// traceLine matches a trace line of role in step whose call starts with
// call (docs/trace.md: time, [role pid], step, function, call).
func traceLine(role, step, call string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)\[` + role + ` [0-9]+\] +` + regexp.QuoteMeta(step) + ` +\S+ +` + regexp.QuoteMeta(call))
}

// TestRuntimeTraceMatchesDocs runs a container with --trace and checks that
// the runtime and the init go through exactly the steps docs/runtime.md
// lists, in its order, and that each step's calls are traced with their
// arguments and results.
func TestRuntimeTraceMatchesDocs(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--trace is minidock's")
	}
	out := r.must("--trace", "run", "--bundle", bundle(t, nil), newID(t))
	assert.Equal(t, docSteps(t, "The runtime's steps", true), traceSteps(out, "runtime"), "the runtime's steps, in:\n%s", out)
	assert.Equal(t, docSteps(t, "The init's steps", true), traceSteps(out, "init"), "the init's steps, in:\n%s", out)
	for _, call := range []struct{ step, call string }{
		{"enterRootfs", "pivot_root ., . = ok"},
		{"enterRootfs", "umount2 ., flags=MNT_DETACH = ok"},
		{"prepareRootfs", "mount src=proc, dst="},
		{"setupNamespaces", "unshare CLONE_NEWCGROUP = ok"},
		{"execProcess", "execve /bin/true"},
	} {
		assert.Regexp(t, traceLine("init", call.step, call.call), out)
	}
	// every call line has its result after the call, then why it is made
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasSuffix(l, " begin") || strings.Contains(l, "execve ") {
			continue
		}
		assert.Regexp(t, ` = (ok|fd [0-9]+|E[A-Z0-9]+ \(.*\))(  # .+)?$`, l)
	}
}

// TestRuntimeTraceCreateStart: with create, then start, the init waits for
// start in its own step (waitForStart), as docs/runtime.md lists it.
func TestRuntimeTraceCreateStart(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--trace is minidock's")
	}
	// one file for the whole life of the init, which keeps writing to the
	// stderr it got from create
	f, err := os.Create(filepath.Join(t.TempDir(), "trace"))
	require.NoError(t, err)
	defer f.Close()
	id := newID(t)
	c := r.cmd("--trace", "create", "--bundle", bundle(t, nil), id)
	c.Stdout, c.Stderr = f, f
	require.NoError(t, c.Run())
	defer r.run("delete", "--force", id)
	r.must("start", id)
	r.waitStatus(id, "stopped")
	out, _ := os.ReadFile(f.Name())
	assert.Equal(t, docSteps(t, "The init's steps", false), traceSteps(string(out), "init"), "the init's steps, in:\n%s", out)
}

// TestRuntimeErrorNamesStepAndCall: a failing kernel call of the init comes
// back from create naming the step, the call with its flags by name, and
// the errno.
func TestRuntimeErrorNamesStepAndCall(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("the wording is minidock's")
	}
	out, code := r.runIn(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "no-such-fs", Source: "none", Options: []string{"nosuid", "nodev"}})
	})
	require.NotEqual(t, 0, code)
	// the mount is made on the destination opened in the rootfs, by its
	// descriptor: the error names the destination, then the call
	want := "container init: prepareRootfs: mount on "
	require.Contains(t, out, want)
	line := out[strings.Index(out, want):]
	assert.Contains(t, line, "/rootfs/x: mount src=none, dst=/proc/self/fd/")
	assert.Contains(t, line, ", type=no-such-fs, flags=MS_NOSUID|MS_NODEV: no such device")
}
