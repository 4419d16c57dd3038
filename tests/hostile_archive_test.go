package tests

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PUT archive is all or nothing: a tar whose last entry is refused
// (a hard link to nothing) leaves the container's directory as it was,
// the files it would have replaced included; the same tar without that
// entry goes in whole.
func TestPutArchiveAllOrNothing(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	id := e.runToEnd("files", "sh", "-c", "mkdir -p /data/sub && echo old > /data/keep && echo old f > /data/sub/f")
	before := e.archive(id, "/data")
	good := []tarEntry{
		{tar.TypeReg, "new1", "one"}, {tar.TypeReg, "keep", "new"}, {tar.TypeDir, "sub", ""},
		{tar.TypeReg, "sub/f", "new f"}, {tar.TypeReg, "made/with/parents", "x"},
	}
	bad := append(append([]tarEntry{}, good...), tarEntry{tar.TypeLink, "late", "nonexistent"})
	st, body := e.do("PUT", "/containers/"+id+"/archive?path=/data", makeTar(t, bad...))
	if st != 400 || !strings.Contains(string(body), "nonexistent") {
		t.Errorf("PUT with a late bad entry: %d %s; want 400 naming it", st, body)
	}
	after := e.archive(id, "/data")
	if strings.Join(keys(after), " ") != strings.Join(keys(before), " ") || after["data/keep"] != "old\n" || after["data/sub/f"] != "old f\n" {
		t.Errorf("a refused PUT changed /data: before %v, after %v", before, after)
	}
	e.must(200, "PUT", "/containers/"+id+"/archive?path=/data", makeTar(t, good...), nil)
	after = e.archive(id, "/data")
	if after["data/keep"] != "new" || after["data/new1"] != "one" || after["data/made/with/parents"] != "x" || after["data/sub/f"] != "new f" {
		t.Errorf("PUT of the good entries: %v", after)
	}
	for name := range after {
		if strings.Contains(name, ".minidock-undo") {
			t.Errorf("left over: %s", name)
		}
	}
}

// A symlink loop is the client's doing: HEAD and GET archive through it
// are 400s that say so (not 500s), and cp -L reports it instead of
// copying a dangling link.
func TestArchiveSymlinkLoop(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	id := e.runToEnd("loops", "sh", "-c", "ln -s /loop /loop && ln -s b /a && ln -s a /b")
	for _, p := range []string{"/loop/", "/loop/x", "/a/", "/loop", "/a"} {
		for _, method := range []string{"GET", "HEAD"} {
			resp := e.request(method, "/containers/"+id+"/archive?path="+p, nil)
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("%s archive of %s: %d, want 400", method, p, resp.StatusCode)
			}
		}
	}
	st, body := e.do("GET", "/containers/"+id+"/archive?path=/loop/", nil)
	if st != 400 || !strings.Contains(string(body), "symbolic links") {
		t.Errorf("GET archive of /loop/: %d %s", st, body)
	}
	dst := t.TempDir()
	out, code := e.cli("cp", "-L", "loops:/loop", dst)
	if code == 0 || !strings.Contains(out, "symbolic links") {
		t.Errorf("cp -L of a symlink loop: exit %d: %q", code, out)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 0 {
		t.Errorf("cp -L of a symlink loop made %v", ents)
	}
	// a good link still copies, followed
	out, code = e.cli("cp", "-L", "loops:/bin/sh", filepath.Join(dst, "sh"))
	if fi, err := os.Lstat(filepath.Join(dst, "sh")); code != 0 || err != nil || !fi.Mode().IsRegular() {
		t.Errorf("cp -L of /bin/sh: exit %d %q, %v", code, out, err)
	}
}
