package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/internal/testutil"
)

// rootlessUser is an unprivileged user the test creates, and removes.
type rootlessUser struct {
	name     string
	uid, gid int
}

func newRootlessUser(t *testing.T) rootlessUser {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd is not installed")
	}
	name := fmt.Sprintf("mdrootless%d", os.Getpid()%100000)
	// no subordinate ids: useradd gives a new user a range of 65536 when
	// /etc/subuid exists (login.defs SUB_UID_COUNT), which would come
	// before the one a test adds
	if out, err := exec.Command("useradd", "--no-create-home", "--user-group", "--shell", "/bin/sh",
		"-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
		for _, f := range []string{"/etc/subuid", "/etc/subgid", "/etc/passwd", "/etc/group"} {
			if data, _ := os.ReadFile(f); strings.Contains(string(data), name+":") {
				t.Errorf("leak: %s still names %s", f, name)
			}
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return rootlessUser{name: name, uid: uid, gid: gid}
}

// run runs the minidock binary as the user, with an environment of its
// own (no XDG_RUNTIME_DIR: the runtime picks a state directory of the
// user's under /tmp).
func (u rootlessUser) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// bundle makes a bundle the user owns: `runtime spec --rootless` run as
// the user, a busybox rootfs, and a directory of the user's bound at
// /out, where the container leaves files to be looked at from the host.
// edit, when set, changes the config before it is written.
func (u rootlessUser) bundle(t *testing.T, script string, edit func(*specs.Spec)) (dir, out string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "minidock-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	out = filepath.Join(dir, "out")
	for _, d := range []string{dir, out} {
		os.MkdirAll(d, 0o755)
		if err := os.Chown(d, u.uid, u.gid); err != nil {
			t.Fatal(err)
		}
	}
	// the rootfs is the user's own, as one it unpacks itself is: the
	// container's root (the user) makes the mount point /out in it
	rootfs := filepath.Join(dir, "rootfs")
	testutil.MakeBusyboxRootfs(t, rootfs)
	if err := chownTree(rootfs, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	if o, err := u.run(t, "runtime", "spec", "--rootless", "--bundle", dir); err != nil {
		t.Fatalf("runtime spec --rootless as %s: %v: %s", u.name, err, o)
	}
	var spec specs.Spec
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || json.Unmarshal(data, &spec) != nil {
		t.Fatalf("read the config: %v", err)
	}
	spec.Process.Terminal = false
	spec.Process.Args = []string{"sh", "-c", script}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
	if edit != nil {
		edit(&spec)
	}
	data, _ = json.MarshalIndent(&spec, "", "\t")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, out
}

// chownTree gives every file below root, links themselves, to uid:gid.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func (u rootlessUser) cleanupState(t *testing.T) {
	t.Cleanup(func() { os.RemoveAll(fmt.Sprintf("/tmp/minidock-runtime-%d", u.uid)) })
}

// TestRootlessRuntime runs `minidock runtime` as a user created for the
// test: `runtime spec --rootless` and `runtime run` work without root.
// The container's root is the user on the host (a file it makes in a
// bound directory belongs to the user), it gets no cgroup (none is
// delegated here: the v1 hierarchies are root's), and limits are refused
// with the reason. With a range in /etc/subuid and newuidmap installed,
// the container has 65536 users: uid 1000 inside is a subordinate id
// outside.
func TestRootlessRuntime(t *testing.T) {
	u := newRootlessUser(t)
	u.cleanupState(t)
	cgroupsBefore := cgroupDirs("rl-")

	t.Run("own-ids", func(t *testing.T) {
		dir, out := u.bundle(t, "id -u; cat /proc/self/uid_map; touch /out/made-by-root; cat /proc/self/setgroups", nil)
		o, err := u.run(t, "runtime", "run", "--bundle", dir, "rl-own")
		if err != nil {
			t.Fatalf("runtime run as %s: %v: %s", u.name, err, o)
		}
		lines := strings.Fields(o)
		if len(lines) < 5 || lines[0] != "0" || lines[1] != "0" || lines[2] != strconv.Itoa(u.uid) || lines[3] != "1" || lines[4] != "deny" {
			t.Fatalf("inside: want uid 0, the map \"0 %d 1\" and setgroups deny, got %q", u.uid, o)
		}
		checkOwner(t, filepath.Join(out, "made-by-root"), u.uid)
	})

	t.Run("subordinate-range", func(t *testing.T) {
		if _, err := exec.LookPath("newuidmap"); err != nil {
			t.Skip("newuidmap is not installed (package uidmap)")
		}
		first := 300000 + (os.Getpid()%1000)*65536
		rng := fmt.Sprintf("%d-%d", first, first+65535)
		if o, err := exec.Command("usermod", "--add-subuids", rng, "--add-subgids", rng, u.name).CombinedOutput(); err != nil {
			t.Fatalf("usermod: %v: %s", err, o)
		}
		// chown needs CAP_CHOWN, which the spec, as runc's, does not give
		dir, out := u.bundle(t, "cat /proc/self/uid_map; touch /out/f; chown 1000:1000 /out/f; touch /out/g", func(s *specs.Spec) {
			c := s.Process.Capabilities
			c.Bounding, c.Effective, c.Permitted = append(c.Bounding, "CAP_CHOWN"), append(c.Effective, "CAP_CHOWN"), append(c.Permitted, "CAP_CHOWN")
		})
		o, err := u.run(t, "runtime", "run", "--bundle", dir, "rl-range")
		if err != nil {
			t.Fatalf("runtime run as %s: %v: %s", u.name, err, o)
		}
		want := fmt.Sprintf("0 %d 1 1 %d 65536", u.uid, first)
		if got := strings.Join(strings.Fields(o), " "); got != want {
			t.Fatalf("uid_map inside: %q, want %q", got, want)
		}
		checkOwner(t, filepath.Join(out, "f"), first+999) // container uid 1000 = first + 999
		checkOwner(t, filepath.Join(out, "g"), u.uid)
	})

	t.Run("limits-refused", func(t *testing.T) {
		limit := int64(64 << 20)
		dir, _ := u.bundle(t, "true", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		})
		o, err := u.run(t, "runtime", "run", "--bundle", dir, "rl-limits")
		if err == nil || !strings.Contains(o, "needs a cgroup") {
			t.Fatalf("a memory limit without a delegated cgroup: err %v, output %q; want the reason", err, o)
		}
	})

	if after := cgroupDirs("rl-"); len(after) != len(cgroupsBefore) {
		t.Errorf("cgroup directories changed: %v -> %v", cgroupsBefore, after)
	}
	if o, _ := u.run(t, "runtime", "list"); strings.Contains(o, "rl-") {
		t.Errorf("containers left in the user's state: %s", o)
	}
}

func checkOwner(t *testing.T, p string, uid int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatalf("the container's file: %v", err)
	}
	if int(st.Uid) != uid {
		t.Errorf("%s belongs to uid %d on the host, want %d", p, st.Uid, uid)
	}
}
