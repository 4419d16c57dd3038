package overlay

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"minidock/archive"
	"minidock/internal/testutil"
)

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return st
}

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
			if st := lstat(t, filepath.Join(m.Upper, "f0")); !archive.IsWhiteout(&st) {
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

// TestDiffRoundTrip (overlayfs and package archive together) changes files through a real overlay mount, turns the
// upper dir into a layer tar, checks its whiteout entries, unpacks it
// again and checks it matches the upper dir, and checks Changes.
func TestDiffRoundTrip(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	low := filepath.Join(base, "low")
	for name, body := range map[string]string{"etc/passwd": "root\n", "etc/motd": "hi\n",
		"data/a": "a", "data/b": "b", "data/sub/c": "c", "keep": "k"} {
		p := filepath.Join(low, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
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
	if err := archive.WriteTree(&exported, mg); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(mg); err != nil {
		t.Fatal(err)
	}
	if !archive.IsOpaque(filepath.Join(m.Upper, "data")) {
		t.Fatal("overlayfs did not make the recreated data/ opaque")
	}
	var layer bytes.Buffer
	if err := archive.WriteDiff(&layer, m.Upper); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, layer.Bytes())
	want := []string{"added", "added2 -> added", "data/", "data/.wh..wh..opq", "data/new", "etc/", "etc/.wh.motd", "etc/passwd"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("diff tar entries:\n got %q\nwant %q", names, want)
	}
	var again bytes.Buffer
	archive.WriteDiff(&again, m.Upper)
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
	if _, err := archive.Unpack(re, bytes.NewReader(layer.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(re, "etc/motd")); !archive.IsWhiteout(&st) {
		t.Error("etc/motd whiteout lost in the round trip")
	}
	if !archive.IsOpaque(filepath.Join(re, "data")) {
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
