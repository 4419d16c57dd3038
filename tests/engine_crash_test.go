package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// Crash consistency: the daemon is killed (kill -9) at many moments of a
// start and of a removal. Whatever the moment, the next daemon's record
// of the container matches what runs, the container can be managed
// (stopped, started, removed), and once it is removed nothing is left:
// no process, shim, cgroup, veth, runtime state or mount.
func TestEngineCrashDuringStart(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	// the default bridge: a start makes a veth and an address; a
	// published port: a held port and a firewall rule
	cfg := map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"},
		"HostConfig": map[string]any{"PortBindings": map[string]any{"80/tcp": []map[string]string{{"HostIp": "127.0.0.1"}}}}}
	e.crashSweep("start", func(int) string {
		return e.create("", cfg)
	}, func(id string) {
		e.try("POST", "/containers/"+id+"/start")
	})
}

func TestEngineCrashDuringRemove(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	cfg := map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}}
	e.crashSweep("rm -f", func(int) string {
		id := e.create("", cfg)
		e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
		return id
	}, func(id string) {
		e.try("DELETE", "/containers/"+id+"?force=1")
	})
}

// crashSweep runs op on a container made by prepare and kills the daemon
// op's delay after it began, for delays across op's duration; after each
// restart it checks the container against what runs, manages it, removes
// it and looks for leftovers.
func (e *engine) crashSweep(what string, prepare func(int) string, op func(id string)) {
	t := e.t
	delays := []time.Duration{0}
	for d := 2 * time.Millisecond; d <= 120*time.Millisecond; d += 6 * time.Millisecond {
		delays = append(delays, d)
	}
	outcomes := map[string]int{}
	for i, delay := range delays {
		id := prepare(i)
		done := make(chan struct{})
		go func() {
			defer close(done)
			op(id) // its connection may die with the daemon
		}()
		time.Sleep(delay)
		e.killDaemon()
		<-done
		e.start()
		outcomes[e.checkRecord(id)]++
		e.checkNoLeftovers(fmt.Sprintf("%s killed after %v", what, delay))
	}
	t.Logf("%s: daemon killed at %d moments; the container was then %v", what, len(delays), outcomes)
}

// try sends a request whose answer does not matter (its connection may
// die with the daemon).
func (e *engine) try(method, path string) {
	req, _ := http.NewRequest(method, "http://d/v1.41"+path, nil)
	if resp, err := e.http.Do(req); err == nil {
		resp.Body.Close()
	}
}

// checkRecord compares the daemon's record of container id with what
// runs, manages it to its end (stop, start, rm -f) and returns what the
// record said: "running", "created", "exited" or "removed".
func (e *engine) checkRecord(id string) string {
	t := e.t
	t.Helper()
	st, body := e.do("GET", "/containers/"+id+"/json", nil)
	if st == http.StatusNotFound {
		require.Empty(t, e.processesOf(id), "a removed container's processes")
		return "removed"
	}
	require.Equal(t, 200, st, "%s", body)
	c := e.inspect(id)
	if c.State.Running {
		require.False(t, processGone(c.State.Pid), "recorded running with pid %d, which is gone", c.State.Pid)
		require.Contains(t, e.processesOf(id), c.State.Pid, "its init in its cgroup")
		e.must(304, "POST", "/containers/"+id+"/start", nil, nil)
		e.must(204, "POST", "/containers/"+id+"/stop?t=0", nil, nil)
		require.True(t, processGone(c.State.Pid), "stopped, pid %d still runs", c.State.Pid)
	} else {
		require.Empty(t, e.processesOf(id), "recorded %s, yet processes run", c.State.Status)
		_, err := os.Stat(filepath.Join(e.execRoot, "runtime", id))
		require.True(t, os.IsNotExist(err), "recorded %s, yet the runtime has state (%v)", c.State.Status, err)
	}
	e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
	require.True(t, e.inspect(id).State.Running)
	e.must(204, "DELETE", "/containers/"+id+"?force=1", nil, nil)
	e.must(404, "GET", "/containers/"+id+"/json", nil, nil)
	if c.State.Running {
		return "running"
	}
	return c.State.Status
}

// processesOf lists the processes in container id's cgroups (v1: in
// every hierarchy; v2: the one tree).
func (e *engine) processesOf(id string) []int {
	seen := map[int]bool{}
	var pids []int
	files, _ := filepath.Glob("/sys/fs/cgroup/*" + e.cgroupParent + "/" + id + "/cgroup.procs")
	files = append(files, "/sys/fs/cgroup"+e.cgroupParent+"/"+id+"/cgroup.procs")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, w := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(w); err == nil && !seen[pid] && !processGone(pid) {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// checkNoLeftovers, with no container left, finds nothing of any: no
// process of the engine but the daemon and its one spare shim, no
// container cgroup, no veth, no runtime state, no shim socket, no mount.
func (e *engine) checkNoLeftovers(when string) {
	t := e.t
	t.Helper()
	var list []api.ContainerSummary
	e.must(200, "GET", "/containers/json?all=1", nil, &list)
	require.Empty(t, list, "%s: containers left", when)
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := e.strayProcesses()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes left:\n%s", when, strings.Join(left, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Empty(t, leftCgroups(e), "%s: cgroups left", when)
	require.Eventually(t, func() bool { return sameKeys(e.links(), map[string]bool{e.bridge: true}) }, 3*time.Second, 20*time.Millisecond,
		"%s: links left: %v", when, e.links())
	for _, dir := range []string{filepath.Join(e.execRoot, "runtime"), filepath.Join(e.execRoot, "shim"), filepath.Join(e.dataRoot, "containers")} {
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, en := range ents {
			names = append(names, en.Name())
		}
		require.Empty(t, names, "%s: left in %s", when, dir)
	}
	require.Empty(t, e.mounts(), "%s: mounts left", when)
}

// strayProcesses lists the processes that mention the engine's exec
// root, but for the daemon and its spare shim (a shim with no child
// whose parent is the daemon).
func (e *engine) strayProcesses() []string {
	var out []string
	for _, pid := range processesMentioning(e.execRoot) {
		if pid == e.cmd.Process.Pid {
			continue
		}
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(e.cmd.Process.Pid) && strings.Contains(cmdline(pid), " shim --spare ") &&
			!hasChildren(pid) && !e.shimHasContainer(pid) {
			continue
		}
		out = append(out, fmt.Sprintf("%d: %s", pid, cmdline(pid)))
	}
	return out
}

// shimHasContainer reports whether shim pid has taken a container: its
// stderr is then a container's shim.log.
func (e *engine) shimHasContainer(pid int) bool {
	target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", pid))
	return strings.HasSuffix(target, "shim.log")
}

// Concurrent removals never answer 500: many rm -f of many containers at
// once, and many of one container at once.
func TestEngineConcurrentRemove(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	const n, workers = 60, 20
	ids := make(chan string, n)
	for i := 0; i < n; i++ {
		id := e.create("", map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}, "HostConfig": map[string]any{"NetworkMode": "none"}})
		e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
		ids <- id
	}
	close(ids)
	var mu sync.Mutex
	statuses := map[int]int{}
	record := func(st int, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		statuses[st]++
		if st != 204 && st != 404 {
			t.Errorf("rm -f answered %d: %s", st, body)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				// each container twice at once
				var inner sync.WaitGroup
				for k := 0; k < 2; k++ {
					inner.Add(1)
					go func() {
						defer inner.Done()
						record(e.do("DELETE", "/containers/"+id+"?force=1", nil))
					}()
				}
				inner.Wait()
			}
		}()
	}
	wg.Wait()
	// and one container, removed by ten at once
	one := e.create("", map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}})
	e.must(204, "POST", "/containers/"+one+"/start", nil, nil)
	for k := 0; k < 10; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			record(e.do("DELETE", "/containers/"+one+"?force=1", nil))
		}()
	}
	wg.Wait()
	t.Logf("answers: %v", statuses)
	e.checkNoLeftovers("after the removals")
}
