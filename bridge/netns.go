package bridge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// CreateNetNS makes a new, empty network namespace and pins it on the file
// path (like `ip netns add`), so that it lives independently of any
// process: the daemon can wire it before the container starts, name it in
// the OCI config (linux.namespaces: {type: network, path}), and keep it
// across a container restart.
//
// Kernel steps, on a thread of its own: unshare(CLONE_NEWNET) moves the
// thread into a new namespace; mount --bind /proc/thread-self/ns/net path
// holds it. The thread is then thrown away, never reused by other code.
func CreateNetNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	f.Close()

	errc := make(chan error)
	go func() {
		// Locked and never unlocked: the runtime ends the thread with the
		// goroutine, so its changed namespace cannot leak to other code.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount /proc/thread-self/ns/net on %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

// RemoveNetNS unpins the namespace at path (umount, then unlink). The
// namespace itself, with any veth end inside it, goes away when no process
// is left in it. A missing path is not an error.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove netns %s: umount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}
