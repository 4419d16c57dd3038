package tests

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"minidock/api"
	"minidock/internal/testutil"
)

// engine is one `minidock daemon` under test, on its own data root, exec
// root, socket and cgroup parent, so that tests (and other engineers'
// runs) never meet.
type engine struct {
	t            *testing.T
	dataRoot     string
	execRoot     string
	sock         string
	cgroupParent string
	logPath      string
	runtime      string
	cmd          *exec.Cmd
	http         *http.Client
}

var engineSeq atomic.Int64

func newEngine(t *testing.T) *engine {
	testutil.RequireRoot(t)
	n := engineSeq.Add(1)
	e := &engine{
		t:            t,
		dataRoot:     t.TempDir(),
		execRoot:     fmt.Sprintf("/run/minidock-test-%d-e%d", os.Getpid(), n),
		cgroupParent: fmt.Sprintf("/minidock-test-%d-e%d", os.Getpid(), n),
	}
	e.sock = filepath.Join(e.execRoot, "d.sock")
	e.logPath = filepath.Join(t.TempDir(), "daemon.log")
	switch name := os.Getenv("MINIDOCK_TEST_RUNTIME"); name {
	case "", "minidock":
	default:
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("runtime %s not installed: %v", name, err)
		}
		e.runtime = p
	}
	e.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		},
	}}
	t.Cleanup(e.cleanup)
	e.start()
	return e
}

// start runs the daemon and waits until it answers /_ping.
func (e *engine) start() {
	e.t.Helper()
	args := []string{"daemon", "--data-root", e.dataRoot, "--exec-root", e.execRoot,
		"-H", "unix://" + e.sock, "--cgroup-parent", e.cgroupParent}
	if e.runtime != "" {
		args = append(args, "--runtime", e.runtime)
	}
	logf, err := os.OpenFile(e.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logf.Close()
	e.cmd = exec.Command(binary, args...)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	// Its own mount namespace (Go makes / private in it): the overlay
	// mounts of its containers stay out of the test process's table, which
	// other packages' tests, run at the same time, compare before and after.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := e.http.Get("http://d/_ping"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("daemon did not answer on %s: %s", e.sock, e.log())
}

func (e *engine) log() string {
	data, _ := os.ReadFile(e.logPath)
	return string(data)
}

// stop ends the daemon with SIGTERM (containers keep running).
func (e *engine) stop() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill()
		<-done
		e.t.Errorf("daemon ignored SIGTERM for 10s")
	}
	e.cmd = nil
}

// mounts lists the mounts under the data or exec root in the daemon's
// mount namespace.
func (e *engine) mounts() []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", e.cmd.Process.Pid))
	if err != nil {
		e.t.Fatalf("read the daemon's mounts: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (strings.HasPrefix(f[4], e.dataRoot) || strings.HasPrefix(f[4], e.execRoot)) {
			out = append(out, f[4])
		}
	}
	return out
}

// killDaemon ends the daemon with SIGKILL, as a crash would.
func (e *engine) killDaemon() {
	e.cmd.Process.Kill()
	e.cmd.Wait()
	e.cmd = nil
}

// cleanup removes every container through the API, stops the daemon and
// checks that nothing is left: mounts, shims, cgroups, exec root.
func (e *engine) cleanup() {
	t := e.t
	if e.cmd != nil {
		var list []api.ContainerSummary
		if st, body := e.do("GET", "/containers/json?all=1", nil); st == 200 && json.Unmarshal(body, &list) == nil {
			for _, c := range list {
				if st, body := e.do("DELETE", "/containers/"+c.ID+"?force=1", nil); st != 204 {
					t.Errorf("cleanup: rm -f %s: %d %s", c.ID, st, body)
				}
			}
		}
		for _, m := range e.mounts() {
			t.Errorf("leak: mount %s", m)
		}
		e.stop() // the daemon's mount namespace goes with it
	}
	for _, m := range testutil.Mounts(t) {
		if strings.HasPrefix(m, e.dataRoot) || strings.HasPrefix(m, e.execRoot) {
			t.Errorf("leak: mount %s", m)
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	waitNoProcesses(e.execRoot, 3*time.Second)
	for _, pid := range processesMentioning(e.execRoot) {
		t.Errorf("leak: process %d still runs: %s", pid, cmdline(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// the parent cgroup is ours to remove; a child left in it is a leak
	for _, dir := range cgroupDirs(strings.TrimPrefix(e.cgroupParent, "/")) {
		if filepath.Base(dir) != filepath.Base(e.cgroupParent) {
			continue
		}
		if err := os.Remove(dir); err != nil {
			entries, _ := os.ReadDir(dir)
			for _, en := range entries {
				if en.IsDir() {
					t.Errorf("leak: cgroup %s/%s", dir, en.Name())
					os.Remove(filepath.Join(dir, en.Name()))
				}
			}
			os.Remove(dir)
		}
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", e.log())
	}
	os.RemoveAll(e.execRoot)
}

// waitNoProcesses waits up to timeout for the processes whose command
// line mentions s to end (a shim exits just after its container).
func waitNoProcesses(s string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for len(processesMentioning(s)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

func processesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, en := range entries {
		var pid int
		if _, err := fmt.Sscanf(en.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid), s) && !processGone(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(data), "\x00", " ")
}

// do sends one request and returns the status and body.
func (e *engine) do(method, path string, body any) (int, []byte) {
	e.t.Helper()
	resp := e.request(method, path, body)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// request sends one request and returns the response once its headers
// have come; body is JSON-encoded unless it is an io.Reader or []byte.
func (e *engine) request(method, path string, body any) *http.Response {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		r = b
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://d/v1.41"+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", method, path, err, e.log())
	}
	return resp
}

// must sends a request that has to answer with status want, and decodes
// the JSON reply into out when out is not nil.
func (e *engine) must(want int, method, path string, body, out any) {
	e.t.Helper()
	st, data := e.do(method, path, body)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
}

// importBusybox imports a busybox rootfs tarball as ref.
func (e *engine) importBusybox(ref string) string {
	e.t.Helper()
	repo, tag, _ := strings.Cut(ref, ":")
	var msg api.JSONMessage
	e.must(200, "POST", "/images/create?fromSrc=-&repo="+repo+"&tag="+tag, busyboxTar(e.t), &msg)
	if !strings.HasPrefix(msg.Status, "sha256:") {
		e.t.Fatalf("import answered %+v", msg)
	}
	return msg.Status
}

// busyboxTar is a tarball of testutil's busybox root filesystem.
func busyboxTar(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	testutil.MakeBusyboxRootfs(t, dir)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name, _ = filepath.Rel(dir, p)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// create makes a container and returns its ID.
func (e *engine) create(name string, cfg map[string]any) string {
	e.t.Helper()
	var resp api.CreateResponse
	path := "/containers/create"
	if name != "" {
		path += "?name=" + name
	}
	e.must(201, "POST", path, cfg, &resp)
	return resp.ID
}

func (e *engine) inspect(id string) api.ContainerJSON {
	e.t.Helper()
	var c api.ContainerJSON
	e.must(200, "GET", "/containers/"+id+"/json", nil, &c)
	return c
}

// logs returns a container's stdout and stderr, demultiplexed.
func (e *engine) logs(id, query string) (string, string) {
	e.t.Helper()
	st, data := e.do("GET", "/containers/"+id+"/logs?stdout=1&stderr=1"+query, nil)
	if st != 200 {
		e.t.Fatalf("logs: %d %s", st, data)
	}
	var out, errb bytes.Buffer
	if err := api.Demux(bytes.NewReader(data), &out, &errb); err != nil {
		e.t.Fatalf("logs: %v", err)
	}
	return out.String(), errb.String()
}

// waitCode reads a wait response's status code.
func waitCode(t *testing.T, resp *http.Response) int {
	t.Helper()
	defer resp.Body.Close()
	var w api.WaitResponse
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		t.Fatalf("wait: %v", err)
	}
	return w.StatusCode
}

// attach hijacks POST /containers/{id}/attach and returns the connection
// and a reader positioned after the 101 reply.
func (e *engine) attach(id, query string) (*net.UnixConn, *bufio.Reader) {
	return e.attachMedia(id, query, api.MediaMultiplexed)
}

func (e *engine) attachMedia(id, query, media string) (*net.UnixConn, *bufio.Reader) {
	e.t.Helper()
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1.41/containers/%s/attach?%s HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n", id, query)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Content-Type") != media {
		e.t.Fatalf("attach: %s %v", resp.Status, resp.Header)
	}
	return conn.(*net.UnixConn), br
}
