package rootfs

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"minidock/kernel"
)

// PivotRoot makes rootfs the root of the mount namespace with pivot_root(2)
// and detaches the old root, so that nothing of the host's tree stays
// reachable (chroot(2) would leave it one ".." or open fd away).
//
// pivot_root(".", ".") stacks the old root on top of the new one at "/";
// unmounting "." then leaves just the new root. This needs no directory to
// park the old root in, so it works on a read-only rootfs.
func PivotRoot(k kernel.Calls, rootfs string) error {
	oldroot, err := k.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer k.Close(oldroot)
	newroot, err := k.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer k.Close(newroot)
	if err := k.Fchdir(newroot); err != nil {
		return err
	}
	if err := k.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", rootfs, err)
	}
	// "." is the old root now (the kernel does not promise it: go there by
	// its descriptor).
	if err := k.Fchdir(oldroot); err != nil {
		return err
	}
	// The old root may still be shared with the host: make it a slave so
	// that the unmount below does not travel back.
	if err := k.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := k.Unmount(".", unix.MNT_DETACH); err != nil {
		return err
	}
	return k.Chdir("/")
}

// MoveRoot is the --no-pivot fallback for roots where pivot_root(2) is not
// possible (e.g. an initramfs): move the rootfs mount onto / with MS_MOVE,
// then chroot(2). The old root stays reachable underneath, so this is
// weaker than PivotRoot and only used when asked for.
func MoveRoot(k kernel.Calls, rootfs string) error {
	if err := k.Chdir(rootfs); err != nil {
		return err
	}
	if err := k.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return err
	}
	if err := k.Chroot("."); err != nil {
		return err
	}
	return k.Chdir("/")
}

// namespacedSysctl tells which namespace owns a sysctl; only those may be
// set from a container, and only when it has that namespace of its own.
func namespacedSysctl(key string) string {
	switch {
	case strings.HasPrefix(key, "net."):
		return "network"
	case strings.HasPrefix(key, "fs.mqueue."), strings.HasPrefix(key, "kernel.msg"),
		strings.HasPrefix(key, "kernel.shm"), key == "kernel.sem", key == "kernel.sem_next_id":
		return "ipc"
	case key == "kernel.hostname", key == "kernel.domainname":
		return "uts"
	}
	return ""
}

// CheckSysctls refuses sysctls that would change the host: those not owned
// by a namespace, and those whose namespace the container shares.
func CheckSysctls(sysctl map[string]string, own map[string]bool) error {
	for k := range sysctl {
		ns := namespacedSysctl(k)
		if ns == "" {
			return fmt.Errorf("sysctl %q is not namespaced: setting it would change the host", k)
		}
		if !own[ns] {
			return fmt.Errorf("sysctl %q needs a %s namespace of the container's own", k, ns)
		}
	}
	return nil
}

// WriteSysctls writes each linux.sysctl value to /proc/sys, in the order
// of their names. It comes before ReadonlyPaths, which makes /proc/sys
// read-only.
func WriteSysctls(k kernel.Calls, sysctl map[string]string) error {
	for _, key := range slices.Sorted(maps.Keys(sysctl)) {
		if err := k.WriteFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), sysctl[key]); err != nil {
			return err
		}
	}
	return nil
}

// ReadonlyPaths makes each path read-only: bind it onto itself, then
// remount the bind read-only. Missing paths are skipped.
func ReadonlyPaths(k kernel.Calls, paths []string) error {
	for _, p := range paths {
		err := k.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, "")
		if isNotExist(err) {
			continue
		}
		if err == nil {
			err = remountBind(k, p, p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// MaskPaths hides paths such as /proc/kcore: a file gets /dev/null bound
// over it, a directory an empty read-only tmpfs. Missing paths are skipped.
func MaskPaths(k kernel.Calls, paths []string) error {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if fi.IsDir() {
			err = k.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0")
		} else {
			err = k.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ReadonlyRoot remounts / read-only (MS_BIND|MS_REMOUNT|MS_RDONLY), keeping
// the flags the kernel locks.
func ReadonlyRoot(k kernel.Calls) error {
	return remountBind(k, "/", "/", unix.MS_RDONLY)
}
