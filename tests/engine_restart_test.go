package tests

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// waitFor polls a container's inspect until ok holds (30 s at most).
func (e *engine) waitFor(name, what string, ok func(api.ContainerJSON) bool) api.ContainerJSON {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := e.inspect(name)
		if ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is not %s after 30s: state %+v, RestartCount %d\n%s", name, what, *c.State, c.RestartCount, e.processReport())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLines waits until the file p in the root of the running process
// pid has n lines: a process seen running may not have written yet.
func waitLines(t *testing.T, pid int, p string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root%s", pid, p))
		if strings.Count(string(data), "\n") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s of process %d has not %d lines after 10s: %q", p, pid, n, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func withPolicy(cmd []string, name string, max int) map[string]any {
	return map[string]any{"Image": "busybox", "Cmd": cmd,
		"HostConfig": map[string]any{"RestartPolicy": map[string]any{"Name": name, "MaximumRetryCount": max}}}
}

// Restart policies: on-failure's limit, always across an exit and a
// daemon crash, stop and the daemon's own restart.
func TestEngineRestartPolicy(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	for _, bad := range []map[string]any{
		withPolicy([]string{"true"}, "bogus", 0),
		withPolicy([]string{"true"}, "on-failure", -1),
		withPolicy([]string{"true"}, "always", 2),
		{"Image": "busybox", "Cmd": []string{"true"}, "HostConfig": map[string]any{"AutoRemove": true, "RestartPolicy": map[string]any{"Name": "always"}}},
	} {
		e.must(400, "POST", "/containers/create", bad, nil)
	}

	// on-failure:2: three runs, two restarts, then it stays exited
	e.create("fails", withPolicy([]string{"sh", "-c", "echo run >> /runs; exit 3"}, "on-failure", 2))
	e.must(204, "POST", "/containers/fails/start", nil, nil)
	c := e.waitFor("fails", "exited after 2 restarts", func(c api.ContainerJSON) bool {
		return c.RestartCount == 2 && c.State.Status == "exited"
	})
	require.Equal(t, 3, c.State.ExitCode)
	require.False(t, c.State.Restarting)
	time.Sleep(time.Second) // a third restart would come 400 ms after the exit
	c = e.inspect("fails")
	require.Equal(t, 2, c.RestartCount)
	require.Equal(t, "exited", c.State.Status)
	require.Equal(t, map[string]string{"runs": "run\nrun\nrun\n"}, e.archive("fails", "/runs"))
	// on success, on-failure lets it be
	e.runToEnd("succeeds", "true")
	e.must(204, "DELETE", "/containers/succeeds", nil, nil)

	// always: restarted when its process exits, not through the API
	e.create("always", withPolicy([]string{"sh", "-c", "echo run >> /runs; exec sleep 300"}, "always", 0))
	e.must(204, "POST", "/containers/always/start", nil, nil)
	pid := e.inspect("always").State.Pid
	waitLines(t, pid, "/runs", 1)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	c = e.waitFor("always", "restarted once", func(c api.ContainerJSON) bool {
		return c.State.Running && c.RestartCount == 1 && c.State.Pid != pid
	})

	// and when it exits while the daemon is down after a kill -9
	waitLines(t, c.State.Pid, "/runs", 2)
	e.killDaemon()
	pid = c.State.Pid
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	for !processGone(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	e.start()
	c = e.waitFor("always", "restarted after the daemon came back", func(c api.ContainerJSON) bool {
		return c.State.Running && c.RestartCount == 2 && c.State.Pid != pid
	})

	waitLines(t, c.State.Pid, "/runs", 3)

	// stop is the user's: no restart
	e.must(204, "POST", "/containers/always/stop?t=1", nil, nil)
	time.Sleep(time.Second)
	c = e.inspect("always")
	require.Equal(t, "exited", c.State.Status)
	require.False(t, c.State.Restarting)
	require.Equal(t, 2, c.RestartCount)
	require.Equal(t, map[string]string{"runs": "run\nrun\nrun\n"}, e.archive("always", "/runs"))

	// a start by the user counts afresh; a container that exits at once
	// is seen restarting between runs, and stop drops the waiting restart
	e.create("loop", withPolicy([]string{"true"}, "unless-stopped", 0))
	e.must(204, "POST", "/containers/loop/start", nil, nil)
	c = e.waitFor("loop", "restarting", func(c api.ContainerJSON) bool {
		return c.State.Restarting && c.State.Status == "restarting" && c.RestartCount >= 1
	})
	e.must(204, "POST", "/containers/loop/stop", nil, nil)
	c = e.inspect("loop")
	require.False(t, c.State.Restarting)
	require.Equal(t, "exited", c.State.Status)
	count := c.RestartCount
	time.Sleep(time.Second)
	require.Equal(t, count, e.inspect("loop").RestartCount)

	// the daemon's restart: always starts, a stopped unless-stopped stays
	e.stop()
	e.start()
	c = e.waitFor("always", "started with the daemon", func(c api.ContainerJSON) bool { return c.State.Running })
	require.Equal(t, 0, c.RestartCount)
	require.Equal(t, "exited", e.inspect("loop").State.Status)
	require.Equal(t, "exited", e.inspect("fails").State.Status)

	// the client's --restart
	out, code := e.cli("run", "-d", "--name", "viacli", "--restart", "on-failure:1", "busybox", "sh", "-c", "exit 1")
	require.Equal(t, 0, code, out)
	c = e.waitFor("viacli", "exited after 1 restart", func(c api.ContainerJSON) bool {
		return c.RestartCount == 1 && c.State.Status == "exited"
	})
	require.Equal(t, api.RestartPolicy{Name: "on-failure", MaximumRetryCount: 1}, c.HostConfig.RestartPolicy)
	out, code = e.cli("run", "-d", "--restart", "sometimes", "busybox", "true")
	require.Equal(t, 125, code, out)
	require.Contains(t, out, "invalid restart policy")
}
