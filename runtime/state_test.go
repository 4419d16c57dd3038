package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStatusCreatedUntilExec: a container is "created" while its state
// directory holds the start socket (create) or startingFile (run, until
// the init calls execve), "running" once neither is there, and "stopped"
// when its init is gone. This process plays the init.
func TestStatusCreatedUntilExec(t *testing.T) {
	dir := t.TempDir()
	c := &Container{dir: dir, Pid: os.Getpid()}
	_, c.PidStart, _ = procStat(c.Pid)
	for _, f := range []string{startSock, startingFile} {
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if st := c.Status(); st != "created" {
			t.Errorf("with %s: %q, want created", f, st)
		}
		os.Remove(p)
	}
	if st := c.Status(); st != "running" {
		t.Errorf("with neither: %q, want running", st)
	}
	c.PidStart++ // the pid now names another process
	if st := c.Status(); st != "stopped" {
		t.Errorf("init gone: %q, want stopped", st)
	}
}
