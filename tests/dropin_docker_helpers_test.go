package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dockerdPeer is Debian's dockerd 20.10 with the containerd it starts
// itself, on a directory of its own (socket, data root, exec root, pid
// file, config file), a cgroup parent of its own, and a bridge of its own
// that the test makes (--bridge). It runs with --iptables=false: dockerd
// 20.10 otherwise writes DOCKER chains into iptables-nft's ip filter and
// ip nat tables and leaves them there when it stops. Each dropinRuntime is
// registered with --add-runtime.
type dockerdPeer struct {
	*peerProcess
	tb           testing.TB
	mnt          *mountNamespace
	dir          string
	execRoot     string
	cgroupParent string
	bridge       string
	bridgeIP     string // the host's address on the bridge
	rts          []dropinRuntime
	env          []string // the docker CLI's: DOCKER_HOST, DOCKER_CONFIG
	host         hostState
}

// dockerCLI20 is Debian's docker CLI, dockerd's own version.
const dockerCLI20 = "/usr/bin/docker"

func startDockerd(tb testing.TB, rts []dropinRuntime) *dockerdPeer {
	tb.Helper()
	n := dropinSeq.Add(1)
	dir := tb.TempDir()
	d := &dockerdPeer{
		tb:           tb,
		dir:          dir,
		execRoot:     filepath.Join(dir, "exec"),
		cgroupParent: fmt.Sprintf("/minidock-dropin-%d-%d", os.Getpid(), n),
		bridge:       fmt.Sprintf("mdk%d", (int64(os.Getpid())%10000)*100+n%100),
		bridgeIP:     fmt.Sprintf("10.198.%d.1", n%250+1),
		rts:          rts,
		host:         snapshotHost(),
	}
	d.env = []string{"DOCKER_HOST=unix://" + filepath.Join(dir, "docker.sock"), "DOCKER_CONFIG=" + filepath.Join(dir, "cli")}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	for _, args := range [][]string{
		{"link", "add", "name", d.bridge, "type", "bridge"},
		{"addr", "add", d.bridgeIP + "/24", "dev", d.bridge},
		{"link", "set", d.bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	d.mnt = newMountNamespace(tb)
	tb.Cleanup(d.stop)
	d.start()
	d.mustDocker("import", "--change", `CMD ["sh"]`, d.busyboxTar(), "busybox")
	return d
}

// runtimeName is the name r is registered under: "runc" is dockerd's own
// and reserved, so runc through the logging wrapper is "runc-logged".
func (d *dockerdPeer) runtimeName(r dropinRuntime) string {
	if r.name == "runc" {
		return "runc-logged"
	}
	return r.name
}

// runtimeRoots are the --root directories dockerd gives its runtimes
// (20.10: <exec-root>/runtime-runc/moby, whichever runtime it is).
func (d *dockerdPeer) runtimeRoots() []string {
	roots, _ := filepath.Glob(filepath.Join(d.execRoot, "runtime-*"))
	return roots
}

// start runs dockerd (again, for a restart) and waits until it answers.
func (d *dockerdPeer) start() {
	d.tb.Helper()
	args := []string{"dockerd", "--config-file", filepath.Join(d.dir, "daemon.json"),
		"-H", "unix://" + filepath.Join(d.dir, "docker.sock"),
		"--data-root", filepath.Join(d.dir, "data"), "--exec-root", d.execRoot,
		"--pidfile", filepath.Join(d.dir, "docker.pid"), "--cgroup-parent", d.cgroupParent,
		"--bridge", d.bridge, "--iptables=false", "--ip-masq=false", "--ip-forward=false",
		"--userland-proxy=false", "--live-restore", "--log-level=warn"}
	for _, r := range d.rts {
		args = append(args, "--add-runtime", d.runtimeName(r)+"="+r.path)
	}
	d.peerProcess = startPeer(d.tb, d.mnt, filepath.Join(d.dir, "dockerd.log"), args...)
	if !waitFor(60*time.Second, func() bool { _, code := d.docker("version"); return code == 0 }) {
		d.tb.Fatalf("dockerd did not answer:\n%s", d.logText())
	}
}

// restart stops dockerd (its containers go on: --live-restore) and starts
// it again.
func (d *dockerdPeer) restart() {
	d.tb.Helper()
	d.peerProcess.stop(30 * time.Second)
	d.start()
}

func (d *dockerdPeer) in(t testing.TB) *dockerdPeer {
	e := *d
	e.tb = t
	return &e
}

func (d *dockerdPeer) busyboxTar() string {
	p := filepath.Join(d.dir, "busybox.tar")
	if err := os.WriteFile(p, busyboxTar(d.tb), 0o644); err != nil {
		d.tb.Fatal(err)
	}
	return p
}

func (d *dockerdPeer) docker(args ...string) (string, int) {
	return runOut(d.env, append([]string{dockerCLI20}, args...)...)
}

func (d *dockerdPeer) mustDocker(args ...string) string {
	d.tb.Helper()
	out, code := d.docker(args...)
	if code != 0 {
		d.tb.Fatalf("docker %s: exit %d: %s\ndockerd log:\n%s", strings.Join(args, " "), code, out, d.logText())
	}
	return strings.TrimSpace(out)
}

// checkClean fails the test for any container dockerd still has and for
// runtime state left in the runtimes' roots.
func (d *dockerdPeer) checkClean() {
	d.tb.Helper()
	if out := d.mustDocker("ps", "--all", "--quiet"); out != "" {
		d.tb.Errorf("leak: containers: %s", out)
	}
	if left := runtimeStateLeft(d.runtimeRoots()...); len(left) > 0 {
		d.tb.Errorf("leak: runtime state: %v", left)
	}
	// dockerd binds its data root onto itself (shared) and its overlay2
	// directory (private) while it runs
	own := func(m string) bool {
		return m == filepath.Join(d.dir, "data") || m == filepath.Join(d.dir, "data", "overlay2")
	}
	if m := slices.DeleteFunc(d.mnt.mountsUnder(d.dir), own); len(m) > 0 {
		d.tb.Errorf("leak: mounts in dockerd's namespace: %v", m)
	}
}

// stop removes what a failed test left, stops dockerd (which stops its
// containerd) and checks that nothing is left on the host.
func (d *dockerdPeer) stop() {
	if d.peerProcess != nil && d.cmd != nil {
		if out, _ := d.docker("ps", "--all", "--quiet"); strings.TrimSpace(out) != "" {
			d.docker(append([]string{"rm", "--force"}, strings.Fields(out)...)...)
		}
		d.peerProcess.stop(30 * time.Second)
	}
	reapPeer(d.tb, d.dir, d.cgroupParent)
	exec.Command("ip", "link", "del", d.bridge).Run()
	d.host.check(d.tb)
	if d.tb.Failed() && d.peerProcess != nil {
		d.tb.Logf("dockerd log:\n%s", d.logText())
	}
}
