package volume

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

// statOf is lstat(2), failing the test on an error.
func statOf(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCopyUp: a new volume gets the image's content with its owners,
// modes, set-id bits, xattrs, times, symlinks (not followed), hard links,
// device nodes and fifos; a volume with data is never written again.
func TestCopyUp(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := t.TempDir()
	src := filepath.Join(rootfs, "var/lib/app")
	must(t, os.MkdirAll(filepath.Join(src, "sub/deeper"), 0o755))
	past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	file := filepath.Join(src, "file")
	must(t, os.WriteFile(file, []byte("image content"), 0o600))
	must(t, os.Chown(file, 1002, 1003))
	must(t, os.Chmod(file, 0o4751|os.ModeSetuid))
	must(t, unix.Setxattr(file, "user.origin", []byte("image"), 0))
	must(t, unix.Setxattr(file, "trusted.note", []byte("root only"), 0))
	must(t, os.Chtimes(file, past, past))
	must(t, os.Link(file, filepath.Join(src, "sub/hardlink")))
	must(t, os.WriteFile(filepath.Join(src, "sub/deeper/leaf"), []byte("leaf"), 0o644))
	must(t, os.Symlink("../file", filepath.Join(src, "sub/rel")))
	must(t, unix.Lchown(filepath.Join(src, "sub/rel"), 1004, 1004))
	must(t, os.Symlink("/etc/shadow", filepath.Join(src, "abs")))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(t, unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	must(t, err)
	defer l.Close()
	must(t, os.Chown(src, 999, 998))
	must(t, os.Chmod(src, 0o750))
	must(t, unix.Setxattr(src, "user.dir", []byte("d"), 0))
	must(t, os.Chtimes(filepath.Join(src, "sub"), past, past))

	vol := filepath.Join(t.TempDir(), "_data")
	must(t, os.Mkdir(vol, 0o755))
	copied, err := CopyUp(rootfs, "/var/lib/app", vol)
	if err != nil || !copied {
		t.Fatalf("CopyUp = %v, %v", copied, err)
	}

	// the volume's root takes the image directory's owner, mode, xattrs
	if st := statOf(t, vol); st.Uid != 999 || st.Gid != 998 || st.Mode&0o7777 != 0o750 {
		t.Errorf("volume root %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if v := getxattr(t, vol, "user.dir"); v != "d" {
		t.Errorf("volume root xattr %q", v)
	}
	f := filepath.Join(vol, "file")
	st := statOf(t, f)
	if st.Uid != 1002 || st.Gid != 1003 || st.Mode&0o7777 != 0o4751 {
		t.Errorf("file %d:%d %o, want 1002:1003 4751", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if !time.Unix(st.Mtim.Unix()).Equal(past) {
		t.Errorf("file mtime %v, want %v", time.Unix(st.Mtim.Unix()), past)
	}
	if data, _ := os.ReadFile(f); string(data) != "image content" {
		t.Errorf("file content %q", data)
	}
	for k, want := range map[string]string{"user.origin": "image", "trusted.note": "root only"} {
		if v := getxattr(t, f, k); v != want {
			t.Errorf("xattr %s = %q, want %q", k, v, want)
		}
	}
	if hl := statOf(t, filepath.Join(vol, "sub/hardlink")); hl.Ino != st.Ino || hl.Nlink != 2 {
		t.Errorf("hard link: inode %d (file %d), %d links", hl.Ino, st.Ino, hl.Nlink)
	}
	if sub := statOf(t, filepath.Join(vol, "sub")); !time.Unix(sub.Mtim.Unix()).Equal(past) {
		t.Errorf("directory mtime %v, want %v (set after its children)", time.Unix(sub.Mtim.Unix()), past)
	}
	if data, _ := os.ReadFile(filepath.Join(vol, "sub/deeper/leaf")); string(data) != "leaf" {
		t.Errorf("deep file %q", data)
	}
	if target, _ := os.Readlink(filepath.Join(vol, "sub/rel")); target != "../file" {
		t.Errorf("relative symlink -> %q", target)
	}
	if ls := statOf(t, filepath.Join(vol, "sub/rel")); ls.Uid != 1004 {
		t.Errorf("symlink owner %d", ls.Uid)
	}
	if target, _ := os.Readlink(filepath.Join(vol, "abs")); target != "/etc/shadow" {
		t.Errorf("absolute symlink -> %q (it must be copied, not followed)", target)
	}
	if fi := statOf(t, filepath.Join(vol, "fifo")); fi.Mode&unix.S_IFMT != unix.S_IFIFO || fi.Mode&0o777 != 0o640 {
		t.Errorf("fifo mode %o", fi.Mode)
	}
	if n := statOf(t, filepath.Join(vol, "null")); n.Mode&unix.S_IFMT != unix.S_IFCHR || n.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("device node mode %o rdev %d", n.Mode, n.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(vol, "sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket copied: %v", err)
	}

	// once there is data, never again: the image's changes do not come in
	must(t, os.WriteFile(filepath.Join(src, "new"), []byte("later"), 0o644))
	must(t, os.WriteFile(f, []byte("changed in the volume"), 0o644))
	copied, err = CopyUp(rootfs, "/var/lib/app", vol)
	if err != nil || copied {
		t.Errorf("CopyUp into a volume with data = %v, %v", copied, err)
	}
	if _, err := os.Stat(filepath.Join(vol, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Error("CopyUp wrote into a volume with data")
	}
	if data, _ := os.ReadFile(f); string(data) != "changed in the volume" {
		t.Errorf("volume data overwritten: %q", data)
	}

	// nothing at the path: nothing to copy; a file there: a volume cannot
	// cover it
	empty := t.TempDir()
	if copied, err := CopyUp(rootfs, "/nothing/here", empty); err != nil || copied {
		t.Errorf("CopyUp of a missing path = %v, %v", copied, err)
	}
	_, err = CopyUp(rootfs, "/var/lib/app/file", empty)
	if err == nil || !strings.Contains(err.Error(), "cannot mount volume over existing file, file exists /var/lib/app/file") {
		t.Errorf("CopyUp of a file: %v", err)
	}
}

func getxattr(t *testing.T, p, name string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(buf[:n])
}

// TestCopyUpHostileImage: an image whose paths are symlinks pointing out
// of its rootfs, absolute or through "..", never makes the copy read the
// host: the path resolves inside the rootfs as in the container, and a
// symlink inside the tree is copied as a symlink.
func TestCopyUpHostileImage(t *testing.T) {
	testutil.RequireRoot(t)
	secretDir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(secretDir, "secret"), []byte("host secret"), 0o600))
	rootfs := t.TempDir()
	// inside the rootfs, at the host's path of the secret, a decoy: what
	// the container itself would see there
	must(t, os.MkdirAll(filepath.Join(rootfs, secretDir), 0o755))
	must(t, os.WriteFile(filepath.Join(rootfs, secretDir, "decoy"), []byte("image"), 0o644))
	must(t, os.Symlink(secretDir, filepath.Join(rootfs, "abs")))                                 // absolute
	must(t, os.Symlink(strings.Repeat("../", 12)+secretDir[1:], filepath.Join(rootfs, "climb"))) // relative, climbing out
	must(t, os.Symlink(filepath.Dir(secretDir), filepath.Join(rootfs, "mid")))                   // a middle component
	must(t, os.MkdirAll(filepath.Join(rootfs, "data"), 0o755))
	must(t, os.Symlink(secretDir, filepath.Join(rootfs, "data/out")))                // inside the tree
	must(t, os.Symlink("/proc/self/root"+secretDir, filepath.Join(rootfs, "magic"))) // a magic link on the way

	for _, dest := range []string{"/abs", "/climb", "/mid/" + filepath.Base(secretDir), "/../../.." + secretDir} {
		vol := t.TempDir()
		copied, err := CopyUp(rootfs, dest, vol)
		if err != nil || !copied {
			t.Errorf("CopyUp(%s) = %v, %v", dest, copied, err)
			continue
		}
		if _, err := os.Stat(filepath.Join(vol, "secret")); err == nil {
			t.Errorf("CopyUp(%s) copied the host's secret", dest)
		}
		if _, err := os.Stat(filepath.Join(vol, "decoy")); err != nil {
			t.Errorf("CopyUp(%s) did not copy the rootfs's own path: %v", dest, err)
		}
	}
	vol := t.TempDir()
	if _, err := CopyUp(rootfs, "/data", vol); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(vol, "out")); err != nil || target != secretDir {
		t.Errorf("symlink in the tree: %q, %v", target, err)
	}
	if entries, _ := os.ReadDir(vol); len(entries) != 1 {
		t.Errorf("copy of /data holds %v", entries)
	}
	// /proc/self/root inside the rootfs is no way out either: it is not
	// there, and a magic link would be refused
	vol = t.TempDir()
	if copied, err := CopyUp(rootfs, "/magic", vol); copied {
		t.Errorf("CopyUp through /proc/self/root copied (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(secretDir, "secret")); err != nil {
		t.Errorf("the host's file is gone: %v", err)
	}
}
