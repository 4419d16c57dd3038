package runtime

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// openPty opens a new pseudo-terminal pair: open(ptmx), unlockpt
// (TIOCSPTLCK 0), then the slave by its number (TIOCGPTN) in ptsDir, the
// devpts instance that ptmx belongs to.
func openPty(ptmx, ptsDir string) (master, slave *os.File, err error) {
	mfd, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", ptmx, err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	slavePath := filepath.Join(ptsDir, fmt.Sprint(n))
	sfd, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("open %s: %w", slavePath, err)
	}
	trace.Step("pty", fmt.Sprintf("open(%q) + TIOCSPTLCK + TIOCGPTN = %s", ptmx, slavePath), nil)
	return os.NewFile(uintptr(mfd), "ptmx"), os.NewFile(uintptr(sfd), slavePath), nil
}

// useTerminal makes the pty slave the process's controlling terminal and
// its stdin, stdout and stderr: setsid(2), ioctl(TIOCSCTTY), dup2(2).
func useTerminal(slave *os.File) error {
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	fd := int(slave.Fd())
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("TIOCSCTTY: %w", err)
	}
	for i := 0; i <= 2; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup3 pty onto %d: %w", i, err)
		}
	}
	slave.Close()
	return trace.Step("ctty", "setsid(); ioctl(TIOCSCTTY); dup3(pty → 0, 1, 2)", nil)
}

// sendConsole passes the pty master to whoever listens on the console
// socket, as runc does: one message carrying the fd (SCM_RIGHTS).
func sendConsole(socketPath string, master int) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socketPath}); err != nil {
		return fmt.Errorf("connect to console socket %s: %w", socketPath, err)
	}
	if err := unix.Sendmsg(fd, []byte("/dev/ptmx"), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send pty master to %s: %w", socketPath, err)
	}
	return nil
}
