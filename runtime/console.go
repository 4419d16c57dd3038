package runtime

import (
	"fmt"

	"golang.org/x/sys/unix"
)

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
