package rootfs

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
	"minidock/kernel"
)

// TestResolve: symlinks followed as the container sees them, ".." stopped
// at the root (as the kernel, runc and RESOLVE_IN_ROOT do), never a path
// outside root.
func TestResolve(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "var/lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"abs": "/etc", "up": "../../../../run", "var/lib/up": "../../../../../etc", "loop": "loop",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for in, want := range map[string]string{
		"/etc/hosts":         "/etc/hosts",
		"/../../x":           "/x",
		"/abs/passwd":        "/etc/passwd",
		"/up/lock":           "/run/lock",
		"/var/lib/up/passwd": "/etc/passwd",
		"/var/../../../tmp":  "/tmp",
		"/":                  "",
	} {
		got, err := Resolve(root, in)
		if err != nil || got != root+want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, root+want)
		}
	}
	if _, err := Resolve(root, "/loop/x"); err == nil || !strings.Contains(err.Error(), "too many symlinks") {
		t.Errorf("Resolve of a symlink loop: %v", err)
	}
}

// TestMountOpensTarget: Mount creates the mount point inside the rootfs,
// then mounts on the destination opened there (openat2 RESOLVE_IN_ROOT),
// by its descriptor, and opens it again for the remount and the
// propagation. A recording of the calls, no root needed.
func TestMountOpensTarget(t *testing.T) {
	root := t.TempDir()
	src := t.TempDir()
	rec := kernel.NewRecorder()
	m := specs.Mount{Destination: "/../vol/data", Type: "bind", Source: src, Options: []string{"rbind", "ro", "rshared"}}
	if err := Mount(rec, root, m, MountEnv{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "vol/data")); err != nil || !fi.IsDir() {
		t.Fatalf("mount point not made inside the rootfs: %v", err)
	}
	openAt := "openat2 100 (" + root + "), vol/data, O_RDONLY|O_CLOEXEC|O_PATH, RESOLVE_NO_MAGICLINKS|RESOLVE_IN_ROOT"
	want := []string{
		"open " + root + ", O_RDONLY|O_DIRECTORY|O_CLOEXEC|O_PATH",
		openAt, "mount src=" + src + ", dst=/proc/self/fd/101, flags=MS_BIND|MS_REC",
		openAt, "mount dst=/proc/self/fd/101, flags=MS_RDONLY|",
		openAt, "mount dst=/proc/self/fd/101, flags=MS_REC|MS_SHARED",
	}
	got := rec.Calls()
	if len(got) != len(want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
	for i, c := range got {
		if s := c.Op + " " + c.Args; !strings.HasPrefix(s, want[i]) {
			t.Errorf("call %d: %q, want %q", i, s, want[i])
		}
	}
	// a file bound gets an empty file as its mount point
	f := filepath.Join(src, "f")
	os.WriteFile(f, []byte("x"), 0o644)
	if err := Mount(rec, root, specs.Mount{Destination: "/etc/f", Type: "bind", Source: f}, MountEnv{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/f")); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Errorf("file mount point: %v %v", fi, err)
	}
}

// TestMakeTargetStaysInside: a mount point whose path holds a symlink out
// of the rootfs (planted after Resolve looked, as a container sharing a
// volume could) is made where the link leads inside the rootfs, or not at
// all when nothing is there; never outside.
func TestMakeTargetStaysInside(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	dest := filepath.Join(root, "vol/sub/dir")
	os.MkdirAll(filepath.Join(root, "vol"), 0o755)
	if err := os.Symlink(outside, filepath.Join(root, "vol/sub")); err != nil {
		t.Fatal(err)
	}
	if err := makeTarget(root, dest, "", false); err == nil {
		t.Errorf("made through a link to nothing inside the rootfs")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("made outside the rootfs: %v", ents)
	}
	os.MkdirAll(filepath.Join(root, outside), 0o755)
	if err := makeTarget(root, dest, "", false); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("made outside the rootfs: %v", ents)
	}
	if fi, err := os.Stat(filepath.Join(root, outside, "dir")); err != nil || !fi.IsDir() {
		t.Errorf("not made where the symlink leads inside the rootfs: %v", err)
	}
}

// swapper is the kernel's calls, but its first call first runs swap: the
// moment between Mount's look at the destination (Resolve, makeTarget)
// and its first kernel call, where a process sharing a volume with the
// container can swap a directory for a symlink (CVE-2021-30465).
type swapper struct {
	kernel.Calls
	once sync.Once
	swap func()
}

func (s *swapper) Open(path string, flags int) (int, error) {
	s.once.Do(s.swap)
	return s.Calls.Open(path, flags)
}

func (s *swapper) Openat2(dirfd int, root, path string, flags int, resolve uint64) (int, error) {
	s.once.Do(s.swap)
	return s.Calls.Openat2(dirfd, root, path, flags, resolve)
}

func (s *swapper) Mount(source, target, fstype string, flags uintptr, data string) error {
	s.once.Do(s.swap)
	return s.Calls.Mount(source, target, fstype, flags, data)
}

// TestMountRaceStaysInside makes the race of CVE-2021-30465 happen every
// time, with real mounts: once Mount has resolved and made the
// destination /vol/target, the directory is swapped for a symlink to a
// host directory before Mount's first kernel call. Mounting on the path
// (what Mount did before) lands on the host; mounting on the destination
// opened inside the rootfs lands inside it.
func TestMountRaceStaysInside(t *testing.T) {
	testutil.RequireRoot(t)
	root, outside := t.TempDir(), t.TempDir()
	vol := filepath.Join(root, "vol")
	// where the symlink leads inside the rootfs
	for _, d := range []string{filepath.Join(vol, "target"), filepath.Join(root, outside)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	var mounts []string
	go func() {
		// a mount namespace of this thread's own, private; the thread
		// dies with the goroutine (never unlocked), its mounts with it
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- err
			return
		}
		k := &swapper{Calls: kernel.NewLinux(nil), swap: func() {
			os.Rename(filepath.Join(vol, "target"), filepath.Join(vol, "moved"))
			os.Symlink(outside, filepath.Join(vol, "target"))
		}}
		err := Mount(k, root, specs.Mount{Destination: "/vol/target", Type: "tmpfs", Source: "tmpfs"}, MountEnv{})
		data, _ := os.ReadFile("/proc/thread-self/mountinfo")
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 && (strings.HasPrefix(f[4], root) || strings.HasPrefix(f[4], outside)) {
				mounts = append(mounts, f[4])
			}
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// the symlink was followed inside the rootfs, to <root><outside>
	want := []string{filepath.Join(root, outside)}
	if len(mounts) != 1 || mounts[0] != want[0] {
		t.Errorf("mounts %q, want %q: the mount left the rootfs", mounts, want)
	}
}
