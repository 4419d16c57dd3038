package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// A directory swapped for a symlink to the host's / while a tree is being
// archived (what a container's process can do to `docker cp` or export):
// each walk either ends with the tree's own entries or fails naming the
// change; it never lists or reads anything outside the tree.
func TestWriteTreeDirectorySwappedForSymlink(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b/c", "a/b/d"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a/b/c/in1", "a/b/d/in2", "a/in3"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("inside\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/", filepath.Join(root, "swap")); err != nil {
		t.Fatal(err)
	}
	inside := map[string]bool{"a/": true, "a/b/": true, "a/b/c/": true, "a/b/d/": true,
		"a/b/c/in1": true, "a/b/d/in2": true, "a/in3": true, "swap": true}

	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			// a and swap trade places: "a" is now the symlink to /
			unix.Renameat2(unix.AT_FDCWD, filepath.Join(root, "a"), unix.AT_FDCWD, filepath.Join(root, "swap"), unix.RENAME_EXCHANGE)
		}
	}()
	defer func() { stop.Store(true); <-done }()

	var ok, failed int
	for i := 0; i < 300; i++ {
		var buf bytes.Buffer
		err := WriteTree(&buf, root)
		tr := tar.NewReader(&buf)
		for {
			h, rerr := tr.Next()
			if rerr != nil {
				break
			}
			// while swapped, "a" is the symlink and "swap" the directory
			name := h.Name
			if strings.HasPrefix(name, "swap/") {
				name = "a/" + strings.TrimPrefix(name, "swap/")
			} else if name == "swap/" {
				name = "a/"
			} else if name == "a" {
				name = "swap"
			}
			if !inside[name] {
				t.Fatalf("walk %d archived %q (type %c), which is not in the tree", i, h.Name, h.Typeflag)
			}
			if h.Typeflag == tar.TypeReg {
				// a walk stopped mid-file leaves the tar cut short there
				body, rerr := io.ReadAll(tr)
				if rerr == nil && string(body) != "inside\n" {
					t.Fatalf("walk %d read %q for %s", i, body, h.Name)
				}
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), "while being archived") && !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") {
				t.Fatalf("walk %d: unexpected error: %v", i, err)
			}
			failed++
		} else {
			ok++
		}
	}
	t.Logf("%d walks complete, %d stopped by the swap", ok, failed)
}
