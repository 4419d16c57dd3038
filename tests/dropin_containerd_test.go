package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDropinContainerd runs containers with ctr under containerd's
// io.containerd.runc.v2 shim told to use runc, then minidock's runtime
// (--runc-binary): run to completion with an exit code, a terminal, a
// detached container with exec, ps, pause and resume, and a kill that
// its process traps. Every step gates on the same assertions for both.
func TestDropinContainerd(t *testing.T) {
	skipUnlessDropin(t, "containerd", "ctr", "containerd-shim-runc-v2")
	rts := dropinRuntimes(t, t.TempDir(), true)
	peer := startContainerd(t, rts)
	book := callBook{}
	for _, r := range rts {
		t.Run(r.name, func(t *testing.T) {
			c := peer.in(t)
			r.callLog()

			t.Run("run", func(t *testing.T) {
				c := c.in(t)
				r.callLog()
				out, code := c.ctr(c.ctrRunArgs(r, []string{"--rm"}, "dropin-run", "sh", "-c", "echo hello from pid $$; exit 3")...)
				require.Equal(t, 3, code, out)
				require.Contains(t, out, "hello from pid 1")
				c.checkClean()
				book.check(t, r, "ctr run --rm")
			})

			t.Run("tty", func(t *testing.T) {
				c := c.in(t)
				r.callLog()
				out := shellSession(t, nil, 5, append([]string{"ctr", "--address", c.sock, "--namespace", c.ns},
					c.ctrRunArgs(r, []string{"--rm", "--tty"}, "dropin-tty", "sh")...)...)
				require.Contains(t, out, "/dev/pts/0")
				c.checkClean()
				book.check(t, r, "ctr run --rm --tty")
			})

			t.Run("detached", func(t *testing.T) {
				c := c.in(t)
				r.callLog()
				id := "dropin-detached"
				logFile := filepath.Join(t.TempDir(), "out.log")
				c.mustCtr(c.ctrRunArgs(r, []string{"--detach", "--log-uri", "file://" + logFile}, id,
					"sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo up; sleep 100000 & wait")...)
				require.True(t, waitFor(10*time.Second, func() bool { data, _ := os.ReadFile(logFile); return strings.Contains(string(data), "up") }), "no output in the log")

				out, code := c.ctr("tasks", "exec", "--exec-id", "e1", id, "sh", "-c", "echo exec-ok beside $(cat /proc/1/cmdline); exit 4")
				require.Equal(t, 4, code, out)
				require.Contains(t, out, "exec-ok beside sh-ctrap")

				ps := c.mustCtr("tasks", "ps", id)
				require.GreaterOrEqual(t, len(strings.Split(strings.TrimSpace(ps), "\n")), 3, "the shell and its sleep: %s", ps)

				c.mustCtr("tasks", "pause", id)
				require.Contains(t, c.mustCtr("tasks", "list"), "PAUSED")
				c.mustCtr("tasks", "resume", id)
				require.Contains(t, c.mustCtr("tasks", "list"), "RUNNING")

				c.mustCtr("tasks", "kill", id)
				require.True(t, waitFor(10*time.Second, func() bool { return strings.Contains(c.mustCtr("tasks", "list"), "STOPPED") }),
					"not stopped after SIGTERM: %s", c.mustCtr("tasks", "list"))
				data, _ := os.ReadFile(logFile)
				require.Contains(t, string(data), "got TERM")
				c.mustCtr("tasks", "delete", id)
				c.mustCtr("containers", "delete", id)
				c.checkClean()
				book.check(t, r, "ctr run -d, exec, ps, pause, resume, kill, delete")
			})
		})
	}
}

// TestDropinCRI is Kubernetes' path without a kubelet: containerd's CRI
// plugin, driven by crictl, runs a pod on the runtime handler "runc", then
// on "minidock" (BinaryName: minidock's runtime). A pod sandbox on host
// networking (no CNI) with the locally made pause image, two containers
// in it sharing its namespaces, exec (synchronous and streamed), logs,
// stop and remove, and nothing left.
func TestDropinCRI(t *testing.T) {
	skipUnlessDropin(t, "containerd", "ctr", "containerd-shim-runc-v2")
	crictlPath(t)
	rts := dropinRuntimes(t, t.TempDir(), true)
	peer := startContainerd(t, rts)
	hostNet, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	book := callBook{}
	for _, r := range rts {
		t.Run(r.name, func(t *testing.T) {
			c := peer.in(t)
			r.callLog()
			dir := t.TempDir()
			pod := filepath.Join(dir, "pod.json")
			writeJSON(t, pod, map[string]any{
				"metadata":      map[string]any{"name": "dropin-" + r.name, "namespace": "default", "uid": "dropin-" + r.name + "-uid"},
				"log_directory": filepath.Join(dir, "logs"),
				"linux": map[string]any{
					"cgroup_parent":    c.cgroupParent + "/pod-" + r.name,
					"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}}, // NODE: host network, no CNI
				},
			})
			ctr := func(name, script string) string {
				p := filepath.Join(dir, name+".json")
				writeJSON(t, p, map[string]any{
					"metadata": map[string]any{"name": name},
					"image":    map[string]any{"image": busyboxImage},
					"command":  []string{"sh", "-c", script},
					"log_path": name + ".log",
				})
				return p
			}
			podID := c.mustCrictl("runp", "--runtime", r.name, pod)
			c1 := c.mustCrictl("create", podID, ctr("c1", "echo c1 up; exec sleep 100000"), pod)
			c.mustCrictl("start", c1)
			c2 := c.mustCrictl("create", podID, ctr("c2", "trap 'echo c2 got TERM; exit 0' TERM; echo c2 up; sleep 100000 & wait"), pod)
			c.mustCrictl("start", c2)
			for _, id := range []string{c1, c2} {
				require.True(t, waitFor(10*time.Second, func() bool {
					out, _ := c.crictl("logs", id)
					return strings.Contains(out, "up")
				}), "container %s never logged", id)
			}

			// one pod: the containers share the sandbox's namespaces (the
			// network namespace is the host's: network = NODE)
			nsOf := func(id string) string {
				return c.mustCrictl("exec", "--sync", id, "sh", "-c", "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done")
			}
			ns1, ns2 := nsOf(c1), nsOf(c2)
			require.Equal(t, ns1, ns2, "the two containers of one pod")
			require.Equal(t, hostNet, strings.Fields(ns1)[0], "a host-network pod")
			ps := c.mustCrictl("exec", "--sync", c2, "ps", "-o", "pid,args")
			require.Contains(t, ps, "sleep 2147483647", "the pause process, seen from the pod's pid namespace")
			require.Contains(t, ps, "sleep 100000")

			out, code := c.crictl("exec", "--sync", c1, "sh", "-c", "echo sync-exec; exit 3")
			require.NotEqual(t, 0, code, out)
			require.Contains(t, out, "exited with 3", "crictl reports the exit code")
			require.Contains(t, c.mustCrictl("exec", c1, "sh", "-c", "echo streamed-exec"), "streamed-exec")
			require.Contains(t, c.mustCrictl("logs", c1), "c1 up")

			c.mustCrictl("stop", "--timeout", "10", c2)
			require.Contains(t, c.mustCrictl("logs", c2), "c2 got TERM")
			c.mustCrictl("stop", "--timeout", "10", c1)
			c.mustCrictl("rm", c1, c2)
			c.mustCrictl("stopp", podID)
			c.mustCrictl("rmp", podID)
			require.Empty(t, c.mustCrictl("pods", "--quiet"))
			require.Empty(t, c.mustCrictl("ps", "--all", "--quiet"))
			c.checkClean()
			removePodCgroup(t, c.cgroupParent+"/pod-"+r.name)
			book.check(t, r, "crictl runp, create, start (two), exec, stop, rm, stopp, rmp")
		})
	}
}

func writeJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	require.NoError(tb, os.WriteFile(path, mustJSON(tb, v), 0o644))
}

// removePodCgroup removes a pod's cgroup (rel, in every hierarchy), which
// runc makes as the parent of the pod's containers' and a kubelet would
// remove; it must be empty by then.
func removePodCgroup(tb testing.TB, rel string) {
	tb.Helper()
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", rel))
	for _, d := range dirs {
		if err := os.Remove(d); err != nil {
			tb.Errorf("leak: the pod's cgroup %s is not empty: %v", d, err)
		}
	}
}
