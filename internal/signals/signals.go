// Package signals reads signal names as the runc and docker command lines
// take them, and turns wait statuses into the exit codes shells report.
package signals

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Parse accepts a signal by number (9), by name (KILL) or by full name
// (SIGKILL), in any case.
func Parse(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: numbers go from 1 to 64", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// ExitCode is the exit code a shell reports for a wait status: the
// process's exit status, or 128+n when signal n killed it.
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Wait waits for child pid to exit (wait4, retried when a signal
// interrupts it) and returns its exit code as ExitCode does.
func Wait(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait4 %d: %w", pid, err)
		}
		return ExitCode(ws), nil
	}
}
