package tests

import (
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
	"minidock/runtime"
)

// libraryRoot is a runtime root for the in-process tests, checked empty
// (no state, no cgroup) at the end.
func libraryRoot(t *testing.T) string {
	testutil.RequireRoot(t)
	if os.Getenv("MINIDOCK_TEST_RUNTIME") != "" {
		t.Skip("the runtime as a library is minidock's")
	}
	root := t.TempDir()
	t.Cleanup(func() {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			t.Errorf("leak: runtime state for %s left", e.Name())
		}
		if left := cgroupDirs(filepathBase(t)); len(left) > 0 {
			t.Errorf("leak: cgroups left: %v", left)
		}
	})
	return root
}

func filepathBase(t *testing.T) string {
	return "lib-" + strings.ToLower(t.Name()[len("TestRuntimeLibrary"):])
}

// openFds counts this process's open file descriptors.
func openFds(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// TestRuntimeLibraryLifecycle drives create, start, state, wait, delete in
// process, as the shim does: this test process is the init's parent and
// reaps it; nothing (goroutine, fd, state, cgroup) is left afterwards.
func TestRuntimeLibraryLifecycle(t *testing.T) {
	root := libraryRoot(t)
	dir := bundle(t, sh("read line; echo got $line; echo to-stderr >&2; exit 7"))
	goroutines, fds := goruntime.NumGoroutine(), openFds(t)

	stdinR, stdinW, err := os.Pipe()
	require.NoError(t, err)
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	id := filepathBase(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := runtime.Create(root, id, runtime.CreateOptions{
		Bundle: dir, PidFile: pidFile, Stdio: [3]*os.File{stdinR, outW, outW},
	})
	require.NoError(t, err)
	stdinR.Close()
	outW.Close()
	assert.Equal(t, "created", c.State().Status)
	assert.Nil(t, c.Console())
	pidText, _ := os.ReadFile(pidFile)
	assert.Equal(t, strings.TrimSpace(string(pidText)), strconv.Itoa(c.Pid))

	// another handle on the same container, as a later call would get
	loaded, err := runtime.Load(root, id)
	require.NoError(t, err)
	assert.Equal(t, c.Pid, loaded.Pid)
	require.NoError(t, loaded.Start())
	assert.Equal(t, "running", c.State().Status)

	io.WriteString(stdinW, "hello\n")
	stdinW.Close()
	out, _ := io.ReadAll(outR)
	outR.Close()
	assert.Equal(t, "got hello\nto-stderr\n", string(out))

	// the caller is the init's parent: it reaps it
	var ws unix.WaitStatus
	wpid, err := unix.Wait4(c.Pid, &ws, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, c.Pid, wpid)
	assert.Equal(t, 7, ws.ExitStatus())
	assert.Equal(t, "stopped", c.State().Status)
	require.NoError(t, c.Delete(false))
	_, err = runtime.Load(root, id)
	assert.ErrorIs(t, err, runtime.ErrNotExist)

	// (a loop, not require.Eventually: that runs goroutines of its own)
	for i := 0; i < 100 && goruntime.NumGoroutine() > goroutines; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, goroutines, goruntime.NumGoroutine(), "goroutines left behind")
	assert.Equal(t, fds, openFds(t), "file descriptors left open")
}

// TestRuntimeLibraryExecAndSignal: Exec in a running container returns
// the process for the caller to wait for; Signal and Delete(force) end
// the container.
func TestRuntimeLibraryExecAndSignal(t *testing.T) {
	root := libraryRoot(t)
	id := filepathBase(t)
	c, err := runtime.Create(root, id, runtime.CreateOptions{Bundle: bundle(t, sh("sleep 100"))})
	require.NoError(t, err)
	require.NoError(t, c.Start())

	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	p, err := runtime.Exec(root, id, &specs.Process{Args: []string{"sh", "-c", "echo exec $$; exit 3"}, Env: []string{"PATH=/bin"}},
		runtime.ExecOptions{Stdio: [3]*os.File{nil, outW, outW}})
	require.NoError(t, err)
	outW.Close()
	out, _ := io.ReadAll(outR)
	outR.Close()
	assert.Regexp(t, `^exec [0-9]+\n$`, string(out))
	var ws unix.WaitStatus
	_, err = unix.Wait4(p.Pid, &ws, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, 3, ws.ExitStatus())

	// sh as pid 1 ignores TERM; KILL through the cgroup ends it
	require.NoError(t, c.Signal(unix.SIGKILL, true))
	_, err = unix.Wait4(c.Pid, &ws, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, unix.SIGKILL, ws.Signal())
	assert.Error(t, c.Signal(unix.SIGTERM, false), "signal to a stopped container")
	require.NoError(t, c.Delete(false))
}

// TestRuntimeLibraryDeleteForce: Delete(true) of a running container
// kills it and waits for its exit; the caller then reaps it.
func TestRuntimeLibraryDeleteForce(t *testing.T) {
	root := libraryRoot(t)
	id := filepathBase(t)
	c, err := runtime.Create(root, id, runtime.CreateOptions{Bundle: bundle(t, sh("sleep 100"))})
	require.NoError(t, err)
	require.NoError(t, c.Start())
	assert.Error(t, c.Delete(false), "delete of a running container without force")
	require.NoError(t, c.Delete(true))
	var ws unix.WaitStatus
	_, err = unix.Wait4(c.Pid, &ws, 0, nil)
	require.NoError(t, err)
	assert.True(t, ws.Signaled())

	// a create that fails in the init leaves nothing behind either
	_, err = runtime.Create(root, id, runtime.CreateOptions{Bundle: bundle(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "no-such-fs", Source: "none"})
	})})
	assert.ErrorContains(t, err, "no-such-fs")
}
