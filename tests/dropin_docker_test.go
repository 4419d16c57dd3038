package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDropinDocker runs Debian's dockerd with runc, then minidock's
// runtime, registered by --add-runtime and chosen by docker run --runtime:
// a plain run with an exit code, -it on a terminal, -d with exec (plain
// and -it), --memory and docker update, pause and unpause, stop, the
// default bridge network, and a --live-restore restart of dockerd that
// keeps a container running. Every step gates on the same assertions for
// both runtimes.
func TestDropinDocker(t *testing.T) {
	skipUnlessDropin(t, "dockerd", dockerCLI20, "containerd", "containerd-shim-runc-v2", "ip", "nft")
	rts := dropinRuntimes(t, t.TempDir(), true)
	peer := startDockerd(t, rts)
	book := callBook{}
	for _, r := range rts {
		t.Run(r.name, func(t *testing.T) {
			d := peer.in(t)
			rt := d.runtimeName(r)
			r.callLog()

			t.Run("run", func(t *testing.T) {
				d := d.in(t)
				r.callLog()
				out, code := d.docker("run", "--rm", "--runtime", rt, "--network", "none", "busybox", "sh", "-c", "echo hello from pid $$; exit 3")
				require.Equal(t, 3, code, out)
				require.Contains(t, out, "hello from pid 1")
				d.checkClean()
				book.check(t, r, "docker run --rm")
			})

			t.Run("interactive", func(t *testing.T) {
				d := d.in(t)
				r.callLog()
				out := shellSession(t, d.env, 5, dockerCLI20, "run", "--rm", "-it", "--runtime", rt, "--network", "none", "busybox", "sh")
				require.Contains(t, out, "/dev/pts/0")
				d.checkClean()
				book.check(t, r, "docker run --rm -it")
			})

			t.Run("detached", func(t *testing.T) {
				d := d.in(t)
				r.callLog()
				name := "dropin-" + r.name
				t.Cleanup(func() { d.docker("rm", "--force", name) })
				d.mustDocker("run", "--detach", "--name", name, "--runtime", rt, "--network", "none", "--memory", "64m",
					"busybox", "sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo up; sleep 100000 & wait")
				require.True(t, waitFor(10*time.Second, func() bool { out, _ := d.docker("logs", name); return strings.Contains(out, "up") }))

				out, code := d.docker("exec", name, "sh", "-c", "echo exec-ok beside $(cat /proc/1/cmdline); exit 4")
				require.Equal(t, 4, code, out)
				require.Contains(t, out, "exec-ok beside sh-ctrap")
				shellSession(t, d.env, 6, dockerCLI20, "exec", "-it", name, "sh")

				pid, err := strconv.Atoi(d.mustDocker("inspect", "--format", "{{.State.Pid}}", name))
				require.NoError(t, err)
				require.Equal(t, "67108864", cgroupFile(t, pid, "memory", "memory.limit_in_bytes"), "--memory 64m")
				d.mustDocker("update", "--memory", "96m", "--memory-swap", "192m", name)
				require.Equal(t, "100663296", cgroupFile(t, pid, "memory", "memory.limit_in_bytes"), "docker update --memory 96m")

				d.mustDocker("pause", name)
				require.Equal(t, "true", d.mustDocker("inspect", "--format", "{{.State.Paused}}", name))
				require.Equal(t, "FROZEN", cgroupFile(t, pid, "freezer", "freezer.state"))
				d.mustDocker("unpause", name)
				require.Equal(t, "THAWED", cgroupFile(t, pid, "freezer", "freezer.state"))

				d.mustDocker("stop", "--time", "10", name)
				require.Equal(t, "0 exited", d.mustDocker("inspect", "--format", "{{.State.ExitCode}} {{.State.Status}}", name))
				require.Contains(t, d.mustDocker("logs", name), "got TERM")
				d.mustDocker("rm", name)
				d.checkClean()
				book.check(t, r, "docker run -d, exec, exec -it, update, pause, unpause, stop, rm")
			})

			t.Run("bridge", func(t *testing.T) {
				d := d.in(t)
				r.callLog()
				ln, err := net.Listen("tcp", d.bridgeIP+":0")
				require.NoError(t, err)
				defer ln.Close()
				got := make(chan string, 1)
				go func() {
					conn, err := ln.Accept()
					if err != nil {
						got <- err.Error()
						return
					}
					defer conn.Close()
					conn.SetDeadline(time.Now().Add(10 * time.Second))
					line, _ := bufio.NewReader(conn).ReadString('\n')
					got <- strings.TrimSpace(line)
				}()
				port := ln.Addr().(*net.TCPAddr).Port
				script := fmt.Sprintf("ip -4 -o addr show eth0; echo hello-from-$(hostname) | nc %s %d", d.bridgeIP, port)
				out := d.mustDocker("run", "--rm", "--runtime", rt, "--network", "bridge", "--hostname", "c-"+r.name, "busybox", "sh", "-c", script)
				subnet := strings.TrimSuffix(d.bridgeIP, "1")
				require.Contains(t, out, "inet "+subnet, "eth0 has an address on dockerd's bridge")
				select {
				case line := <-got:
					require.Equal(t, "hello-from-c-"+r.name, line)
				case <-time.After(10 * time.Second):
					t.Fatalf("nothing reached %s:%d from the container: %s", d.bridgeIP, port, out)
				}
				d.checkClean()
				book.check(t, r, "docker run --network bridge")
			})

			t.Run("live-restore", func(t *testing.T) {
				d := d.in(t)
				r.callLog()
				name := "dropin-live-" + r.name
				t.Cleanup(func() { d.docker("rm", "--force", name) })
				d.mustDocker("run", "--detach", "--name", name, "--runtime", rt, "--network", "none", "busybox", "sleep", "100000")
				pid := d.mustDocker("inspect", "--format", "{{.State.Pid}}", name)
				d.restart()
				peer.peerProcess = d.peerProcess // the restarted one, for the cleanup
				require.Equal(t, "running "+pid, d.mustDocker("inspect", "--format", "{{.State.Status}} {{.State.Pid}}", name))
				require.Contains(t, d.mustDocker("exec", name, "sh", "-c", "echo still here"), "still here")
				d.mustDocker("rm", "--force", name)
				d.checkClean()
				book.check(t, r, "docker run -d, dockerd restart, exec, rm -f")
			})
		})
	}
}

// cgroupFile reads a file of the cgroup v1 controller's directory of pid.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && strings.Contains(","+f[1]+",", ","+controller+",") {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, f[2], file))
			require.NoError(t, err)
			return strings.TrimSpace(string(v))
		}
	}
	t.Fatalf("process %d has no %s cgroup: %s", pid, controller, data)
	return ""
}
