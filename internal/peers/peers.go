// Package peers starts, for tests and benchmarks, the real registry
// software minidock's registry is compared with: Debian's docker-registry
// (distribution 2.8) and Debian's dockerd, each on 127.0.0.1 or a private
// socket, with private roots, stopped by pid and cleaned up afterwards;
// and a token server (token.go) for the Bearer flow.
package peers

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FreeAddr returns a 127.0.0.1 address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitHTTP polls url until it answers (any status).
func WaitHTTP(t testing.TB, url string, timeout time.Duration, logPath string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s did not answer in %s: %v\n%s", url, timeout, err, log)
		}
	}
}

// startLogged starts cmd with its output in a log file, and stops it by
// pid (SIGTERM, then SIGKILL after grace) when the test ends.
func startLogged(t testing.TB, cmd *exec.Cmd, name string, grace time.Duration) string {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	logf.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(grace):
			t.Errorf("%s (pid %d) ignored SIGTERM for %s", name, cmd.Process.Pid, grace)
			cmd.Process.Kill()
			<-done
		}
	})
	return logPath
}

// DockerRegistry is Debian's docker-registry, serving plain HTTP.
type DockerRegistry struct {
	Addr string // 127.0.0.1:PORT
	Root string // its storage directory
}

// StartDockerRegistry runs /usr/bin/docker-registry on a free port with
// filesystem storage in a temporary directory and deletes enabled, or
// skips the test when it is not installed.
func StartDockerRegistry(t testing.TB) *DockerRegistry {
	t.Helper()
	const bin = "/usr/bin/docker-registry"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("docker-registry not installed (apt-get install docker-registry)")
	}
	r := &DockerRegistry{Addr: FreeAddr(t), Root: t.TempDir()}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, r.Root, r.Addr)
	cfgPath := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := startLogged(t, exec.Command(bin, "serve", cfgPath), "docker-registry", 10*time.Second)
	WaitHTTP(t, "http://"+r.Addr+"/v2/", 10*time.Second, logPath)
	return r
}

// Dockerd is a private Debian dockerd (with the containerd it starts).
type Dockerd struct {
	t        testing.TB
	cmd      *exec.Cmd
	execRoot string
	env      []string
	made     []string // host paths dockerd creates whatever its roots
}

// StartDockerd runs /usr/sbin/dockerd on a private socket, data root and
// exec root, with no bridge and no iptables, allowing plain HTTP to the
// insecure registries; or skips the test when docker.io is not installed.
// It runs in a mount namespace of its own, so its mounts go with it.
func StartDockerd(t testing.TB, insecure ...string) *Dockerd {
	t.Helper()
	const bin = "/usr/sbin/dockerd"
	for _, p := range []string{bin, "/usr/bin/docker"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not installed (apt-get install docker.io)", p)
		}
	}
	if os.Getuid() != 0 {
		t.Skip("dockerd needs root")
	}
	d := &Dockerd{t: t, execRoot: fmt.Sprintf("/run/minidock-registry-docker-%d", os.Getpid())}
	for _, p := range []string{"/etc/docker/key.json", "/etc/docker", "/run/docker/plugins", "/run/docker",
		"/run/containerd/s", "/run/containerd", "/var/lib/docker"} {
		if _, err := os.Lstat(p); err != nil {
			d.made = append(d.made, p)
		}
	}
	if err := os.MkdirAll(d.execRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := "unix://" + filepath.Join(d.execRoot, "docker.sock")
	d.env = append(os.Environ(), "DOCKER_HOST="+sock, "DOCKER_CONFIG="+t.TempDir())
	args := []string{"-H", sock, "--data-root", t.TempDir(), "--exec-root", filepath.Join(d.execRoot, "exec"),
		"--pidfile", filepath.Join(d.execRoot, "docker.pid"), "--cgroup-parent", "/minidock-registry-docker",
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--log-level=error"}
	for _, r := range insecure {
		args = append(args, "--insecure-registry", r)
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	t.Cleanup(d.cleanup) // registered first, so it runs after dockerd is stopped
	logPath := startLogged(t, d.cmd, "dockerd", 30*time.Second)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := d.CLI("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("dockerd did not answer:\n%s", log)
		}
	}
	return d
}

// CLI runs Debian's docker client against this dockerd.
func (d *Dockerd) CLI(args ...string) ([]byte, error) {
	cmd := exec.Command("/usr/bin/docker", args...)
	cmd.Env = d.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// MustCLI is CLI, failing the test on error.
func (d *Dockerd) MustCLI(args ...string) []byte {
	d.t.Helper()
	out, err := d.CLI(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// cleanup removes what dockerd left: processes still naming its exec
// root (a leak), the exec root, its cgroup, the host paths it made.
func (d *Dockerd) cleanup() {
	for i := 0; i < 100 && len(processesMentioning(d.execRoot)) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range processesMentioning(d.execRoot) {
		d.t.Errorf("leak: process %d still runs after dockerd stopped", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	os.RemoveAll(d.execRoot)
	os.Remove("/sys/fs/cgroup/minidock-registry-docker")
	for _, p := range d.made {
		os.Remove(p) // files, and directories only when empty
	}
}

func processesMentioning(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		st, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if strings.Contains(string(b), s) && !strings.Contains(string(st), ") Z ") {
			pids = append(pids, pid)
		}
	}
	return pids
}
