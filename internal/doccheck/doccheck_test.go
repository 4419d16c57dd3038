package doccheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every Go name the docs give exists in the code.
func TestDocsNameWhatExists(t *testing.T) {
	missing, err := Check(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Errorf("%s: not in the code", m)
	}
}

// The check finds a name that is not there, with its line, and leaves
// out what is not Go; found here in a doc made for the test.
func TestCheckFindsMissing(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("rootfs/mount.go", `package rootfs
type Mounter struct{ Root string }
func (m *Mounter) Mount() error { return nil }
func PivotRoot() {}
func helper() {}
`)
	write("README.md", "intro\n")
	write("docs/a.md", strings.Join([]string{
		"`rootfs.PivotRoot` and `rootfs.(*Mounter).Mount`, `rootfs.Mounter.Root`, `(*Mounter).Mount`, `rootfs.Mount`", // 1: all there
		"`rootfs.SetupDev` makes /dev",                                           // 2: missing
		"see `rootfs/mount.go`, `cgroup.procs`, `unix.Mount`, `rootfs.helper()`", // 3: not names or there
		"```sh",
		"rootfs.Gone", // in a fence: a shell session
		"```",
		"`rootfs.Mounter.Umount`, `(*Mounter).Gone`, `rootfs.nothere()`, `rootfs.Root`", // 7: four missing (a field is no method)
		"read `rootfs/mount.go` `PivotRoot` and `rootfs/dev.go`, `../README.md`",        // 8: a file missing
	}, "\n"))
	missing, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range missing {
		got = append(got, m.String())
	}
	want := []string{
		"docs/a.md:2: rootfs.SetupDev",
		"docs/a.md:7: rootfs.Mounter.Umount",
		"docs/a.md:7: (*Mounter).Gone",
		"docs/a.md:7: rootfs.nothere",
		"docs/a.md:7: rootfs.Root",
		"docs/a.md:8: rootfs/dev.go",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("missing:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
