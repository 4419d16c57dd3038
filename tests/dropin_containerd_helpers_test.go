package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// containerdPeer is Debian's containerd on a directory of its own: root,
// state, socket, config, the runtimes' --root directories and ctr's FIFOs.
// Its CRI plugin has one runtime handler per dropinRuntime (named after
// it) and takes its sandbox image from the local store.
type containerdPeer struct {
	*peerProcess
	tb           testing.TB // the test or subtest that uses it now (see in)
	mnt          *mountNamespace
	dir          string
	sock         string
	ns           string // ctr's namespace
	cgroupParent string // of every container, ctr's and the CRI's
	runtimeRoot  string // --root of every runtime call
	rts          []dropinRuntime
	host         hostState
	crictlConfig string
}

const (
	pauseImage   = "minidock.test/pause:1"
	busyboxImage = "minidock.test/busybox:1"
	criNamespace = "k8s.io" // the CRI plugin's containerd namespace
)

// startContainerd starts a containerd whose CRI handlers are rts, and
// imports the busybox image into ctr's namespace and, with the pause
// image, into the CRI's.
func startContainerd(tb testing.TB, rts []dropinRuntime) *containerdPeer {
	tb.Helper()
	n := dropinSeq.Add(1)
	dir := tb.TempDir()
	c := &containerdPeer{
		dir:          dir,
		sock:         filepath.Join(dir, "containerd.sock"),
		ns:           "dropin",
		cgroupParent: fmt.Sprintf("/minidock-dropin-%d-%d", os.Getpid(), n),
		runtimeRoot:  filepath.Join(dir, "runtime-root"),
		rts:          rts,
		host:         snapshotHost(),
		tb:           tb,
	}
	for _, d := range []string{"cni/bin", "cni/net.d", "fifo", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte(c.config()), 0o644); err != nil {
		tb.Fatal(err)
	}
	c.crictlConfig = filepath.Join(dir, "crictl.yaml")
	crictl := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n", c.sock, c.sock)
	if err := os.WriteFile(c.crictlConfig, []byte(crictl), 0o644); err != nil {
		tb.Fatal(err)
	}
	c.mnt = newMountNamespace(tb)
	c.peerProcess = startPeer(tb, c.mnt, filepath.Join(dir, "containerd.log"), "containerd", "--config", config)
	tb.Cleanup(c.stop)
	if !waitFor(20*time.Second, func() bool { _, code := c.ctr("version"); return code == 0 }) {
		tb.Fatalf("containerd did not answer on %s:\n%s", c.sock, c.logText())
	}
	busybox := filepath.Join(dir, "busybox.tar")
	ociImageArchive(tb, busybox, busyboxImage, []string{"sh"})
	pause := filepath.Join(dir, "pause.tar")
	ociImageArchive(tb, pause, pauseImage, []string{"sleep", "2147483647"})
	c.mustCtr("images", "import", busybox)
	c.mustCtrIn(criNamespace, "images", "import", busybox)
	c.mustCtrIn(criNamespace, "images", "import", pause)
	return c
}

// in is the peer as used by subtest t (whose Fatal must be its own).
func (c *containerdPeer) in(t testing.TB) *containerdPeer {
	d := *c
	d.tb = t
	return &d
}

// config is containerd's config.toml: everything under c.dir, the CRI
// plugin with one handler per runtime, no CNI (host-network pods only).
func (c *containerdPeer) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `version = 2
root = %[1]q
state = %[2]q
# plugins that would reach outside c.dir (/opt/containerd) or need what is not here
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = %[3]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  # root here lacks CAP_SYS_RESOURCE: without this even runc cannot give the sandbox its -998
  restrict_oom_score_adj = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[5]q
    conf_dir = %[6]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
`, filepath.Join(c.dir, "root"), filepath.Join(c.dir, "state"), c.sock, pauseImage,
		filepath.Join(c.dir, "cni/bin"), filepath.Join(c.dir, "cni/net.d"))
	for _, r := range c.rts {
		fmt.Fprintf(&b, `  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s.options]
      BinaryName = %[2]q
      Root = %[3]q
`, r.name, r.path, c.runtimeRoot)
	}
	return b.String()
}

// ctr runs ctr against this containerd in ctr's namespace.
func (c *containerdPeer) ctr(args ...string) (string, int) {
	return c.ctrIn(c.ns, args...)
}

func (c *containerdPeer) ctrIn(ns string, args ...string) (string, int) {
	return runOut(nil, append([]string{"ctr", "--address", c.sock, "--namespace", ns}, args...)...)
}

func (c *containerdPeer) mustCtr(args ...string) string {
	c.tb.Helper()
	return c.mustCtrIn(c.ns, args...)
}

func (c *containerdPeer) mustCtrIn(ns string, args ...string) string {
	c.tb.Helper()
	out, code := c.ctrIn(ns, args...)
	if code != 0 {
		c.tb.Fatalf("ctr -n %s %s: exit %d: %s", ns, strings.Join(args, " "), code, out)
	}
	return out
}

// ctrRun is `ctr run` of the busybox image with runtime r, the
// container's cgroup under the peer's parent and its runtime state under
// the peer's runtime root.
func (c *containerdPeer) ctrRunArgs(r dropinRuntime, flags []string, id string, cmd ...string) []string {
	args := []string{"run", "--runtime", "io.containerd.runc.v2", "--runc-binary", r.path,
		"--runc-root", c.runtimeRoot, "--cgroup", c.cgroupParent + "/" + id,
		"--fifo-dir", filepath.Join(c.dir, "fifo")}
	args = append(append(args, flags...), busyboxImage, id)
	return append(args, cmd...)
}

// crictl runs crictl (built by `make crictl`) against this containerd.
func (c *containerdPeer) crictl(args ...string) (string, int) {
	return runOut(nil, append([]string{crictlPath(c.tb), "--config", c.crictlConfig}, args...)...)
}

func (c *containerdPeer) mustCrictl(args ...string) string {
	c.tb.Helper()
	out, code := c.crictl(args...)
	if code != 0 {
		c.tb.Fatalf("crictl %s: exit %d: %s\ncontainerd log:\n%s", strings.Join(args, " "), code, out, c.tail(30))
	}
	return strings.TrimSpace(out)
}

// tail is the last n lines of the peer's log.
func (c *containerdPeer) tail(n int) string {
	lines := strings.Split(strings.TrimSpace(c.logText()), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// crictlPath is crictl from $CRICTL, the cache `make crictl` builds it
// into, or PATH; the test is skipped without one.
func crictlPath(tb testing.TB) string {
	p := crictlPathOrEmpty()
	if p == "" {
		tb.Skip("crictl not found: `make crictl` builds it")
	}
	return p
}

func crictlPathOrEmpty() string {
	if p := os.Getenv("CRICTL"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	if cached, _ := filepath.Glob(filepath.Join(home, ".cache/minidock/crictl-v*")); len(cached) > 0 {
		return cached[len(cached)-1]
	}
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	return ""
}

// checkClean fails the test for anything containerd still has: containers,
// tasks, pods, runtime state, mounts.
func (c *containerdPeer) checkClean() {
	c.tb.Helper()
	for _, ns := range []string{c.ns, criNamespace} {
		if out := strings.TrimSpace(c.mustCtrIn(ns, "containers", "list", "--quiet")); out != "" {
			c.tb.Errorf("leak: containers in namespace %s: %s", ns, out)
		}
		if out := strings.TrimSpace(c.mustCtrIn(ns, "tasks", "list", "--quiet")); out != "" {
			c.tb.Errorf("leak: tasks in namespace %s: %s", ns, out)
		}
	}
	if left := runtimeStateLeft(c.runtimeRoot); len(left) > 0 {
		c.tb.Errorf("leak: runtime state: %v", left)
	}
	if m := c.mnt.mountsUnder(c.dir); len(m) > 0 {
		c.tb.Errorf("leak: mounts in containerd's namespace: %v", m)
	}
}

// removeAll removes what a failed test left: pods, tasks, containers.
func (c *containerdPeer) removeAll() {
	if crictlPathOrEmpty() != "" {
		c.crictl("rmp", "--force", "--all")
	}
	for _, ns := range []string{c.ns, criNamespace} {
		out, _ := c.ctrIn(ns, "containers", "list", "--quiet")
		for _, id := range strings.Fields(out) {
			c.ctrIn(ns, "tasks", "kill", "--signal", "SIGKILL", id)
			c.ctrIn(ns, "tasks", "delete", "--force", id)
			c.ctrIn(ns, "containers", "delete", id)
		}
	}
}

// stop stops containerd and checks that it and its shims are gone and
// left nothing on the host.
func (c *containerdPeer) stop() {
	if c.peerProcess == nil || c.cmd == nil {
		return
	}
	if c.tb.Failed() {
		c.removeAll()
	}
	c.peerProcess.stop(20 * time.Second)
	reapPeer(c.tb, c.dir, c.cgroupParent)
	c.host.check(c.tb)
	if c.tb.Failed() {
		c.tb.Logf("containerd log (last lines):\n%s", c.tail(60))
	}
}
