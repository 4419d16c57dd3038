package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// snapshot describes a tree: each entry's path, type, mode, owner,
// mtime and content (regular files) or target (symlinks).
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v %d", rel, fi.Mode(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			line += " " + string(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// An extraction into an existing directory (PUT archive, cp) that fails
// at a late entry leaves the directory exactly as it was: new entries
// gone, replaced files and a replaced directory back, a described-again
// directory with its old mode and times. Without the bad entry the same
// tar goes in whole, with nothing hidden left over.
func TestExtractAllOrNothing(t *testing.T) {
	root := t.TempDir()
	dst := filepath.Join(root, "dst")
	for _, d := range []string{"dst/sub", "dst/olddir/inner"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(dst, "keep"), []byte("old"), 0o644)
	os.WriteFile(filepath.Join(dst, "sub/f"), []byte("old f"), 0o600)
	os.WriteFile(filepath.Join(dst, "olddir/inner/x"), []byte("x"), 0o644)
	os.Symlink("keep", filepath.Join(dst, "link"))
	old := time.Unix(1600000000, 0)
	for _, p := range []string{"sub", "olddir", "."} {
		os.Chtimes(filepath.Join(dst, p), old, old)
	}
	before := snapshot(t, dst)

	subDir := dir("sub")
	subDir.Mode = 0o700
	entries := []entry{
		file("new1", "one"), file("keep", "new"), subDir, file("sub/f", "new f"),
		file("olddir", "a file over a directory"), symlink("link", "new1"),
		dir("newdir"), file("newdir/x", "x"), file("deep/er/file", "made with its parents"),
		file("new1", "written twice"),
	}
	bad := hardlink("bad", "nonexistent")
	_, err := Unpack(dst, bytes.NewReader(mkTar(t, append(entries, bad)...)), &UnpackOptions{Root: root})
	if err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("a hard link to nothing: %v", err)
	}
	if after := snapshot(t, dst); after != before {
		t.Errorf("a refused extraction changed the directory:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	if _, err := Unpack(dst, bytes.NewReader(mkTar(t, entries...)), &UnpackOptions{Root: root}); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dst)
	for _, want := range []string{"keep -rw-r--r--", " new\n", "new1 -rw-r--r-- 1700000000000000000 written twice", "olddir -rw-r--r-- 1700000000000000000 a file over a directory",
		"link Lrwxrwxrwx 1700000000000000000 -> new1", "sub drwx------", "sub/f -rw-r--r-- 1700000000000000000 new f", "deep/er/file"} {
		if !strings.Contains(got+"\n", want) {
			t.Errorf("after the extraction, no %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, ".minidock-undo") || strings.Contains(got, "olddir/inner") {
		t.Errorf("left over:\n%s", got)
	}
	_ = tar.TypeReg
}
