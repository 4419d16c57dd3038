package tests

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// pause/unpause, top, stats and rename through the API and the client.
func TestEngineContainerOps(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.create("ops", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "sleep 300 & while :; do sleep 1; done"},
		"HostConfig": map[string]any{"Memory": 64 << 20, "PidsLimit": 50}})
	e.must(409, "POST", "/containers/ops/pause", nil, nil)
	e.must(409, "POST", "/containers/ops/unpause", nil, nil)
	e.must(409, "GET", "/containers/ops/top", nil, nil)
	e.must(404, "POST", "/containers/nosuch/pause", nil, nil)
	e.must(204, "POST", "/containers/ops/start", nil, nil)

	// pause: frozen, shown as paused in inspect and list
	e.must(409, "POST", "/containers/ops/unpause", nil, nil)
	e.must(204, "POST", "/containers/ops/pause", nil, nil)
	e.must(409, "POST", "/containers/ops/pause", nil, nil)
	c := e.inspect("ops")
	require.Equal(t, "paused", c.State.Status)
	require.True(t, c.State.Paused)
	require.True(t, c.State.Running)
	var list []api.ContainerSummary
	e.must(200, "GET", `/containers/json?filters={"status":["paused"]}`, nil, &list)
	require.Len(t, list, 1)
	require.Equal(t, "paused", list[0].State)
	require.Contains(t, list[0].Status, "(Paused)")
	e.must(409, "POST", "/containers/ops/exec", map[string]any{"Cmd": []string{"true"}}, nil)
	e.must(204, "POST", "/containers/ops/unpause", nil, nil)
	c = e.inspect("ops")
	require.Equal(t, "running", c.State.Status)
	require.False(t, c.State.Paused)

	// top: the init, the sleeps
	var top api.ContainerTopResponse
	e.must(200, "GET", "/containers/ops/top", nil, &top)
	require.Equal(t, []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, top.Titles)
	require.GreaterOrEqual(t, len(top.Processes), 2)
	var cmds []string
	for _, p := range top.Processes {
		require.Len(t, p, 8)
		require.Equal(t, "root", p[0])
		cmds = append(cmds, p[7])
	}
	require.Contains(t, cmds, "sleep 300")
	require.Equal(t, strconv.Itoa(c.State.Pid), top.Processes[0][1], "%v", top.Processes)

	// stats, one-shot
	var s api.StatsJSON
	e.must(200, "GET", "/containers/ops/stats?stream=0", nil, &s)
	require.Equal(t, c.ID, s.ID)
	require.Equal(t, "/ops", s.Name)
	_, err := time.Parse(time.RFC3339Nano, s.Read)
	require.NoError(t, err)
	require.NotZero(t, s.CPUStats.CPUUsage.TotalUsage)
	require.NotZero(t, s.CPUStats.SystemUsage)
	require.NotZero(t, s.CPUStats.OnlineCPUs)
	require.NotZero(t, s.MemoryStats.Usage)
	require.Equal(t, uint64(64<<20), s.MemoryStats.Limit)
	require.GreaterOrEqual(t, s.PidsStats.Current, uint64(2))
	require.Equal(t, uint64(50), s.PidsStats.Limit)

	// stats, streamed: one a second, the previous sample as precpu
	resp := e.request("GET", "/containers/ops/stats", nil)
	require.Equal(t, 200, resp.StatusCode)
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	var s1, s2 api.StatsJSON
	require.NoError(t, dec.Decode(&s1))
	require.NoError(t, dec.Decode(&s2))
	resp.Body.Close()
	require.Equal(t, s1.Read, s2.PreRead)
	require.Equal(t, s1.CPUStats.SystemUsage, s2.PreCPUStats.SystemUsage)
	require.Greater(t, s2.CPUStats.SystemUsage, s1.CPUStats.SystemUsage)

	// rename
	e.create("other", map[string]any{"Image": "busybox", "Cmd": []string{"true"}})
	e.must(409, "POST", "/containers/ops/rename?name=other", nil, nil)
	e.must(404, "POST", "/containers/nosuch/rename?name=x", nil, nil)
	e.must(400, "POST", "/containers/ops/rename?name=", nil, nil)
	e.must(204, "POST", "/containers/ops/rename?name=renamed", nil, nil)
	e.must(404, "GET", "/containers/ops/json", nil, nil)
	require.Equal(t, "/renamed", e.inspect("renamed").Name)
	e.create("ops", map[string]any{"Image": "busybox", "Cmd": []string{"true"}}) // the old name is free

	// the client's verbs
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "MINIDOCK_HOST=unix://"+e.sock)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		require.NoError(t, err)
		return string(out), 0
	}
	out, code := run("pause", "renamed")
	require.Equal(t, 0, code, out)
	require.Equal(t, "paused", e.inspect("renamed").State.Status)
	out, code = run("unpause", "renamed")
	require.Equal(t, 0, code, out)
	out, code = run("top", "renamed")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "CMD")
	require.Contains(t, out, "sleep 300")
	out, code = run("stats", "--no-stream", "renamed")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "MEM USAGE / LIMIT")
	require.Contains(t, out, "renamed")
	require.Contains(t, out, "/ 64MiB") // docker prints memory in binary units
	out, code = run("rename", "renamed", "again")
	require.Equal(t, 0, code, out)
	out, code = run("rename", "again", "other")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "already in use")

	// a paused container stops (it is thawed for the signal)
	e.must(204, "POST", "/containers/again/pause", nil, nil)
	e.must(204, "POST", "/containers/again/stop?t=1", nil, nil)
	c = e.inspect("again")
	require.Equal(t, "exited", c.State.Status)
	require.False(t, c.State.Paused)
	st, _ := e.do("GET", "/containers/again/stats?stream=0", nil)
	require.Equal(t, http.StatusOK, st)
	for _, n := range []string{"again", "other", "ops"} {
		e.must(204, "DELETE", "/containers/"+n, nil, nil)
	}
}

// The OOM killer: exit 137 and State.OOMKilled.
func TestEngineOOMKilled(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.create("hog", map[string]any{"Image": "busybox", "Cmd": []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"},
		"HostConfig": map[string]any{"Memory": 32 << 20}})
	e.create("fine", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "exit 137"},
		"HostConfig": map[string]any{"Memory": 32 << 20}})
	for _, n := range []string{"hog", "fine"} {
		resp := e.request("POST", "/containers/"+n+"/wait?condition=next-exit", nil)
		e.must(204, "POST", "/containers/"+n+"/start", nil, nil)
		require.Equal(t, 137, waitCode(t, resp))
	}
	c := e.inspect("hog")
	require.Equal(t, 137, c.State.ExitCode)
	require.True(t, c.State.OOMKilled)
	require.False(t, e.inspect("fine").State.OOMKilled)
	// a new start clears it
	resp := e.request("POST", "/containers/hog/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/hog/start", nil, nil)
	require.Equal(t, 137, waitCode(t, resp))
	require.True(t, e.inspect("hog").State.OOMKilled)
	e.must(204, "DELETE", "/containers/hog", nil, nil)
	e.must(204, "DELETE", "/containers/fine", nil, nil)
}

// The docker CLI's pause, unpause, top, stats, rename and events.
func TestEngineDockerCLIOps(t *testing.T) {
	requireDockerCLI(t)
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	run := e.docker
	since := strconv.FormatInt(time.Now().Unix(), 10)
	out, code := run("run", "-d", "--name", "bg", "-m", "64m", "busybox", "sleep", "300")
	require.Equal(t, 0, code, out)
	out, code = run("pause", "bg")
	require.Equal(t, 0, code, out)
	out, code = run("ps")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "(Paused)")
	out, code = run("unpause", "bg")
	require.Equal(t, 0, code, out)
	out, code = run("top", "bg")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "sleep 300")
	require.Contains(t, out, "PID")
	out, code = run("stats", "--no-stream", "bg")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "bg")
	require.Contains(t, out, "64MiB")
	out, code = run("rename", "bg", "fg")
	require.Equal(t, 0, code, out)
	out, code = run("rm", "-f", "fg")
	require.Equal(t, 0, code, out)
	out, code = run("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "-f", "event=destroy")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "container destroy")
	require.Contains(t, out, "name=fg")
}
