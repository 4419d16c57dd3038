// Package unixsock listens on and dials unix socket paths of any length.
// A socket address holds at most 107 bytes of path (sun_path), and a
// daemon's exec root plus a 64-hex container ID easily needs more. Both
// ends therefore open the socket's directory and use the short path
// /proc/self/fd/<dir fd>/<name>, which the kernel resolves like any other.
package unixsock

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Listen listens on the unix socket path, replacing a stale socket file.
// Closing the listener does not remove the file (the short path would no
// longer resolve by then); the caller removes path.
func Listen(path string) (*net.UnixListener, error) {
	var ln *net.UnixListener
	err := viaDir(path, func(short string) error {
		os.Remove(path)
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: short, Net: "unix"})
		if err != nil {
			return err
		}
		l.SetUnlinkOnClose(false)
		ln = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return ln, nil
}

// Dial connects to the unix socket path.
func Dial(path string) (*net.UnixConn, error) {
	var c *net.UnixConn
	err := viaDir(path, func(short string) error {
		var err error
		c, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: short, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", path, err)
	}
	return c, nil
}

// Short is a path to path that fits a socket address and that another
// process (say, an OCI runtime given a --console-socket) can use too:
// /proc/<our pid>/fd/<dir fd>/<name> while release has not been called.
func Short(path string) (short string, release func(), err error) {
	if len(path) < 100 {
		return path, func() {}, nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/%d/fd/%d/%s", os.Getpid(), d.Fd(), filepath.Base(path)), func() { d.Close() }, nil
}

// viaDir calls f with a short path to path: through the directory's
// descriptor when path is too long for a socket address, else path itself.
func viaDir(path string, f func(short string) error) error {
	if len(path) < 100 {
		return f(path)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return f(fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(path)))
}
