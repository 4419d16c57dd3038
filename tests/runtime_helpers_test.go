package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"minidock/internal/testutil"
	"minidock/runtime"
)

// rt is one runtime under test: minidock's, or runc when
// MINIDOCK_TEST_RUNTIME=runc.
type rt struct {
	t    *testing.T
	argv []string // program and leading args
	root string   // --root
	runc bool
}

func newRuntime(t *testing.T) *rt {
	testutil.RequireRoot(t)
	root := filepath.Join("/run/minidock-test", fmt.Sprintf("%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	r := &rt{t: t, root: root}
	switch name := os.Getenv("MINIDOCK_TEST_RUNTIME"); name {
	case "", "minidock":
		r.argv = []string{binary, "runtime"}
	default:
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("runtime %s not installed: %v", name, err)
		}
		r.argv = []string{p}
		r.runc = true
	}
	t.Cleanup(func() {
		// nothing may be left: state of every container removed
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			t.Errorf("leak: runtime state for %s left in %s", e.Name(), root)
			r.cmd("delete", "--force", e.Name()).Run()
		}
		os.RemoveAll(root)
		if left := cgroupDirs(fmt.Sprintf("mdt-%d-", os.Getpid())); len(left) > 0 {
			t.Errorf("leak: cgroups left: %v", left)
		}
	})
	return r
}

// cgroupDirs finds cgroup directories whose name starts with prefix, in
// every hierarchy, a few levels deep.
func cgroupDirs(prefix string) []string {
	var found []string
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if strings.HasPrefix(e.Name(), prefix) {
				found = append(found, p)
			}
			if depth < 3 {
				walk(p, depth+1)
			}
		}
	}
	walk("/sys/fs/cgroup", 0)
	return found
}

func (r *rt) cmd(args ...string) *exec.Cmd {
	all := append(append(append([]string{}, r.argv[1:]...), "--root", r.root), args...)
	return exec.Command(r.argv[0], all...)
}

// run runs a runtime command and returns its combined output and exit code.
func (r *rt) run(args ...string) (string, int) {
	r.t.Helper()
	// A file, not a pipe: a created container's init inherits the
	// runtime's stdout and keeps it open long after the runtime exits.
	out, err := os.CreateTemp("", "minidock-out-")
	if err != nil {
		r.t.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	c := r.cmd(args...)
	c.Stdout, c.Stderr = out, out
	err = c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("%v: %v", args, err)
	}
	data, _ := os.ReadFile(out.Name())
	return string(data), code
}

// must runs a runtime command that has to succeed.
func (r *rt) must(args ...string) string {
	r.t.Helper()
	out, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("%v: exit %d: %s", args, code, out)
	}
	return out
}

func (r *rt) state(id string) runtime.StateJSON {
	r.t.Helper()
	var st runtime.StateJSON
	out := r.must("state", id)
	require.NoError(r.t, json.Unmarshal([]byte(out), &st), out)
	return st
}

var idSeq atomic.Int64

func newID(t *testing.T) string {
	return fmt.Sprintf("mdt-%d-%d", os.Getpid(), idSeq.Add(1))
}

// bundle makes a busybox bundle with the default spec (no terminal), lets
// mutate change it, and returns its directory.
func bundle(t *testing.T, mutate func(*specs.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	// user namespace tests need the path traversable by mapped uids
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	testutil.MakeBusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	spec := runtime.DefaultSpec()
	spec.Process.Terminal = false
	spec.Process.Args = []string{"true"}
	if mutate != nil {
		mutate(spec)
	}
	writeSpec(t, dir, spec)
	return dir
}

func writeSpec(t *testing.T, dir string, spec *specs.Spec) {
	data, err := json.MarshalIndent(spec, "", " ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644))
}

func sh(script string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", script} }
}

// runIn runs a container to completion and returns output and exit code.
func (r *rt) runIn(t *testing.T, mutate func(*specs.Spec)) (string, int) {
	t.Helper()
	return r.run("run", "--bundle", bundle(t, mutate), newID(t))
}

// waitStatus polls `state` until the container has status want.
func (r *rt) waitStatus(id, want string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.state(id).Status == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("container %s never reached status %s (now %s)", id, want, r.state(id).Status)
}

// processGone reports whether pid no longer runs (or is a zombie).
func processGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// runDetached runs a container with --detach, its output going to a file,
// and deletes it at the end of the test. It returns a reader of the output
// so far.
func (r *rt) runDetached(t *testing.T, dir, id string) func() string {
	t.Helper()
	logf := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(logf)
	require.NoError(t, err)
	c := r.cmd("run", "--detach", "--bundle", dir, id)
	c.Stdout, c.Stderr = f, f
	require.NoError(t, c.Run())
	f.Close()
	t.Cleanup(func() { r.run("delete", "--force", id) })
	return func() string {
		data, _ := os.ReadFile(logf)
		return string(data)
	}
}
