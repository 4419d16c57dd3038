package archive

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// FuzzUnpack: no tar ever writes outside its target. Each input is
// unpacked twice in a sandbox of its own, as a layer (into a new
// directory) and as docker cp does (into an existing directory, paths
// resolved in a root); the sandbox holds, around the targets, files and
// directories that must not change, and inside them symlinks that lead
// out (relative, absolute, to the sandbox's parent). After each unpack
// the whole sandbox is compared with what it was: only the target may
// differ. A failed extraction into an existing directory must also
// leave that directory as it was (all or nothing).
func FuzzUnpack(f *testing.F) {
	for _, entries := range [][]entry{
		{dir("a"), file("a/b", "x"), symlink("a/l", "b"), hardlink("a/h", "a/b")},
		{symlink("esc", "../../outside"), file("esc/pwned", "x")},
		{file("escape/pwned", "through a symlink already there")},
		{file("abs/tmp/pwned", "through an absolute symlink")},
		{file("../pwned", "x")},
		{file("/pwned", "x")},
		{symlink("up", ".."), file("up/pwned", "x")},
		{hardlink("h", "../outside/secret")},
		{file(".wh.secret", ""), file("a/.wh..wh..opq", "")},
		{dir("d"), file("d", "file over dir"), dir("d"), file("d/x", "dir over file")},
		{file("keep", "replaced"), hardlink("late", "nothing")},
	} {
		f.Add(mkTar(f, entries...))
	}
	f.Add(sparseTar("sparse", 1<<20, fragment{0, "a"}, fragment{1<<20 - 1, "z"}))
	// a tmpfs when there is one: thousands of sandboxes a second
	// are made and removed, which a disk shared with others makes slow
	tmp := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		tmp = "/dev/shm"
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base, err := os.MkdirTemp(tmp, "minidock-fuzz-unpack-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(base)
		mk := func(p string, isDir bool, body string) {
			p = filepath.Join(base, p)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if isDir {
				os.MkdirAll(p, 0o755)
			} else {
				os.WriteFile(p, []byte(body), 0o644)
			}
		}
		mk("outside/secret", false, "secret")
		mk("outside/dir", true, "")
		mk("root/dst/keep", false, "keep")
		mk("root/dst/sub", true, "")
		mk("root/beside", false, "beside the target in the root")
		mk("layers", true, "")
		for link, target := range map[string]string{
			"root/dst/escape": "../../outside", "root/dst/abs": "/", "root/dst/up": "..",
			"root/dst/secret": filepath.Join(base, "outside/secret"),
		} {
			os.Symlink(target, filepath.Join(base, link))
		}
		opts := UnpackOptions{MaxFileSize: 1 << 20, MaxLayerSize: 4 << 20}

		before := tree(t, base, "")
		layer := filepath.Join(base, "layers/new")
		if _, err := Unpack(layer, bytes.NewReader(data), &opts); err != nil {
			if _, serr := os.Lstat(layer); serr == nil {
				t.Fatalf("a refused layer left %s (%v)", layer, err)
			}
		}
		if got := tree(t, base, layer); got != before {
			t.Fatalf("unpacking a layer changed things outside it:\n%s", diffLines(before, got))
		}

		opts.Root = filepath.Join(base, "root")
		dst := filepath.Join(base, "root/dst")
		beforeRoot := tree(t, base, "")
		_, err = Unpack(dst, bytes.NewReader(data), &opts)
		outside := tree(t, base, opts.Root)
		if want := treeWithout(beforeRoot, strings.TrimPrefix(opts.Root, base)); outside != want {
			t.Fatalf("extracting into %s changed things outside its root:\n%s", dst, diffLines(want, outside))
		}
		if err != nil {
			if got := tree(t, base, ""); got != beforeRoot {
				t.Fatalf("a refused extraction (%v) changed the root:\n%s", err, diffLines(beforeRoot, got))
			}
		}
	})
}

// tree describes everything under base except what is under skip: each
// entry's path, type, mode, owner, and a file's size and content hash or
// a link's target. It does not follow symlinks.
func tree(t *testing.T, base, skip string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if skip != "" && (p == skip || strings.HasPrefix(p, skip+"/")) {
			if p == skip && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		st := lstat(t, p)
		line := fmt.Sprintf("%s %o %d:%d", strings.TrimPrefix(p, base), st.Mode, st.Uid, st.Gid)
		switch st.Mode & 0o170000 {
		case 0o100000:
			data, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %d %x", st.Size, sha256.Sum256(data))
		case 0o120000:
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// treeWithout is a tree's description less the entries under dir.
func treeWithout(desc, dir string) string {
	var out []string
	for _, line := range strings.Split(desc, "\n") {
		p, _, _ := strings.Cut(line, " ")
		if p != dir && !strings.HasPrefix(p, dir+"/") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// diffLines shows the lines only one of a and b has.
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
