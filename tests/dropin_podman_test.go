package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDropinPodman runs Debian's podman (through conmon) with --runtime
// runc, then minidock's runtime: the bundles podman writes, a run with an
// exit code, a detached container with exec and stop. Podman keeps
// everything under a directory of its own (--root, --runroot, --tmpdir),
// uses cgroupfs under a parent of its own and no network, and is checked
// for leftovers like the other engines.
func TestDropinPodman(t *testing.T) {
	skipUnlessDropin(t, "podman", "conmon")
	rts := dropinRuntimes(t, t.TempDir(), true)
	dir := t.TempDir()
	parent := fmt.Sprintf("/minidock-dropin-%d-%d", os.Getpid(), dropinSeq.Add(1))
	host := snapshotHost()
	mnt := newMountNamespace(t)
	podman := func(r dropinRuntime, args ...string) (string, int) {
		global := []string{"podman", "--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
			"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "none",
			"--storage-driver", "overlay", "--runtime", r.path, "--log-level", "error"}
		cmd := mnt.command(append(global, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
			"CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			if ee, ok := err.(interface{ ExitCode() int }); ok {
				return string(out), ee.ExitCode()
			}
			return err.Error(), -1
		}
		return string(out), 0
	}
	must := func(t *testing.T, r dropinRuntime, args ...string) string {
		t.Helper()
		out, code := podman(r, args...)
		require.Equal(t, 0, code, "podman %s: %s", strings.Join(args, " "), out)
		return strings.TrimSpace(out)
	}
	// podman's own config, so that /etc/containers does not steer it. As
	// root, podman gives every container RLIMIT_NOFILE and RLIMIT_NPROC 1048576 unless told
	// otherwise; where root lacks CAP_SYS_RESOURCE (CI here: hard limit
	// 20000) both runtimes rightly refuse that, so the containers get a
	// limit any caller may set.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "containers.conf"),
		[]byte("[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "registries.conf"), []byte("unqualified-search-registries = []\n"), 0o644))
	tar := filepath.Join(dir, "busybox.tar")
	require.NoError(t, os.WriteFile(tar, busyboxTar(t), 0o644))
	must(t, rts[0], "import", "--change", `CMD ["sh"]`, tar, busyboxImage)
	t.Cleanup(func() {
		if out, _ := podman(rts[0], "ps", "--all", "--quiet"); strings.TrimSpace(out) != "" {
			t.Errorf("leak: podman containers: %s", out)
			for _, r := range rts {
				podman(r, append([]string{"rm", "--force"}, strings.Fields(out)...)...)
			}
		}
		// conmon's cgroup is podman's own, which its cgroupfs manager
		// leaves behind after every container: not the runtime's
		for _, d := range cgroupDirs(strings.TrimPrefix(parent, "/")) {
			os.Remove(filepath.Join(d, "conmon"))
		}
		reapPeer(t, dir, parent)
		// the run root holds podman's storage bookkeeping too (the overlay
		// driver's feature probes, its mount counts), which outlives a run
		var left []string
		for _, f := range runtimeStateLeft(filepath.Join(dir, "run")) {
			if rel, _ := filepath.Rel(filepath.Join(dir, "run"), f); !strings.HasPrefix(rel, "overlay/") && !strings.HasPrefix(rel, "overlay-layers/") {
				left = append(left, f)
			}
		}
		if len(left) > 0 {
			t.Errorf("leak: podman's run root: %v", left)
		}
		if m := mnt.mountsUnder(dir); len(m) > 0 {
			t.Errorf("leak: mounts: %v", m)
		}
		host.check(t)
	})
	book := callBook{}
	for _, r := range rts {
		t.Run(r.name, func(t *testing.T) {
			r.callLog()
			out, code := podman(r, "run", "--rm", "--network", "none", "--cgroup-parent", parent, busyboxImage, "sh", "-c", "echo hello from pid $$; exit 3")
			require.Equal(t, 3, code, out)
			require.Contains(t, out, "hello from pid 1")
			book.check(t, r, "podman run --rm")

			name := "dropin-" + r.name
			t.Cleanup(func() { podman(r, "rm", "--force", name) })
			must(t, r, "run", "--detach", "--name", name, "--network", "none", "--cgroup-parent", parent, busyboxImage,
				"sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo up; sleep 100000 & wait")
			require.True(t, waitFor(10*time.Second, func() bool { out, _ := podman(r, "logs", name); return strings.Contains(out, "up") }))
			out, code = podman(r, "exec", name, "sh", "-c", "echo exec-ok beside $(cat /proc/1/cmdline); exit 4")
			require.Equal(t, 4, code, out)
			require.Contains(t, out, "exec-ok beside sh-ctrap")
			must(t, r, "stop", "--time", "10", name)
			require.Contains(t, must(t, r, "logs", name), "got TERM")
			must(t, r, "rm", name)
			book.check(t, r, "podman run -d, exec, stop, rm")
		})
	}
}
