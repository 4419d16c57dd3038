package overlay

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
	if !isWhiteout(&st) {
		t.Errorf("gone: mode %o rdev %d, want a 0:0 char device", st.Mode, st.Rdev)
	}
	if !isOpaque(filepath.Join(dst, "var")) {
		t.Error("var is not opaque")
	}
	if isOpaque(filepath.Join(dst, "etc")) {
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
func layerDirs(t testing.TB, parent string, n int) []string {
	lowers := make([]string, n)
	for i := 0; i < n; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		d := filepath.Join(parent, hex.EncodeToString(sum[:]), "diff")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), []byte(fmt.Sprint(i)), 0o644)
		os.WriteFile(filepath.Join(d, "common"), []byte(fmt.Sprint(i)), 0o644)
		lowers[n-1-i] = d
	}
	return lowers
}

func TestMountManyLayers(t *testing.T) {
	testutil.RequireRoot(t)
	testDir := filepath.Dir(t.TempDir()) // this test's own temp tree
	for _, n := range []int{1, 40, 120} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			base := t.TempDir()
			lowers := layerDirs(t, filepath.Join(base, "overlay"), n)
			if n == 120 {
				// 120 layers do not fit even relative to their parent: use
				// short links, as package image does.
				os.Mkdir(filepath.Join(base, "overlay", "l"), 0o755)
				for i, l := range lowers {
					link := filepath.Join(base, "overlay", "l", fmt.Sprintf("L%09d", i))
					if err := os.Symlink(l, link); err != nil {
						t.Fatal(err)
					}
					lowers[i] = link
				}
			}
			m := Mount{Lower: lowers, Upper: filepath.Join(base, "upper"), Work: filepath.Join(base, "work"), Target: filepath.Join(base, "merged")}
			for _, d := range []string{m.Upper, m.Work, m.Target} {
				os.Mkdir(d, 0o755)
			}
			if n == 40 && len(m.options(m.Lower)) < pageSize {
				t.Fatalf("test setup: 40 layers' options fit in a page; the relative-path path is not exercised")
			}
			if err := MountOverlay(m); err != nil {
				t.Fatal(err)
			}
			mounted, err := IsMounted(m.Target)
			if err != nil || !mounted {
				t.Fatalf("IsMounted = %v, %v", mounted, err)
			}
			for i := 0; i < n; i++ {
				if _, err := os.Stat(filepath.Join(m.Target, fmt.Sprintf("f%d", i))); err != nil {
					t.Fatalf("layer %d not visible: %v", i, err)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(m.Target, "common")); string(b) != fmt.Sprint(n-1) {
				t.Errorf("common = %q, want the top layer's %d", b, n-1)
			}
			// Copy-up and whiteout: writes land in upper only.
			os.WriteFile(filepath.Join(m.Target, "common"), []byte("new"), 0o644)
			if err := os.Remove(filepath.Join(m.Target, "f0")); err != nil {
				t.Fatal(err)
			}
			if err := Unmount(m.Target); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(m.Upper, "common")); string(b) != "new" {
				t.Errorf("upper/common = %q", b)
			}
			if st := lstat(t, filepath.Join(m.Upper, "f0")); !isWhiteout(&st) {
				t.Error("upper/f0 is not a whiteout")
			}
			if b, _ := os.ReadFile(filepath.Join(lowers[n-1], "f0")); string(b) != "0" {
				t.Error("lower layer was changed")
			}
			if err := Unmount(m.Target); err != nil {
				t.Errorf("second Unmount: %v", err)
			}
		})
	}
	if left := testutil.MountsUnder(t, testDir); len(left) > 0 {
		t.Errorf("mounts leaked: %v", left)
	}
}

func TestMountRefusesBadPaths(t *testing.T) {
	err := MountOverlay(Mount{Lower: []string{"/a:b"}, Upper: "/u", Work: "/w", Target: "/m"})
	if err == nil || !strings.Contains(err.Error(), "/a:b") {
		t.Fatalf("path with ':' accepted: %v", err)
	}
	if err := MountOverlay(Mount{Lower: []string{"/a"}, Target: "/m"}); err == nil {
		t.Fatal("read-only overlay with one layer accepted")
	}
}

// TestDiffRoundTrip changes files through a real overlay mount, turns the
// upper dir into a layer tar, checks its whiteout entries, unpacks it
// again and checks it matches the upper dir, and checks Changes.
func TestDiffRoundTrip(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	low := filepath.Join(base, "low")
	if _, err := Unpack(low, bytes.NewReader(mkTar(t,
		dir("etc/"), file("etc/passwd", "root\n"), file("etc/motd", "hi\n"),
		dir("data/"), file("data/a", "a"), file("data/b", "b"), dir("data/sub/"), file("data/sub/c", "c"),
		file("keep", "k"),
	)), nil); err != nil {
		t.Fatal(err)
	}
	m := Mount{Lower: []string{low}, Upper: filepath.Join(base, "upper"), Work: filepath.Join(base, "work"), Target: filepath.Join(base, "merged")}
	for _, d := range []string{m.Upper, m.Work, m.Target} {
		os.Mkdir(d, 0o755)
	}
	if err := MountOverlay(m); err != nil {
		t.Fatal(err)
	}
	mg := m.Target
	steps := []error{
		os.WriteFile(filepath.Join(mg, "etc/passwd"), []byte("root\nuser\n"), 0o644), // copy-up
		os.Remove(filepath.Join(mg, "etc/motd")),                                     // whiteout
		os.RemoveAll(filepath.Join(mg, "data")),                                      // dir gone...
		os.Mkdir(filepath.Join(mg, "data"), 0o755),                                   // ...and back: opaque
		os.WriteFile(filepath.Join(mg, "data/new"), []byte("n"), 0o644),
		os.WriteFile(filepath.Join(mg, "added"), []byte("x"), 0o600),
		os.Link(filepath.Join(mg, "added"), filepath.Join(mg, "added2")),
	}
	for i, err := range steps {
		if err != nil {
			Unmount(mg)
			t.Fatalf("step %d: %v", i, err)
		}
	}
	var exported bytes.Buffer
	if err := WriteTree(&exported, mg); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(mg); err != nil {
		t.Fatal(err)
	}
	if !isOpaque(filepath.Join(m.Upper, "data")) {
		t.Fatal("overlayfs did not make the recreated data/ opaque")
	}
	var layer bytes.Buffer
	if err := WriteDiff(&layer, m.Upper); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, layer.Bytes())
	want := []string{"added", "added2 -> added", "data/", "data/.wh..wh..opq", "data/new", "etc/", "etc/.wh.motd", "etc/passwd"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("diff tar entries:\n got %q\nwant %q", names, want)
	}
	var again bytes.Buffer
	WriteDiff(&again, m.Upper)
	if !bytes.Equal(again.Bytes(), layer.Bytes()) {
		t.Error("WriteDiff is not deterministic")
	}
	exp := tarNames(t, exported.Bytes())
	wantExp := []string{"added", "added2 -> added", "data/", "data/new", "etc/", "etc/passwd", "keep"}
	if !reflect.DeepEqual(exp, wantExp) {
		t.Errorf("export entries:\n got %q\nwant %q", exp, wantExp)
	}

	// Unpacking the diff gives back the same upper dir.
	re := filepath.Join(base, "re")
	if _, err := Unpack(re, bytes.NewReader(layer.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(re, "etc/motd")); !isWhiteout(&st) {
		t.Error("etc/motd whiteout lost in the round trip")
	}
	if !isOpaque(filepath.Join(re, "data")) {
		t.Error("data opaque marker lost in the round trip")
	}

	changes, err := Changes(m.Upper, m.Lower)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind.String()+" "+c.Path)
	}
	wantCh := []string{"A /added", "A /added2", "C /data", "D /data/a", "D /data/b", "A /data/new", "D /data/sub", "C /etc", "D /etc/motd", "C /etc/passwd"}
	if !reflect.DeepEqual(got, wantCh) {
		t.Errorf("changes:\n got %q\nwant %q", got, wantCh)
	}
	if left := testutil.MountsUnder(t, filepath.Dir(base)); len(left) > 0 {
		t.Errorf("mounts leaked: %v", left)
	}
}

// tarNames lists a tarball's entries ("name -> target" for hard links).
func tarNames(t testing.TB, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		n := h.Name
		if h.Typeflag == tar.TypeLink {
			n += " -> " + h.Linkname
		}
		names = append(names, n)
	}
	return names
}
