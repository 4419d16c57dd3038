package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
	"minidock/cgroup"
	"minidock/check"
)

func TestEnginePingVersionInfo(t *testing.T) {
	e := newEngine(t)
	for _, method := range []string{"HEAD", "GET"} {
		req, _ := http.NewRequest(method, "http://d/_ping", nil)
		resp, err := e.http.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, api.Version, resp.Header.Get("Api-Version"))
		require.Equal(t, "linux", resp.Header.Get("Ostype"))
		require.Equal(t, "false", resp.Header.Get("Docker-Experimental"))
	}
	var v api.VersionResponse
	e.must(200, "GET", "/version", nil, &v)
	require.Equal(t, api.Version, v.APIVersion)
	require.Equal(t, api.MinVersion, v.MinAPIVersion)
	var info api.Info
	e.must(200, "GET", "/info", nil, &info)
	require.Equal(t, "inactive", info.Swarm.LocalNodeState)
	require.Equal(t, e.dataRoot, info.DockerRootDir)

	// a second daemon on the same data root is refused
	out, err := exec.Command(binary, "daemon", "--data-root", e.dataRoot, "--exec-root", e.execRoot+"-2",
		"-H", "unix://"+e.execRoot+"-2/d.sock").CombinedOutput()
	os.RemoveAll(e.execRoot + "-2")
	require.Error(t, err)
	require.Contains(t, string(out), "in use by another daemon")

	// a daemon that cannot listen (another answers on its socket) says so
	// before it makes any directory
	fresh := filepath.Join(t.TempDir(), "fresh")
	out, err = exec.Command(binary, "daemon", "--data-root", fresh+"/data", "--exec-root", fresh+"/exec",
		"-H", "unix://"+e.sock).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "another daemon answers on this socket")
	_, err = os.Stat(fresh)
	require.True(t, os.IsNotExist(err), "it made %s", fresh)
	// the daemon says where it listens, its roots, runtime and cgroups
	require.Contains(t, e.log(), "listening on unix://"+e.sock+"; data root "+e.dataRoot+", exec root "+e.execRoot)
	require.Contains(t, e.log(), ", cgroups ")
}

// /info's Warnings carry `minidock check`'s warnings, as Docker's daemon
// lists what its host lacks, and `docker info` prints them. On a host with
// a hybrid or legacy cgroup hierarchy (this one) there is at least one.
func TestEngineInfoWarnings(t *testing.T) {
	e := newEngine(t)
	want := check.Warnings(check.Run(check.System()))
	if m, err := cgroup.DetectMode(); err == nil && m != cgroup.Unified {
		require.NotEmpty(t, want, "cgroup mode %v and no warning from check", m)
	}
	var info api.Info
	e.must(200, "GET", "/info", nil, &info)
	for _, w := range want {
		require.Contains(t, info.Warnings, w)
	}
	requireDockerCLI(t)
	out, code := e.docker("info")
	require.Equal(t, 0, code, out)
	for _, w := range want {
		require.Contains(t, out, w)
	}
}

func TestEngineRunLifecycle(t *testing.T) {
	e := newEngine(t)
	imageID := e.importBusybox("mdtest/busybox:1")
	id := e.create("life", map[string]any{
		"Image": "mdtest/busybox:1", "Cmd": []string{"sh", "-c", "echo out; echo err >&2; echo $GREETING; exit 3"},
		"Env": []string{"GREETING=hello"}, "Labels": map[string]string{"a": "b"},
		"HostConfig": map[string]any{"Memory": 64 << 20, "PidsLimit": 50},
	})
	c := e.inspect("life")
	require.Equal(t, id, c.ID)
	require.Equal(t, "created", c.State.Status)
	require.Equal(t, imageID, c.Image)
	require.NotNil(t, c.Config)

	// wait's headers come before start, as the docker CLI needs
	wait := e.request("POST", "/containers/"+id+"/wait?condition=next-exit", nil)
	require.Equal(t, 200, wait.StatusCode)
	e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
	require.Equal(t, 3, waitCode(t, wait))

	c = e.inspect(id)
	require.Equal(t, "exited", c.State.Status)
	require.Equal(t, 3, c.State.ExitCode)
	require.False(t, c.State.Running)
	require.NotEqual(t, "0001-01-01T00:00:00Z", c.State.FinishedAt)
	out, errs := e.logs(id, "")
	require.Equal(t, "out\nhello\n", out)
	require.Equal(t, "err\n", errs)
	// stdout and stderr are read apart, so their lines' order in the log
	// is not fixed: take the tail of stdout alone
	st, data := e.do("GET", "/containers/"+id+"/logs?stdout=1&tail=1", nil)
	require.Equal(t, 200, st)
	var tail bytes.Buffer
	require.NoError(t, api.Demux(bytes.NewReader(data), &tail, io.Discard))
	require.Equal(t, "hello\n", tail.String())

	var list []api.ContainerSummary
	e.must(200, "GET", `/containers/json?all=1&filters={"label":["a=b"]}`, nil, &list)
	require.Len(t, list, 1)
	require.Equal(t, []string{"/life"}, list[0].Names)
	e.must(200, "GET", "/containers/json", nil, &list)
	require.Len(t, list, 0, "only running ones without all=1")

	// start again: the log grows
	e.must(204, "POST", "/containers/life/start", nil, nil)
	require.Equal(t, 3, waitCode(t, e.request("POST", "/containers/life/wait", nil)))
	out, _ = e.logs(id, "")
	require.Equal(t, "out\nhello\nout\nhello\n", out)

	e.must(204, "DELETE", "/containers/life", nil, nil)
	e.must(404, "GET", "/containers/"+id+"/json", nil, nil)
	_, err := os.Stat(filepath.Join(e.dataRoot, "containers", id))
	require.True(t, os.IsNotExist(err), "container dir left: %v", err)
	require.Empty(t, e.mounts(), "mounts left")
}

func TestEngineStopKillRemove(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	id := e.create("sleeper", map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}})
	e.must(204, "POST", "/containers/sleeper/start", nil, nil)
	e.must(304, "POST", "/containers/sleeper/start", nil, nil)
	c := e.inspect(id)
	require.True(t, c.State.Running)
	require.Greater(t, c.State.Pid, 0)
	pid := c.State.Pid
	require.Contains(t, e.mounts(), filepath.Join(e.dataRoot, "containers", id, "merged"), "the rootfs is mounted in the daemon's namespace")

	e.must(409, "DELETE", "/containers/sleeper", nil, nil)
	// sleep as pid 1 ignores SIGTERM: stop has to SIGKILL after t
	start := time.Now()
	e.must(204, "POST", "/containers/sleeper/stop?t=1", nil, nil)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	c = e.inspect(id)
	require.Equal(t, "exited", c.State.Status)
	require.Equal(t, 137, c.State.ExitCode)
	require.True(t, processGone(pid))
	e.must(304, "POST", "/containers/sleeper/stop", nil, nil)
	e.must(409, "POST", "/containers/sleeper/kill", nil, nil)

	// restart: of a stopped container, a start; of a running one, stop
	// (t=0: SIGKILL at once) then start
	e.must(204, "POST", "/containers/sleeper/restart", nil, nil)
	pid2 := e.inspect(id).State.Pid
	require.NotEqual(t, pid, pid2)
	e.must(204, "POST", "/containers/sleeper/restart?t=0", nil, nil)
	c = e.inspect(id)
	require.Equal(t, "running", c.State.Status)
	require.NotEqual(t, pid2, c.State.Pid)
	require.True(t, processGone(pid2))

	// kill with a signal the program handles; rm -f of a running one
	id2 := e.create("trap", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done"}})
	e.must(204, "POST", "/containers/trap/start", nil, nil)
	require.Eventually(t, func() bool { // the shell has set its trap
		out, _ := e.logs(id2, "")
		return out == "ready\n"
	}, 10*time.Second, 20*time.Millisecond)
	wait := e.request("POST", "/containers/trap/wait", nil)
	e.must(204, "POST", "/containers/trap/kill?signal=USR1", nil, nil)
	require.Equal(t, 42, waitCode(t, wait))
	e.must(204, "POST", "/containers/trap/start", nil, nil)
	e.must(204, "DELETE", "/containers/"+id2+"?force=1", nil, nil)
	e.must(204, "DELETE", "/containers/sleeper?force=1", nil, nil)
}

func TestEngineErrors(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	st, body := e.do("POST", "/containers/create", map[string]any{"Image": "nosuchimage"})
	require.Equal(t, 404, st)
	require.Contains(t, string(body), `"message":"No such image: nosuchimage"`)
	st, _ = e.do("POST", "/containers/create", []byte(`{"Image": "busybox", "Cmd": [`))
	require.Equal(t, 400, st)
	st, _ = e.do("POST", "/containers/create", []byte(`{"Image": "busybox", "Cmd": 5}`))
	require.Equal(t, 400, st, "a field of the wrong type")
	st, _ = e.do("POST", "/containers/create", map[string]any{"Image": "Bad:Ref!"})
	require.Equal(t, 400, st)
	st, _ = e.do("POST", "/containers/create", bytes.Repeat([]byte(" "), 2<<20))
	require.Equal(t, 413, st)
	st, _ = e.do("POST", "/containers/create?name=bad/name", map[string]any{"Image": "busybox"})
	require.Equal(t, 400, st)
	// a field the engine does not apply is refused, named, not dropped
	st, body = e.do("POST", "/containers/create", map[string]any{"Image": "busybox", "Cmd": []string{"true"},
		"HostConfig": map[string]any{"BlkioWeight": 300}})
	require.Equal(t, 400, st)
	require.Contains(t, string(body), "HostConfig.BlkioWeight")

	e.create("taken", map[string]any{"Image": "busybox", "Cmd": []string{"true"}})
	// attach's logs=1 (replay the past output) is refused, not ignored
	st, body = e.do("POST", "/containers/taken/attach?stream=1&stdout=1&logs=1", nil)
	require.Equal(t, 400, st, string(body))
	require.Contains(t, string(body), "logs=1")
	st, body = e.do("POST", "/containers/create?name=taken", map[string]any{"Image": "busybox", "Cmd": []string{"true"}})
	require.Equal(t, 409, st)
	require.Contains(t, string(body), "already in use")

	for _, p := range []string{"/containers/nosuch/json", "/containers/nosuch/logs?stdout=1"} {
		st, body = e.do("GET", p, nil)
		require.Equal(t, 404, st, p)
		require.Contains(t, string(body), "No such container: nosuch")
	}
	e.must(404, "POST", "/containers/nosuch/start", nil, nil)
	e.must(404, "DELETE", "/containers/nosuch", nil, nil)
	e.must(404, "GET", "/images/nosuch/json", nil, nil)
	e.must(404, "DELETE", "/images/nosuch", nil, nil)
	e.must(404, "GET", "/no/such/endpoint", nil, nil)
	st, _ = e.do("POST", "/containers/taken/wait?condition=bogus", nil)
	require.Equal(t, 400, st)

	// a version above ours, or below the minimum, is refused
	for _, v := range []string{"/v9.99/version", "/v1.12/version"} {
		resp, err := e.http.Get("http://d" + v)
		require.NoError(t, err)
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 400, resp.StatusCode, v)
		var msg api.ErrorResponse
		require.NoError(t, json.Unmarshal(data, &msg))
		require.NotEmpty(t, msg.Message)
	}

	// a program that does not exist: start fails with 127's message and
	// the container is marked exited 127
	id := e.create("", map[string]any{"Image": "busybox", "Cmd": []string{"nosuchprogram"}})
	st, body = e.do("POST", "/containers/"+id+"/start", nil)
	require.Equal(t, 500, st)
	require.Contains(t, string(body), "executable file not found")
	c := e.inspect(id)
	require.Equal(t, "exited", c.State.Status)
	require.Equal(t, 127, c.State.ExitCode)
	// ... and with AutoRemove it is removed anyway (docker run --rm waits for that)
	id = e.create("", map[string]any{"Image": "busybox", "Cmd": []string{"nosuchprogram"}, "HostConfig": map[string]any{"AutoRemove": true}})
	wait := e.request("POST", "/containers/"+id+"/wait?condition=removed", nil)
	e.must(500, "POST", "/containers/"+id+"/start", nil, nil)
	require.Equal(t, 127, waitCode(t, wait))
	e.must(404, "GET", "/containers/"+id+"/json", nil, nil)
}

func TestEngineAttachStdin(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	id := e.create("cat", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "cat; echo done >&2"},
		"OpenStdin": true, "StdinOnce": true, "AttachStdin": true})
	conn, br := e.attach(id, "stream=1&stdin=1&stdout=1&stderr=1")
	defer conn.Close()
	wait := e.request("POST", "/containers/"+id+"/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
	_, err := conn.Write([]byte("hello\n"))
	require.NoError(t, err)
	require.NoError(t, conn.CloseWrite()) // closes the container's stdin
	var out, errs bytes.Buffer
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	require.NoError(t, api.Demux(br, &out, &errs))
	require.Equal(t, "hello\n", out.String())
	require.Equal(t, "done\n", errs.String())
	require.Equal(t, 0, waitCode(t, wait))
	logOut, logErr := e.logs(id, "")
	require.Equal(t, "hello\n", logOut)
	require.Equal(t, "done\n", logErr)
}

func TestEngineImages(t *testing.T) {
	e := newEngine(t)
	id := e.importBusybox("busybox:latest")
	var list []api.ImageSummary
	e.must(200, "GET", "/images/json", nil, &list)
	require.Len(t, list, 1)
	require.Equal(t, id, list[0].ID)
	require.Equal(t, []string{"busybox:latest"}, list[0].RepoTags)
	e.must(201, "POST", "/images/busybox/tag?repo=localhost:5000/bb&tag=v1", nil, nil)
	var img api.ImageInspect
	e.must(200, "GET", "/images/localhost:5000/bb:v1/json", nil, &img)
	require.Equal(t, id, img.ID)
	require.ElementsMatch(t, []string{"busybox:latest", "localhost:5000/bb:v1"}, img.RepoTags)

	// save, remove, load back: same image ID
	st, archive := e.do("GET", "/images/get?names=busybox:latest", nil)
	require.Equal(t, 200, st)
	var del []api.ImageDeleteItem
	e.must(200, "DELETE", "/images/localhost:5000/bb:v1", nil, &del)
	require.Equal(t, []api.ImageDeleteItem{{Untagged: "localhost:5000/bb:v1"}}, del)
	// in use by a container: refused without force
	e.create("user", map[string]any{"Image": "busybox", "Cmd": []string{"true"}})
	e.must(409, "DELETE", "/images/"+id, nil, nil)
	e.must(204, "DELETE", "/containers/user", nil, nil)
	e.must(200, "DELETE", "/images/busybox", nil, &del)
	e.must(200, "GET", "/images/json", nil, &list)
	require.Len(t, list, 0)
	st, body := e.do("POST", "/images/load?quiet=1", archive)
	require.Equal(t, 200, st, string(body))
	require.Contains(t, string(body), `Loaded image: busybox:latest`)
	e.must(200, "GET", "/images/busybox/json", nil, &img)
	require.Equal(t, id, img.ID)
	st, _ = e.do("POST", "/images/load", []byte("not a tar"))
	require.Equal(t, 400, st)
}

// The daemon dies (kill -9) and comes back: a running container keeps
// running, listed and logging; one that exited meanwhile shows its code.
func TestEngineDaemonRestart(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.create("long", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"}})
	shortID := e.create("short", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "sleep 1; exit 4"}})
	e.must(204, "POST", "/containers/long/start", nil, nil)
	e.must(204, "POST", "/containers/short/start", nil, nil)
	pid := e.inspect("long").State.Pid

	e.killDaemon()
	// short exits while no daemon runs: its shim records the status
	shortExit := filepath.Join(e.dataRoot, "containers", shortID, "exit.json")
	require.Eventually(t, func() bool { _, err := os.Stat(shortExit); return err == nil }, 10*time.Second, 20*time.Millisecond)
	require.False(t, processGone(pid), "the container died with the daemon")
	e.start()

	c := e.inspect("long")
	require.Equal(t, "running", c.State.Status)
	require.Equal(t, pid, c.State.Pid)
	var list []api.ContainerSummary
	e.must(200, "GET", "/containers/json", nil, &list)
	require.Len(t, list, 1)
	require.Equal(t, "/long", list[0].Names[0])
	s := e.inspect("short")
	require.Equal(t, "exited", s.State.Status)
	require.Equal(t, 4, s.State.ExitCode)

	before, _ := e.logs("long", "")
	time.Sleep(500 * time.Millisecond)
	after, _ := e.logs("long", "")
	require.Greater(t, len(after), len(before), "the log stopped growing")

	// stop after the restart: the new daemon sees the exit
	e.must(204, "POST", "/containers/long/stop?t=5", nil, nil)
	require.Equal(t, "exited", e.inspect("long").State.Status)
	require.True(t, processGone(pid))
	e.must(204, "DELETE", "/containers/long", nil, nil)
	e.must(204, "DELETE", "/containers/short", nil, nil)
	waitNoProcesses(e.execRoot+"/shim/", 3*time.Second)
	require.Empty(t, processesMentioning(e.execRoot+"/shim/"), "shims left")
	require.Empty(t, e.mounts(), "mounts left")
	entries, _ := os.ReadDir(filepath.Join(e.dataRoot, "containers"))
	require.Empty(t, entries, "container files left")
	require.Empty(t, leftCgroups(e), "cgroups left")
}

// leftCgroups lists container cgroups under the engine's cgroup parent.
func leftCgroups(e *engine) []string {
	var left []string
	for _, dir := range cgroupDirs(strings.TrimPrefix(e.cgroupParent, "/")) {
		if filepath.Base(dir) != filepath.Base(e.cgroupParent) {
			continue
		}
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			if en.IsDir() {
				left = append(left, filepath.Join(dir, en.Name()))
			}
		}
	}
	return left
}

// The official docker CLI against our daemon, when it is installed.
func TestEngineDockerCLI(t *testing.T) {
	requireDockerCLI(t)
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	run := e.docker
	out, code := run("run", "--rm", "--pull", "never", "busybox", "echo", "hi")
	require.Equal(t, 0, code, out)
	require.Equal(t, "hi\n", out)
	out, code = run("run", "--rm", "busybox", "sh", "-c", "exit 3")
	require.Equal(t, 3, code, out)
	out, code = run("run", "--rm", "busybox", "nosuchprogram")
	require.Equal(t, 127, code, out)
	out, code = run("run", "-d", "--name", "bg", "busybox", "sh", "-c", "echo started; sleep 300")
	require.Equal(t, 0, code, out)
	require.Eventually(t, func() bool {
		out, _ := run("logs", "bg")
		return out == "started\n"
	}, 5*time.Second, 50*time.Millisecond)
	out, code = run("ps")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "bg")
	out, code = run("exec", "bg", "sh", "-c", "echo in exec; exit 6")
	require.Equal(t, 6, code, out)
	require.Equal(t, "in exec\n", out)
	out, code = run("rm", "-f", "bg")
	require.Equal(t, 0, code, out)
	out, code = run("ps", "-a", "-q")
	require.Equal(t, 0, code, out)
	require.Empty(t, strings.TrimSpace(out))
}

// With a TTY: raw streams, stdin through the terminal, resize, raw logs.
func TestEngineTTY(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	id := e.create("tty", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "read x; stty size; echo got $x"},
		"Tty": true, "OpenStdin": true, "AttachStdin": true})
	conn, br := e.attachMedia(id, "stream=1&stdin=1&stdout=1&stderr=1", api.MediaRaw)
	defer conn.Close()
	e.must(409, "POST", "/containers/"+id+"/resize?h=30&w=100", nil, nil)
	wait := e.request("POST", "/containers/"+id+"/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
	e.must(200, "POST", "/containers/"+id+"/resize?h=30&w=100", nil, nil)
	_, err := conn.Write([]byte("go\n"))
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, _ := io.ReadAll(br)
	require.Contains(t, string(out), "30 100\r\n")
	require.Contains(t, string(out), "got go\r\n")
	require.Equal(t, 0, waitCode(t, wait))
	st, logs := e.do("GET", "/containers/"+id+"/logs?stdout=1&stderr=1", nil)
	require.Equal(t, 200, st)
	require.Contains(t, string(logs), "got go\r\n", "raw, not framed")
	require.NotEqual(t, byte(1), logs[0])
}

// Many containers at once, from parallel clients.
func TestEngineConcurrentRuns(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	// One container first, so that the parent cgroup exists: on cgroup v1,
	// cgroup.(*v1).Create copies cpuset.cpus/mems only into directories it
	// made itself, so two runtimes making a fresh parent at once can leave
	// a child with an empty cpuset ("no space left on device"; reported).
	warm := e.create("", map[string]any{"Image": "busybox", "Cmd": []string{"true"}})
	wait := e.request("POST", "/containers/"+warm+"/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/"+warm+"/start", nil, nil)
	require.Equal(t, 0, waitCode(t, wait))
	e.must(204, "DELETE", "/containers/"+warm, nil, nil)
	const n = 20 // the issue asks for 20 at once
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			errs <- func() error {
				body, _ := json.Marshal(map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "echo $0", strconv.Itoa(i)}})
				resp, err := e.http.Post("http://d/containers/create", "application/json", bytes.NewReader(body))
				if err != nil {
					return err
				}
				var cr api.CreateResponse
				err = json.NewDecoder(resp.Body).Decode(&cr)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 201 {
					return fmt.Errorf("create %d: %d %v", i, resp.StatusCode, err)
				}
				wait, err := e.http.Post("http://d/containers/"+cr.ID+"/wait?condition=next-exit", "", nil)
				if err != nil {
					return err
				}
				defer wait.Body.Close()
				resp, err = e.http.Post("http://d/containers/"+cr.ID+"/start", "", nil)
				if err != nil {
					return err
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 204 {
					return fmt.Errorf("start %d: %d %s", i, resp.StatusCode, msg)
				}
				var w api.WaitResponse
				if err := json.NewDecoder(wait.Body).Decode(&w); err != nil || w.StatusCode != 0 {
					return fmt.Errorf("wait %d: %+v %v", i, w, err)
				}
				return nil
			}()
		}(i)
	}
	for i := 0; i < n; i++ {
		require.NoError(t, <-errs)
	}
	var list []api.ContainerSummary
	e.must(200, "GET", "/containers/json?all=1", nil, &list)
	require.Len(t, list, n)
	for _, c := range list {
		require.Equal(t, "exited", c.State)
		out, _ := e.logs(c.ID, "")
		require.Equal(t, strings.TrimPrefix(c.Command, "sh -c echo $0 ")+"\n", out)
	}
}
