package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAndReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for i, write := range []func(string, []byte, os.FileMode) error{WriteFile, Replace} {
		data := []byte{'v', byte('0' + i)}
		if err := write(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != string(data) {
			t.Fatalf("after write %d: %q, %v", i, got, err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
			t.Errorf("mode %v, want 0640", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := Replace(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
