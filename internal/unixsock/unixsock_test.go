package unixsock

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A path longer than a socket address can hold still works, both ways.
func TestLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, strings.Repeat("f", 64)+".sock")
	if len(path) <= 108 {
		t.Fatalf("path %d bytes: not long enough to test", len(path))
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "hello" {
		t.Fatalf("read %q", got)
	}
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the socket file went with the listener: %v", err)
	}
	short, release, err := Short(path)
	if err != nil || len(short) >= 100 {
		t.Fatalf("Short: %q %v", short, err)
	}
	if fi, err := os.Stat(short); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("stat %s: %v", short, err)
	}
	release()
	if _, err := Dial(filepath.Join(dir, "nosuch.sock")); err == nil || !strings.Contains(err.Error(), "nosuch.sock") {
		t.Fatalf("dial of a missing socket: %v", err)
	}
}
