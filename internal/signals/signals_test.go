package signals

import (
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]unix.Signal{"9": unix.SIGKILL, "KILL": unix.SIGKILL, "sigterm": unix.SIGTERM, "SIGUSR1": unix.SIGUSR1, "hup": unix.SIGHUP} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "65", "-1", "FOO", "", "SIG"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, got)
		}
	}
}

func TestExitCode(t *testing.T) {
	// wait statuses as the kernel encodes them: exit status in bits 8-15,
	// the killing signal in bits 0-6
	for _, c := range []struct {
		ws   unix.WaitStatus
		want int
	}{{0, 0}, {3 << 8, 3}, {unix.WaitStatus(unix.SIGKILL), 137}, {unix.WaitStatus(unix.SIGTERM), 143}} {
		if got := ExitCode(c.ws); got != c.want {
			t.Errorf("ExitCode(%#x) = %d, want %d", uint32(c.ws), got, c.want)
		}
	}
}

func TestWait(t *testing.T) {
	for _, c := range []struct {
		script string
		want   int
	}{{"exit 5", 5}, {"kill -TERM $$", 143}} {
		cmd := exec.Command("/bin/sh", "-c", c.script)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got, err := Wait(cmd.Process.Pid)
		if err != nil || got != c.want {
			t.Errorf("%q: Wait = %d, %v; want %d", c.script, got, err, c.want)
		}
	}
	if _, err := Wait(999999999); err == nil {
		t.Error("Wait of no child succeeded")
	}
}
