// Package testutil holds the few helpers that real-kernel tests share: the
// root check, a busybox root filesystem made from the static busybox of
// Debian's busybox-static package, and snapshots for leak checks.
package testutil

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// RequireRoot skips a test that needs real privileges when not run as root.
// CI runs as root, so there these tests always run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root)")
	}
}

// BusyboxPath is the static busybox that test images are made from.
func BusyboxPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("MINIDOCK_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox"} {
		if p == "" {
			continue
		}
		if isStatic(p) {
			return p
		}
	}
	t.Fatal("no static busybox found: apt-get install busybox-static")
	return ""
}

// isStatic reports whether p is an ELF executable with no program
// interpreter, i.e. one that runs in an empty root filesystem.
func isStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// MakeBusyboxRootfs fills dir with a minimal root filesystem: /bin/busybox
// with one symlink per applet, and the usual empty top-level directories.
func MakeBusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	bb := BusyboxPath(t)
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root", "home", "var", "run", "usr/bin", "sbin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		_ = os.Symlink("busybox", filepath.Join(dir, "bin", applet))
	}
	_ = os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
}

// Mounts returns the mount points of this mount namespace, sorted, for
// before/after comparisons in leak checks.
func Mounts(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 {
			m = append(m, fields[4])
		}
	}
	sort.Strings(m)
	return m
}

// MountsUnder returns the mount points at or below dir: a leak check that
// other tests mounting elsewhere at the same time cannot disturb.
func MountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	var m []string
	for _, p := range Mounts(t) {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			m = append(m, p)
		}
	}
	return m
}
