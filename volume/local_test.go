package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/internal/mountinfo"
	"minidock/internal/testutil"
)

// rootStore is a store in a fresh directory for a test that mounts, which
// checks at the end that nothing is left mounted below the test's
// temporary directories, nor anywhere on the host.
func rootStore(t *testing.T) (*Store, string) {
	t.Helper()
	testutil.RequireRoot(t)
	before := testutil.Mounts(t)
	s, root := openStore(t)
	t.Cleanup(func() {
		assertNoMounts(t, filepath.Dir(filepath.Dir(root)))
		if after := testutil.Mounts(t); len(after) != len(before) {
			t.Errorf("the host's mount table changed: %d mounts before, %d after", len(before), len(after))
		}
	})
	return s, root
}

// assertNoMounts fails the test if anything is mounted at or below dir,
// and unmounts it so that the next test starts clean.
func assertNoMounts(t *testing.T, dir string) {
	t.Helper()
	left := testutil.MountsUnder(t, dir)
	for i := len(left) - 1; i >= 0; i-- {
		unix.Unmount(left[i], unix.MNT_DETACH)
	}
	if len(left) > 0 {
		t.Errorf("mounts left under %s: %v", dir, left)
	}
}

// mountsAt counts the mounts stacked at p.
func mountsAt(t *testing.T, p string) int {
	t.Helper()
	table, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range table {
		if m.Point == p {
			n++
		}
	}
	return n
}

// TestTmpfsVolume: a volume created with -o type=tmpfs is a memory
// filesystem mounted on its _data by its first user and unmounted by its
// last, its data gone with it, as with Docker's local driver.
func TestTmpfsVolume(t *testing.T) {
	s, _ := rootStore(t)
	v := mustCreate(t, s, api.VolumeCreateOptions{Name: "mem", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700"}})
	if mountsAt(t, v.Mountpoint) != 0 {
		t.Fatal("mounted at create")
	}
	p, err := s.Mount("mem", "c1")
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil || st.Type != unix.TMPFS_MAGIC || st.Blocks*uint64(st.Bsize) != 1<<20 {
		t.Errorf("_data is not a 1 MiB tmpfs: type %#x, %d blocks of %d, %v", st.Type, st.Blocks, st.Bsize, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want the o=mode=0700", fi.Mode())
	}
	os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644)
	if _, err := s.Mount("mem", "c2"); err != nil {
		t.Fatal(err)
	}
	s.Mount("mem", "c2") // once per container
	if n := mountsAt(t, p); n != 1 {
		t.Errorf("%d mounts on _data with two users, want 1", n)
	}
	if err := s.Unmount("mem", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "f")); err != nil || mountsAt(t, p) != 1 {
		t.Errorf("unmounted while c2 uses it: %v", err)
	}
	if err := s.Remove("mem", false); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove while mounted for c2: %v", err)
	}
	if err := s.Unmount("mem", "c2"); err != nil {
		t.Fatal(err)
	}
	if mountsAt(t, p) != 0 {
		t.Error("still mounted after the last user")
	}
	if _, err := os.Stat(filepath.Join(p, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tmpfs data outlived the unmount: %v", err)
	}
	// a container removed without being stopped first still unmounts it
	mounts, _ := s.Setup("c3", []Mount{{Type: "volume", Name: "mem", Destination: "/m"}})
	if err := s.MountAll("c3", mounts); err != nil || mountsAt(t, p) != 1 {
		t.Fatalf("MountAll: %v", err)
	}
	if err := s.Teardown("c3", mounts, true); err != nil || mountsAt(t, p) != 0 {
		t.Errorf("Teardown without a stop: %v, %d mounts left", err, mountsAt(t, p))
	}
	if err := s.Remove("mem", false); err != nil {
		t.Error(err)
	}
}

// TestBindVolume: -o type=none,o=bind,device=DIR shows a host directory
// as the volume; removing the volume never deletes the host's files,
// even when it is still mounted (a daemon that crashed).
func TestBindVolume(t *testing.T) {
	s, root := rootStore(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hello"), []byte("host data"), 0o644)
	mustCreate(t, s, api.VolumeCreateOptions{Name: "hostdir", DriverOpts: map[string]string{"type": "none", "device": host, "o": "bind"}})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "rodir", DriverOpts: map[string]string{"type": "none", "device": host, "o": "bind,ro"}})

	p, err := s.Mount("hostdir", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(p, "hello")); string(data) != "host data" {
		t.Errorf("volume shows %q, %v", data, err)
	}
	if err := os.WriteFile(filepath.Join(p, "written"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "written")); err != nil {
		t.Errorf("a write to the volume is not in the host directory: %v", err)
	}
	ro, err := s.Mount("rodir", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write to an o=bind,ro volume: %v", err)
	}
	s.Unmount("rodir", "c1")

	// the daemon dies with the volume mounted; the new one finds it so
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Remove("hostdir", false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"hello", "written"} {
		if _, err := os.Stat(filepath.Join(host, f)); err != nil {
			t.Errorf("removing the volume deleted the host's %s: %v", f, err)
		}
	}

	// a plain volume with something mounted in it that the store does not
	// know of: refused, rather than deleting through the mount
	v := mustCreate(t, s2, api.VolumeCreateOptions{Name: "plain"})
	sub := filepath.Join(v.Mountpoint, "sub")
	os.Mkdir(sub, 0o755)
	if err := unix.Mount(host, sub, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	err = s2.Remove("plain", false)
	if err == nil || !strings.Contains(err.Error(), "is mounted there") {
		t.Errorf("Remove of a volume with a mount inside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(host, "hello")); err != nil {
		t.Errorf("host file deleted through a mount: %v", err)
	}
	unix.Unmount(sub, unix.MNT_DETACH)
	if err := s2.Remove("plain", false); err != nil {
		t.Error(err)
	}
	assertOnlyVolumes(t, root, "rodir")
}

// TestRestoreMounted: a daemon restart with a tmpfs volume mounted for a
// running container: the volume stays mounted, its data with it; the
// first Unmount of the container after the restart unmounts it; a volume
// whose container stopped while the daemon was down goes at UnmountIdle.
func TestRestoreMounted(t *testing.T) {
	s, root := rootStore(t)
	opts := map[string]string{"type": "tmpfs", "device": "tmpfs"}
	mustCreate(t, s, api.VolumeCreateOptions{Name: "running", DriverOpts: opts})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "stopped", DriverOpts: opts})
	runMounts, _ := s.Setup("c1", []Mount{{Type: "volume", Name: "running", Destination: "/r"}})
	stopMounts, _ := s.Setup("c2", []Mount{{Type: "volume", Name: "stopped", Destination: "/s"}})
	if err := s.MountAll("c1", runMounts); err != nil {
		t.Fatal(err)
	}
	s.MountAll("c2", stopMounts)
	os.WriteFile(filepath.Join(runMounts[0].Source, "state"), []byte("kept"), 0o644)

	s2, err := Open(root) // the daemon restarted; c2 exited meanwhile
	if err != nil {
		t.Fatal(err)
	}
	s2.Restore("c1", runMounts, true)
	s2.Restore("c2", stopMounts, false)
	if err := s2.UnmountIdle(); err != nil {
		t.Fatal(err)
	}
	if mountsAt(t, runMounts[0].Source) != 1 || mountsAt(t, stopMounts[0].Source) != 0 {
		t.Errorf("after restore: running mounted %d times, stopped %d", mountsAt(t, runMounts[0].Source), mountsAt(t, stopMounts[0].Source))
	}
	if data, _ := os.ReadFile(filepath.Join(runMounts[0].Source, "state")); string(data) != "kept" {
		t.Errorf("data of the running container's volume: %q", data)
	}
	if err := s2.UnmountAll("c1", runMounts); err != nil {
		t.Fatal(err)
	}
	if mountsAt(t, runMounts[0].Source) != 0 {
		t.Error("still mounted after its container stopped")
	}
}
