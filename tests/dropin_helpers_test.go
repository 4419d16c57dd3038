package tests

// The callers of runc that the drop-in tests start: Debian's dockerd, and
// containerd alone (ctr, and its CRI plugin driven by crictl). Each runs as
// root on private sockets, roots and state directories, in a mount
// namespace of its own; the test stops it by pid and checks that nothing is
// left (processes, cgroups, mounts, runtime state, links, nftables rules,
// host paths). docs/drop-in.md describes what they call.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

// dropinSeq numbers the peers of one test process (names, subnets).
var dropinSeq atomic.Int64

// skipUnlessDropin skips a drop-in test when it cannot mean anything: not
// root, a tool missing, or under `make test-runc` (these tests run runc
// themselves, beside minidock, in every run).
func skipUnlessDropin(tb testing.TB, tools ...string) {
	tb.Helper()
	testutil.RequireRoot(tb)
	if os.Getenv("MINIDOCK_TEST_RUNTIME") != "" {
		tb.Skip("the drop-in tests run runc and minidock side by side already")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s not installed (scripts/install-deps.sh installs it): %v", tool, err)
		}
	}
}

// dropinRuntime is one runtime handed to an engine as a single path, where
// runc would be: runc itself, or minidock's runtime through a link named
// minidock-runtime (cmd/minidock dispatches on that name). When logged,
// the path is a wrapper script that appends each call's arguments to a
// file first.
type dropinRuntime struct {
	name  string // "runc" or "minidock": also the CRI handler's and dockerd's runtime name
	path  string // what the engine is told
	calls string // the wrapper's log of calls ("" when not logged)
}

// dropinRuntimes are runc, then minidock's runtime, in dir. With logged,
// each goes through a wrapper that logs its calls.
func dropinRuntimes(tb testing.TB, dir string, logged bool) []dropinRuntime {
	tb.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		tb.Skipf("runc not installed: %v", err)
	}
	link := filepath.Join(dir, "minidock-runtime")
	if err := os.Symlink(binary, link); err != nil {
		tb.Fatal(err)
	}
	rts := []dropinRuntime{{name: "runc", path: runc}, {name: "minidock", path: link}}
	if !logged {
		return rts
	}
	for i, r := range rts {
		wrapper := filepath.Join(dir, r.name+"-logged")
		r.calls = filepath.Join(dir, r.name+".calls")
		script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$*\" >> %s\nexec %s \"$@\"\n", r.calls, r.path)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			tb.Fatal(err)
		}
		r.path = wrapper
		rts[i] = r
	}
	return rts
}

// callLog returns the calls logged so far and empties the log.
func (r dropinRuntime) callLog() []string {
	data, _ := os.ReadFile(r.calls)
	os.Truncate(r.calls, 0)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// callForms are the distinct forms of a runtime's calls, sorted: each
// call's command word, its flags without their values and, for kill, the
// signal (ids and paths differ from run to run).
func callForms(calls []string) []string {
	seen := map[string]bool{}
	for _, call := range calls {
		f := strings.Fields(call)
		var form []string
		command := ""
		for i := 0; i < len(f); i++ {
			switch w := f[i]; {
			case strings.HasPrefix(w, "-"):
				name, _, inline := strings.Cut(w, "=")
				form = append(form, name)
				if !inline && valueFlags[name] {
					i++
				}
			case command == "":
				command = w
				form = append(form, w)
			case command == "kill" && i == len(f)-1:
				form = append(form, w)
			}
		}
		seen[strings.Join(form, " ")] = true
	}
	forms := make([]string, 0, len(seen))
	for f := range seen {
		forms = append(forms, f)
	}
	slices.Sort(forms)
	return forms
}

// callBook keeps, per scenario, the forms of runc's calls, so that
// minidock's, in the same scenario, can be checked against them: the
// caller drove both the same way (nothing failed, nothing was retried).
type callBook map[string][]string

// check takes r's calls since the last check, logs them (docs/drop-in.md
// quotes such a log) and compares their forms with runc's.
func (b callBook) check(t *testing.T, r dropinRuntime, scenario string) {
	t.Helper()
	calls := r.callLog()
	t.Logf("%s calls for %s:\n%s", r.name, scenario, strings.Join(calls, "\n"))
	forms := callForms(calls)
	if r.name == "runc" {
		b[scenario] = forms
	} else if want, ok := b[scenario]; ok {
		require.Equal(t, want, forms, "%s was called otherwise than runc for %s", r.name, scenario)
	}
}

// valueFlags are the runc flags (global and per command) that take a
// value in the next word.
var valueFlags = map[string]bool{
	"--root": true, "--log": true, "--log-format": true, "--bundle": true, "--pid-file": true,
	"--console-socket": true, "--process": true, "--resources": true, "--format": true,
	"--preserve-fds": true, "--criu": true, "--image-path": true, "--work-path": true,
}

// hostState is a snapshot of host-global things a peer could leave behind:
// links, the nftables ruleset, some sysctls, and host paths that engines
// create whatever their roots (removed at the end when they were absent).
type hostState struct {
	links   map[string]bool
	nft     string
	sysctls map[string]string
	absent  []string
}

var peerPaths = []string{"/etc/docker/key.json", "/etc/docker", "/run/docker/plugins", "/run/docker",
	"/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd", "/opt/containerd"}

var peerSysctls = []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"}

func snapshotHost() hostState {
	h := hostState{links: hostLinks(), nft: nftRuleset(), sysctls: map[string]string{}}
	for _, s := range peerSysctls {
		data, _ := os.ReadFile("/proc/sys/" + s)
		h.sysctls[s] = string(data)
	}
	for _, p := range peerPaths {
		if _, err := os.Lstat(p); err != nil {
			h.absent = append(h.absent, p)
		}
	}
	return h
}

func nftRuleset() string {
	out, _ := exec.Command("nft", "list", "ruleset").Output()
	return string(out)
}

// check reports what differs from the snapshot, once the peer has
// stopped, and removes the host paths it made.
func (h hostState) check(tb testing.TB, keepLinks ...string) {
	tb.Helper()
	for _, p := range h.absent {
		os.Remove(p) // a file, or a directory when empty (the order of peerPaths: children first)
		if _, err := os.Lstat(p); err == nil {
			tb.Errorf("leak: %s left (not empty); removing it", p)
			os.RemoveAll(p)
		}
	}
	deadline := time.Now().Add(3 * time.Second) // a dead namespace's veth goes asynchronously
	for {
		var leaked []string
		for name := range hostLinks() {
			if !h.links[name] && !slices.Contains(keepLinks, name) {
				leaked = append(leaked, name)
			}
		}
		if len(leaked) == 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Errorf("leak: network links %v", leaked)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now := nftRuleset(); now != h.nft {
		tb.Errorf("leak: the nftables ruleset changed:\nbefore:\n%s\nafter:\n%s", h.nft, now)
	}
	for s, v := range h.sysctls {
		if data, _ := os.ReadFile("/proc/sys/" + s); string(data) != v {
			tb.Errorf("leak: sysctl %s changed from %q to %q", s, strings.TrimSpace(v), strings.TrimSpace(string(data)))
			os.WriteFile("/proc/sys/"+s, []byte(v), 0o644)
		}
	}
}

// reapPeer, once a peer has stopped, checks that no process of it is left
// (its command lines mention dir: containerd's shims) and that its cgroup
// parent can go.
func reapPeer(tb testing.TB, dir, cgroupParent string) {
	waitNoProcesses(dir, 5*time.Second)
	for _, pid := range processesMentioning(dir) {
		tb.Errorf("leak: process %d still runs: %s", pid, cmdline(pid))
		killProcess(pid)
	}
	removeCgroupParent(tb, cgroupParent)
}

func killProcess(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// runtimeStateLeft lists what a runtime left in its --root directories
// (each container's state is a directory there until `delete`).
func runtimeStateLeft(roots ...string) []string {
	var left []string
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && p != root && !d.IsDir() {
				left = append(left, p)
			}
			return nil
		})
	}
	return left
}

// mountNamespace is a mount namespace of its own for a peer, kept by a
// holder process as long as the test runs: the peer's container rootfs,
// shm and netns mounts stay out of the host's table, and a peer started
// again (a dockerd restart) finds the mounts its first run made.
type mountNamespace struct {
	holder *exec.Cmd
}

func newMountNamespace(tb testing.TB) *mountNamespace {
	tb.Helper()
	holder := exec.Command("sleep", "infinity")
	// unshare(CLONE_NEWNS), and Go makes / private in it
	holder.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := holder.Start(); err != nil {
		tb.Fatalf("start the mount namespace's holder: %v", err)
	}
	tb.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	return &mountNamespace{holder: holder}
}

// command runs argv inside the namespace (nsenter, from util-linux).
func (m *mountNamespace) command(argv ...string) *exec.Cmd {
	ns := fmt.Sprintf("--mount=/proc/%d/ns/mnt", m.holder.Process.Pid)
	return exec.Command("nsenter", append([]string{ns, "--"}, argv...)...)
}

// mountsUnder lists the mounts under dir in the namespace.
func (m *mountNamespace) mountsUnder(dir string) []string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", m.holder.Process.Pid))
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

// peerProcess is a daemon (containerd, dockerd) started by a test in a
// mount namespace of its own, its output in a log file.
type peerProcess struct {
	tb   testing.TB
	name string
	cmd  *exec.Cmd
	log  string
}

func startPeer(tb testing.TB, mnt *mountNamespace, logPath string, argv ...string) *peerProcess {
	tb.Helper()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	p := &peerProcess{tb: tb, name: filepath.Base(argv[0]), log: logPath}
	p.cmd = mnt.command(argv...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", p.name, err)
	}
	return p
}

// stop sends SIGTERM and waits; a peer that ignores it for timeout is
// killed, and that is an error.
func (p *peerProcess) stop(timeout time.Duration) {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		p.tb.Errorf("%s ignored SIGTERM for %v", p.name, timeout)
		p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

func (p *peerProcess) logText() string {
	data, _ := os.ReadFile(p.log)
	return string(data)
}

// runOut runs a command, with env added to the test's, and returns its
// combined output and exit code (-1 when it could not run).
func runOut(env []string, argv ...string) (string, int) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		return err.Error(), -1
	}
	return string(out), 0
}

// waitFor polls ok until it holds or timeout passes.
func waitFor(timeout time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// removeCgroupParent removes a peer's cgroup parent in every hierarchy; a
// child cgroup still there is a leak, and so is a process in one (killed).
func removeCgroupParent(tb testing.TB, parent string) {
	name := strings.TrimPrefix(parent, "/")
	for _, dir := range cgroupDirs(name) {
		if filepath.Base(dir) != name {
			continue
		}
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || p == dir {
				return nil
			}
			tb.Errorf("leak: cgroup %s", p)
			procs, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(procs)) {
				var pid int
				fmt.Sscan(f, &pid)
				tb.Errorf("leak: process %d in cgroup %s: %s", pid, p, cmdline(pid))
				killProcess(pid)
			}
			return nil
		})
	}
	waitFor(3*time.Second, func() bool { removeCgroupTree(name); return len(cgroupDirs(name)) == 0 })
}

// ociImageArchive writes an OCI image layout as a tar (what `ctr images
// import` reads) holding one image named ref: testutil's busybox root
// filesystem as its one layer, cmd as its command.
func ociImageArchive(tb testing.TB, path, ref string, cmd []string) {
	tb.Helper()
	blobs := map[string][]byte{}
	add := func(mediaType string, data []byte) ocispec.Descriptor {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
		blobs[d] = data
		return ocispec.Descriptor{MediaType: mediaType, Digest: digest.Digest(d), Size: int64(len(data))}
	}
	layer := busyboxTar(tb)
	diffID := fmt.Sprintf("sha256:%x", sha256.Sum256(layer))
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	config := ocispec.Image{
		Platform: platform,
		Config:   ocispec.ImageConfig{Cmd: cmd, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.Digest(diffID)}},
	}
	manifest := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    add(ocispec.MediaTypeImageConfig, mustJSON(tb, config)),
		Layers:    []ocispec.Descriptor{add(ocispec.MediaTypeImageLayer, layer)},
	}
	manifest.SchemaVersion = 2
	md := add(ocispec.MediaTypeImageManifest, mustJSON(tb, manifest))
	md.Platform = &platform
	md.Annotations = map[string]string{"io.containerd.image.name": ref, ocispec.AnnotationRefName: ref}
	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}}
	index.SchemaVersion = 2

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	file := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	file(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`))
	file("index.json", mustJSON(tb, index))
	for d, data := range blobs {
		file("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), data)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// ptyCommand is a command whose stdin, stdout and stderr are the slave of
// a new pseudo-terminal, its controlling terminal, as in a shell: docker
// -it and ctr -t need a terminal on their side.
type ptyCommand struct {
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

func startPty(tb testing.TB, env []string, argv ...string) *ptyCommand {
	tb.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		tb.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		tb.Fatalf("ptsname: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer slave.Close()
	p := &ptyCommand{master: master, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				close(p.done)
				return
			}
		}
	}()
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		master.Close()
	})
	return p
}

func (p *ptyCommand) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// expect waits until the terminal has shown want.
func (p *ptyCommand) expect(tb testing.TB, want string) {
	tb.Helper()
	if !waitFor(20*time.Second, func() bool { return strings.Contains(p.output(), want) }) {
		tb.Fatalf("the terminal never showed %q; it shows:\n%s", want, p.output())
	}
}

func (p *ptyCommand) send(tb testing.TB, s string) {
	tb.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		tb.Fatal(err)
	}
}

// shellSession drives an interactive shell on a terminal: at its prompt
// it types tty, a sum and exit code, and checks what comes back. It
// returns what the terminal showed.
func shellSession(t *testing.T, env []string, code int, argv ...string) string {
	t.Helper()
	p := startPty(t, env, argv...)
	p.expect(t, "# ")
	p.send(t, fmt.Sprintf("tty; echo answer=$((6*7)); exit %d\r", code))
	p.expect(t, "answer=42")
	require.Equal(t, code, p.wait(t), p.output())
	require.Regexp(t, `/dev/pts/\d`, p.output())
	return p.output()
}

// wait waits for the command to exit and returns its exit code.
func (p *ptyCommand) wait(tb testing.TB) int {
	tb.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.cmd.Wait() }()
	select {
	case err := <-errc:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			tb.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		tb.Fatalf("%s did not exit; the terminal shows:\n%s", p.cmd.Path, p.output())
	}
	return -1
}
