package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

// The hostile-container suite: from inside a container, the probe
// (testdata/hostile, a static Go program copied into a busybox image)
// tries what root in a container must not do to the host, and reports
// for each attempt what the kernel answered. A default container must be
// refused every one; the same suite against Debian's dockerd shows the
// expectations are Docker's (and that the suite is sound); --privileged
// must let through the ones that privilege is about, which shows each
// refusal comes from the confinement the switch lifts.

// hostileProbe is one attack and whether --privileged lets it through
// (host-processes stays refused: a privileged container still has its
// own pid namespace).
type hostileProbe struct {
	name       string
	privileged bool
	// hostFile, when set, must exist on the host for the attack to mean
	// anything: this VM's kernel has no /proc/kcore (CONFIG_PROC_KCORE)
	// and no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ), and then the probe
	// can only report that the file is absent.
	hostFile string
}

var hostileProbes = []hostileProbe{
	{name: "mount", privileged: true},
	{name: "remount-proc", privileged: true},
	{name: "remount-sys-rw", privileged: true},
	{name: "write-proc-sys", privileged: true},
	{name: "sysrq-trigger", privileged: true, hostFile: "/proc/sysrq-trigger"},
	{name: "core-pattern", privileged: true},
	{name: "write-sys", privileged: true},
	{name: "write-cgroup", privileged: true},
	{name: "mknod-disk", privileged: true},
	{name: "read-kcore", privileged: true, hostFile: "/proc/kcore"},
	{name: "read-keys", privileged: true},
	{name: "keyctl", privileged: true},
	{name: "unshare-user", privileged: true},
	{name: "unshare-mount", privileged: true},
	{name: "clone-newuser", privileged: true},
	{name: "swapoff", privileged: true},
	{name: "settime", privileged: true},
	{name: "sethostname", privileged: true},
	{name: "delete-module", privileged: true},
	{name: "host-processes", privileged: false},
	{name: "ptrace-runtime", privileged: true},
}

// hostileImage is a busybox root filesystem with the probe at /hostile,
// as a tarball to import.
func hostileImage(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	testutil.MakeBusyboxRootfs(t, dir)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "hostile"), "./testdata/hostile")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v: %s", err, out)
	}
	return dirTar(t, dir)
}

// hostileSetup is what the probe needs of the host: a disk to make a
// node for, a process whose command line holds a marker, the hostname
// to check afterwards.
type hostileSetup struct {
	disk, marker, hostname string
}

func newHostileSetup(t *testing.T) hostileSetup {
	disk := openableHostDisk(t)
	marker := fmt.Sprintf("hostile-marker-%d", os.Getpid())
	sleeper := exec.Command("/bin/sh", "-c", "sleep 600", marker)
	// a group of its own, killed whole: dash keeps the sleep as its child
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-sleeper.Process.Pid, syscall.SIGKILL); sleeper.Wait() })
	host, _ := os.Hostname()
	return hostileSetup{disk: disk, marker: marker, hostname: host}
}

// openableHostDisk is the major:minor of a block device of the host that
// the test (root on the host) can open: the disk / is on, or, where even
// root may not open that (this project's VM refuses it), a loop device.
// The probe makes a node for it in the container and opens it: refused
// by the device cgroup by default, let through with --privileged.
func openableHostDisk(t *testing.T) string {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	candidates := []string{fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))}
	if parent, err := filepath.EvalSymlinks(candidates[0] + "/.."); err == nil {
		if _, err := os.Stat(parent + "/dev"); err == nil {
			candidates = append([]string{parent}, candidates...) // the whole disk of a partition
		}
	}
	candidates = append(candidates, "/sys/class/block/loop0")
	for _, c := range candidates {
		data, err := os.ReadFile(c + "/dev")
		if err != nil {
			continue
		}
		devnum := strings.TrimSpace(string(data))
		node := filepath.Join("/dev", filepath.Base(c))
		if f, err := os.Open(node); err == nil {
			f.Close()
			t.Logf("host block device for mknod-disk: %s (%s)", node, devnum)
			return devnum
		}
	}
	t.Fatal("no block device of the host that root can open")
	return ""
}

// runHostile runs the probe in a container made by the CLI run with
// extra flags (the flags differ: docker's, minidock's), runs execs into
// it while it watches for them, and returns each probe's result.
func runHostile(t *testing.T, cli func(args ...string) (string, int), hs hostileSetup, image string, flags ...string) map[string]hostileResult {
	t.Helper()
	args := append([]string{"run", "-d", "--network", "none"}, flags...)
	args = append(args, image, "/hostile", "-disk", hs.disk, "-marker", hs.marker, "-watch", "3s", "all")
	out, code := cli(args...)
	if code != 0 {
		t.Fatalf("run the probe: exit %d: %s", code, out)
	}
	id := strings.TrimSpace(out)
	if i := strings.LastIndexByte(id, '\n'); i >= 0 {
		id = id[i+1:]
	}
	// the runtime's inits of execs enter the container while it watches
	deadline := time.Now().Add(20 * time.Second)
	for {
		logs, _ := cli("logs", id)
		if strings.Contains(logs, `"watching"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the probe did not get to watching: %s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		if out, code := cli("exec", id, "true"); code != 0 {
			t.Fatalf("exec into the probe's container: exit %d: %s", code, out)
		}
	}
	if out, code := cli("wait", id); code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("the probe exited %q (%d)", out, code)
	}
	logs, _ := cli("logs", id)
	cli("rm", "-f", id)
	results := map[string]hostileResult{}
	for _, line := range strings.Split(logs, "\n") {
		var r hostileResult
		if json.Unmarshal([]byte(line), &r) == nil && r.Probe != "" && r.Probe != "watching" {
			results[r.Probe] = r
		}
	}
	return results
}

type hostileResult struct {
	Probe  string `json:"probe"`
	OK     bool   `json:"ok"`
	Result string `json:"result"`
}

// checkHostile compares results with the expectations: each refused
// (privileged false) or each probe that privilege is about let through
// (privileged true).
func checkHostile(t *testing.T, results map[string]hostileResult, privileged bool) {
	t.Helper()
	for _, p := range hostileProbes {
		r, ok := results[p.name]
		if !ok {
			t.Errorf("%s: no result", p.name)
			continue
		}
		want := privileged && p.privileged
		if p.hostFile != "" {
			if _, err := os.Stat(p.hostFile); os.IsNotExist(err) {
				// nothing to attack on this kernel: the probe must say so
				if r.OK || !strings.HasPrefix(r.Result, "ENOENT") {
					t.Errorf("%s: %s is absent on this host, the probe says %+v", p.name, p.hostFile, r)
				}
				t.Logf("%-15s %s absent on this kernel: %s", p.name, p.hostFile, r.Result)
				continue
			}
		}
		if strings.HasPrefix(r.Result, "setup:") || strings.HasPrefix(r.Result, "inconclusive") ||
			(!r.OK && strings.Contains(r.Result, "ENOENT")) {
			t.Errorf("%s: no verdict: %s", p.name, r.Result)
			continue
		}
		if r.OK != want {
			t.Errorf("%s: ok=%v, want %v: %s", p.name, r.OK, want, r.Result)
			continue
		}
		t.Logf("%-15s %s", p.name, r.Result)
	}
}

// checkHostUntouched: what the probes wrote back or set is as it was.
func (hs hostileSetup) checkHostUntouched(t *testing.T) {
	t.Helper()
	if h, _ := os.Hostname(); h != hs.hostname {
		t.Errorf("the host's hostname is now %q (was %q)", h, hs.hostname)
		syscall.Sethostname([]byte(hs.hostname))
	}
}

// TestHostileContainer runs the suite in a default minidock container
// (every attack refused), in a --privileged one (the privileged ones let
// through), and in a default container of Debian's dockerd when it is
// installed (every attack refused: the suite's expectations are
// Docker's). dockerd 20.10 cannot start --privileged containers on this
// host (root lacks CAP_SYS_RESOURCE, which it asks runc for), so the
// privileged run is minidock's only.
func TestHostileContainer(t *testing.T) {
	testutil.RequireRoot(t)
	image := hostileImage(t)
	hs := newHostileSetup(t)
	defer hs.checkHostUntouched(t)
	e := newEngine(t)
	var msg struct{ Status string }
	e.must(200, "POST", "/images/create?fromSrc=-&repo=hostile&tag=latest", image, &msg)

	t.Run("default", func(t *testing.T) {
		checkHostile(t, runHostile(t, e.cli, hs, "hostile"), false)
	})
	t.Run("privileged", func(t *testing.T) {
		checkHostile(t, runHostile(t, e.cli, hs, "hostile", "--privileged"), true)
	})
	t.Run("dockerd", func(t *testing.T) {
		dk := startBenchDocker(t)
		if dk == nil {
			t.Skip("dockerd is not installed")
		}
		tar := filepath.Join(t.TempDir(), "hostile.tar")
		if err := os.WriteFile(tar, image, 0o644); err != nil {
			t.Fatal(err)
		}
		dk.mustCLI("import", tar, "hostile")
		docker := func(args ...string) (string, int) {
			cmd := exec.Command(dk.prog, args...)
			cmd.Env = dk.env
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); ok {
				return string(out), ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return string(out), 0
		}
		checkHostile(t, runHostile(t, docker, hs, "hostile"), false)
	})
}
