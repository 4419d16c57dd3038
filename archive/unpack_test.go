package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

// entry is one tar entry for mkTar; Body is the content of a regular file.
type entry struct {
	tar.Header
	Body string
}

func file(name, body string) entry {
	return entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)}, Body: body}
}
func dir(name string) entry {
	return entry{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0)}}
}
func symlink(name, target string) entry {
	return entry{Header: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, ModTime: time.Unix(1700000000, 0)}}
}
func hardlink(name, target string) entry {
	return entry{Header: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, ModTime: time.Unix(1700000000, 0)}}
}

// mkTar builds a tarball from entries, exactly as given (no cleaning).
func mkTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if e.Body != "" {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return st
}

func TestUnpackFormats(t *testing.T) {
	testutil.RequireRoot(t)
	dst := filepath.Join(t.TempDir(), "layer")
	data := mkTar(t,
		dir("./"),
		dir("etc/"),
		file("etc/hostname", "box\n"),
		entry{Header: tar.Header{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1000, Gid: 1001, Size: 2, ModTime: time.Unix(1600000000, 0),
			PAXRecords: map[string]string{"SCHILY.xattr.user.note": "hello"}}, Body: "#!"},
		hardlink("bin/tool2", "bin/tool"),
		symlink("bin/sh", "/bin/busybox"),
		symlink("etc/rel", "../bin/tool"),
		file(".wh.gone", ""),
		dir("var/"),
		file("var/.wh..wh..opq", ""),
		file("var/kept", "k"),
		file("etc/.wh.hostname", ""), // same layer: the file stays
		entry{Header: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o600}},
	)
	n, err := Unpack(dst, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("content bytes = %d, want 7", n)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "etc/hostname")); string(b) != "box\n" {
		t.Errorf("etc/hostname = %q", b)
	}
	st := lstat(t, filepath.Join(dst, "gone"))
	if !IsWhiteout(&st) {
		t.Errorf("gone: mode %o rdev %d, want a 0:0 char device", st.Mode, st.Rdev)
	}
	if !IsOpaque(filepath.Join(dst, "var")) {
		t.Error("var is not opaque")
	}
	if IsOpaque(filepath.Join(dst, "etc")) {
		t.Error("etc is opaque")
	}
	tool := lstat(t, filepath.Join(dst, "bin/tool"))
	if tool.Mode&0o7777 != 0o4755 || tool.Uid != 1000 || tool.Gid != 1001 || tool.Mtim.Sec != 1600000000 {
		t.Errorf("bin/tool: mode %o uid %d gid %d mtime %d", tool.Mode&0o7777, tool.Uid, tool.Gid, tool.Mtim.Sec)
	}
	if tool.Nlink != 2 || lstat(t, filepath.Join(dst, "bin/tool2")).Ino != tool.Ino {
		t.Error("bin/tool2 is not a hard link of bin/tool")
	}
	var v [16]byte
	if n, err := unix.Lgetxattr(filepath.Join(dst, "bin/tool"), "user.note", v[:]); err != nil || string(v[:n]) != "hello" {
		t.Errorf("xattr user.note = %q, %v", v[:n], err)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "bin/sh")); l != "/bin/busybox" {
		t.Errorf("bin/sh -> %q", l)
	}
	if st := lstat(t, filepath.Join(dst, "etc")); st.Mtim.Sec != 1700000000 {
		t.Errorf("etc mtime %d: directory times not restored last", st.Mtim.Sec)
	}
	if st := lstat(t, filepath.Join(dst, "fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Error("fifo is not a fifo")
	}
}

// TestUnpackHostile feeds tarballs built to escape the layer directory:
// each must be refused with an error naming the entry, leave no layer
// directory behind and write nothing outside it.
func TestUnpackHostile(t *testing.T) {
	testutil.RequireRoot(t)
	big := tar.Header{Name: "huge", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 50}
	cases := []struct {
		name    string
		tar     func(outside string) []byte
		entry   string
		message string
	}{
		{"dotdot", func(string) []byte { return mkTar(t, file("a", "x"), file("../escaped", "x")) }, "../escaped", `".."`},
		{"dotdot-inner", func(string) []byte { return mkTar(t, file("a/../../escaped", "x")) }, "a/../../escaped", `".."`},
		{"absolute", func(outside string) []byte { return mkTar(t, file("/tmp/escaped", "x")) }, "/tmp/escaped", "absolute"},
		{"symlink-out", func(outside string) []byte { return mkTar(t, symlink("evil", "../../../../outside")) }, "evil", "points outside"},
		{"symlink-out-deep", func(outside string) []byte { return mkTar(t, dir("a/"), symlink("a/evil", "../../outside")) }, "a/evil", "points outside"},
		{"hardlink-out", func(string) []byte { return mkTar(t, hardlink("evil", "../outside/secret")) }, "evil", `".."`},
		{"hardlink-abs", func(outside string) []byte { return mkTar(t, hardlink("evil", "/etc/passwd")) }, "evil", "absolute"},
		{"symlinked-parent-abs", func(outside string) []byte { return mkTar(t, symlink("d", outside), file("d/pwned", "x")) }, "d/pwned", "outside the layer"},
		{"symlinked-parent-chain", func(outside string) []byte { return mkTar(t, symlink("d", "/"), file("d"+outside+"/pwned", "x")) }, "", "outside the layer"},
		{"hardlink-through-symlink", func(outside string) []byte { return mkTar(t, symlink("d", outside), hardlink("x", "d/secret")) }, "x", "outside the layer"},
		{"whiteout-through-symlink", func(outside string) []byte { return mkTar(t, symlink("d", outside), file("d/.wh.secret", "")) }, "d/.wh.secret", "outside the layer"},
		{"device", func(outside string) []byte {
			return mkTar(t, entry{Header: tar.Header{Name: "dev/sda", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 8, Devminor: 0}})
		}, "dev/sda", "device node"},
		{"block-device", func(outside string) []byte {
			return mkTar(t, entry{Header: tar.Header{Name: "disk", Typeflag: tar.TypeBlock, Mode: 0o600, Devmajor: 8, Devminor: 0}})
		}, "disk", "device node"},
		{"overlay-xattr", func(outside string) []byte {
			return mkTar(t, entry{Header: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/x"}}})
		}, "d/", "overlayfs xattr"},
		{"absurd-size", func(outside string) []byte { return hugeHeader(t, big) }, "huge", "over the limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "OUTSIDE")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600)
			// The layer sits two levels below base so that "../../outside"
			// from the layer root lands in base/outside.
			dst := filepath.Join(base, "x", "layer")
			os.Mkdir(filepath.Join(base, "x"), 0o755)
			_, err := Unpack(dst, bytes.NewReader(tc.tar(outside)), nil)
			if err == nil {
				t.Fatal("hostile layer was accepted")
			}
			name := tc.entry
			if name == "" {
				name = "d" + outside + "/pwned"
			}
			var ue *UnpackError
			if !errors.As(err, &ue) || ue.Entry != name {
				t.Fatalf("error %v does not name entry %q", err, name)
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), name) {
				t.Errorf("error %q lacks %q", err, tc.message)
			}
			if _, err := os.Lstat(dst); !os.IsNotExist(err) {
				t.Errorf("partly unpacked layer left behind: %v", err)
			}
			got, _ := filepath.Glob(filepath.Join(base, "*", "*"))
			want := []string{filepath.Join(outside, "secret")}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("files outside the layer: %v", got)
			}
			for _, p := range []string{"/escaped", "/tmp/escaped", "/OUTSIDE", "/pwned"} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

// hugeHeader is a tarball whose only header claims hdr.Size bytes that
// never follow.
func hugeHeader(t testing.TB, hdr tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&hdr); err != nil {
		t.Fatal(err)
	}
	tw.Flush() // reports the missing bytes; the header is written anyway
	return buf.Bytes()
}

func TestUnpackLimits(t *testing.T) {
	testutil.RequireRoot(t)
	data := mkTar(t, file("a", "12345"), file("b", "12345"))
	_, err := Unpack(filepath.Join(t.TempDir(), "l"), bytes.NewReader(data), &UnpackOptions{MaxLayerSize: 8})
	var ue *UnpackError
	if !errors.As(err, &ue) || ue.Entry != "b" {
		t.Fatalf("layer over MaxLayerSize: %v", err)
	}
	dev := mkTar(t, entry{Header: tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}})
	dst := filepath.Join(t.TempDir(), "l")
	if _, err := Unpack(dst, bytes.NewReader(dev), &UnpackOptions{AllowDevices: true}); err != nil {
		t.Fatalf("allowed device: %v", err)
	}
	if st := lstat(t, filepath.Join(dst, "null")); st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("null rdev = %d", st.Rdev)
	}
}

// layerDirs makes n lower layers under parent, each directory named by a
// 64-hex-digit id (like a chain id) with a diff/ inside; layer i holds f<i>
// and its own version of "common". Returned top-most first.
