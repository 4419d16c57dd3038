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
	daemonArgs   []string // more flags for the daemon (newEngineAt)
	cmd          *exec.Cmd
	http         *http.Client

	// networking of its own: the default bridge, the address pools, the
	// nftables table; links present before it started (leak check)
	bridge, bip, pool, nftTable string
	linksBefore                 map[string]bool

	// joinNS, when set, is a process whose mount namespace the next start
	// joins (a daemon restarted where the last one ran, as on a host)
	// rather than a new one; baseMounts are the mount points of the
	// daemon's namespace when it was made (leak check)
	joinNS     int
	baseMounts map[string]bool
}

var engineSeq atomic.Int64

func newEngine(t *testing.T) *engine { return newEngineAt(t, "") }

// newEngineWith starts a daemon with more flags.
func newEngineWith(t *testing.T, args ...string) *engine { return newEngineAt(t, "", args...) }

// newEngineAt starts a daemon whose exec root's name ends in suffix,
// with daemonArgs after the usual flags.
func newEngineAt(t *testing.T, suffix string, daemonArgs ...string) *engine {
	testutil.RequireRoot(t)
	n := engineSeq.Add(1)
	e := &engine{
		t:            t,
		dataRoot:     t.TempDir(),
		execRoot:     fmt.Sprintf("/run/minidock-test-%d-e%d%s", os.Getpid(), n, suffix),
		cgroupParent: fmt.Sprintf("/minidock-test-%d-e%d", os.Getpid(), n),
		daemonArgs:   daemonArgs,
	}
	e.sock = filepath.Join(e.execRoot, "d.sock")
	e.bridge = fmt.Sprintf("mdt%d", (int64(os.Getpid())%10000)*100+n%100)
	e.bip = fmt.Sprintf("10.213.%d.1/24", n%250+1)
	e.pool = fmt.Sprintf("base=10.%d.0.0/16,size=24", 214+n%40)
	e.nftTable = fmt.Sprintf("minidock_test_%d_%d", os.Getpid(), n)
	e.linksBefore = hostLinks()
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
		"-H", "unix://" + e.sock, "--cgroup-parent", e.cgroupParent,
		"--bridge", e.bridge, "--bip", e.bip, "--default-address-pool", e.pool,
		"--nft-table", e.nftTable, "--dns", "none"}
	if e.runtime != "" {
		args = append(args, "--runtime", e.runtime)
	}
	args = append(args, e.daemonArgs...)
	logf, err := os.OpenFile(e.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logf.Close()
	if e.joinNS != 0 {
		e.cmd = exec.Command("nsenter", append([]string{fmt.Sprintf("--mount=/proc/%d/ns/mnt", e.joinNS), "--", binary}, args...)...)
	} else {
		e.cmd = exec.Command(binary, args...)
		// Its own mount namespace (Go makes / private in it): the overlay
		// mounts of its containers stay out of the test process's table, which
		// other packages' tests, run at the same time, compare before and after.
		e.cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	}
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	// a binary built with -race (make test-race) writes what it finds to
	// race.<pid> there: the daemon's, and its shims', whose stderr is a
	// container's shim.log, gone with the container
	e.cmd.Env = append(os.Environ(), "GORACE=log_path="+filepath.Join(filepath.Dir(e.logPath), "race"))
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := e.http.Get("http://d/_ping"); err == nil {
			resp.Body.Close()
			if e.joinNS == 0 {
				e.baseMounts = map[string]bool{}
				for _, m := range e.allMounts() {
					e.baseMounts[m] = true
				}
			}
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
	var out []string
	for _, m := range e.allMounts() {
		if strings.HasPrefix(m, e.dataRoot) || strings.HasPrefix(m, e.execRoot) {
			out = append(out, m)
		}
	}
	return out
}

// allMounts lists the mount points of the daemon's mount namespace.
func (e *engine) allMounts() []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", e.cmd.Process.Pid))
	if err != nil {
		e.t.Fatalf("read the daemon's mounts: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}

// newMounts lists the mount points of the daemon's namespace made since
// it was (the data and exec roots aside: mounts() lists those).
func (e *engine) newMounts() []string {
	var out []string
	for _, m := range e.allMounts() {
		if !e.baseMounts[m] && !strings.HasPrefix(m, e.dataRoot) && !strings.HasPrefix(m, e.execRoot) {
			out = append(out, m)
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
		for _, m := range append(e.mounts(), e.newMounts()...) {
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
	e.checkNetworkLeaks()
	// a daemon built with -race (make test-race) reports races in its log,
	// or in the race.<pid> files of GORACE's log_path
	if strings.Contains(e.log(), "WARNING: DATA RACE") {
		t.Errorf("the daemon found a data race")
	}
	reports, _ := filepath.Glob(filepath.Join(filepath.Dir(e.logPath), "race.*"))
	for _, r := range reports {
		data, _ := os.ReadFile(r)
		t.Errorf("a data race (%s):\n%s", filepath.Base(r), data)
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", e.log())
	}
	os.RemoveAll(e.execRoot)
}

// checkNetworkLeaks, once the daemon has stopped with no container
// running: no link (bridge, veth) it made is left, and no nftables table.
func (e *engine) checkNetworkLeaks() {
	t := e.t
	deadline := time.Now().Add(3 * time.Second) // a dead namespace's veth goes asynchronously
	var leaked []string
	for {
		leaked = leaked[:0]
		for name := range hostLinks() {
			if !e.linksBefore[name] && daemonLink(name, e.bridge) {
				leaked = append(leaked, name)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range leaked {
		t.Errorf("leak: network link %s", name)
		exec.Command("ip", "link", "del", name).Run()
	}
	if out, err := exec.Command("nft", "list", "table", "inet", e.nftTable).CombinedOutput(); err == nil {
		t.Errorf("leak: nftables table inet %s:\n%s", e.nftTable, out)
		exec.Command("nft", "delete", "table", "inet", e.nftTable).Run()
	}
}

// daemonLink reports whether a link's name is one a daemon with default
// bridge bridge makes: that bridge, br-<12 hex> (a network's bridge) or
// md<12 hex> (a container's veth).
func daemonLink(name, bridge string) bool {
	hex12 := func(s string) bool {
		for _, r := range s {
			if !strings.ContainsRune("0123456789abcdef", r) {
				return false
			}
		}
		return len(s) == 12
	}
	return name == bridge || (strings.HasPrefix(name, "br-") && hex12(name[3:])) || (strings.HasPrefix(name, "md") && hex12(name[2:]))
}

// hostLinks lists the host's network interfaces.
func hostLinks() map[string]bool {
	out := map[string]bool{}
	ents, _ := os.ReadDir("/sys/class/net")
	for _, en := range ents {
		out[en.Name()] = true
	}
	return out
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

// processReport lists the engine's processes (shims, runtimes, inits)
// with the kernel function each waits in, for a failure message.
func (e *engine) processReport() string {
	var b strings.Builder
	for _, pid := range processesMentioning(e.execRoot) {
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		fmt.Fprintf(&b, "process %d (wchan %s, children %s): %s\n", pid, wchan, children, cmdline(pid))
		for _, c := range strings.Fields(string(children)) {
			st, _ := os.ReadFile("/proc/" + c + "/stat")
			fmt.Fprintf(&b, "  child %s\n", st)
		}
	}
	return b.String()
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
func busyboxTar(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	testutil.MakeBusyboxRootfs(t, dir)
	return dirTar(t, dir)
}

// dirTar is a tarball of the tree at dir.
func dirTar(t testing.TB, dir string) []byte {
	t.Helper()
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

// cli runs the minidock client against the engine; it returns the
// combined output and the exit code.
func (e *engine) cli(args ...string) (string, int) {
	e.t.Helper()
	return e.command(exec.Command(binary, append([]string{"-H", "unix://" + e.sock}, args...)...))
}

// dockerCLI is the official docker CLI, when installed.
const dockerCLI = "/usr/local/bin/docker"

// requireDockerCLI skips the test when the docker CLI is not installed.
func requireDockerCLI(t *testing.T) {
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Skipf("%s not installed: skipping the docker CLI scenario", dockerCLI)
	}
}

// docker runs the docker CLI against the engine, with a config dir of its
// own; it returns the combined output and the exit code.
func (e *engine) docker(args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(dockerCLI, append([]string{"-H", "unix://" + e.sock}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+e.t.TempDir())
	return e.command(cmd)
}

func (e *engine) command(cmd *exec.Cmd) (string, int) {
	e.t.Helper()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return string(out), 0
}

// mustCLI runs the client and fails the test unless it exits 0.
func (e *engine) mustCLI(args ...string) string {
	e.t.Helper()
	out, code := e.cli(args...)
	if code != 0 {
		e.t.Fatalf("minidock %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	return out
}
