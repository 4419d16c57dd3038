package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// MakeParentPrivate makes the mount that holds the rootfs directory private
// when it is shared (rootfsPropagation "shared"). pivot_root(2) refuses
// (EINVAL) a new root that is shared or whose parent mount is shared; done
// before BindRootfs, the bind of the rootfs is then private too.
func MakeParentPrivate(rootfs string) error {
	mp, shared, err := mountOf(filepath.Dir(rootfs))
	if err != nil || !shared {
		return err
	}
	err = unix.Mount("", mp, "", unix.MS_PRIVATE, "")
	return trace.Step("parent-private", fmt.Sprintf("mount(\"\", %q, MS_PRIVATE)", mp), wrapf(err, "make %s private", mp))
}

// mountOf finds the mount point holding path (the longest mount point that
// is a prefix of it) in /proc/self/mountinfo, and whether it is shared.
func mountOf(path string) (string, bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	best, shared := "", false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		mp := f[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, shared = mp, false
			for _, opt := range f[6:] {
				if opt == "-" {
					break
				}
				if strings.HasPrefix(opt, "shared:") {
					shared = true
				}
			}
		}
	}
	return best, shared, nil
}

// PivotRoot makes rootfs the root of the mount namespace with pivot_root(2)
// and detaches the old root, so that nothing of the host's tree stays
// reachable (chroot(2) would leave it one ".." or open fd away).
//
// pivot_root(".", ".") stacks the old root on top of the new one at "/";
// unmounting "." then leaves just the new root. This needs no directory to
// park the old root in, so it works on a read-only rootfs.
func PivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root %s: %w", rootfs, err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	err = unix.PivotRoot(".", ".")
	if trace.Step("pivot-root", fmt.Sprintf("pivot_root(\".\", \".\") in %q", rootfs), err) != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir old root: %w", err)
	}
	// The old root may still be shared with the host: make it a slave so
	// that the unmount below does not travel back.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	err = unix.Unmount(".", unix.MNT_DETACH)
	if trace.Step("detach-old-root", "umount2(\".\", MNT_DETACH)", err) != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// ReadonlyRoot remounts / read-only (MS_BIND|MS_REMOUNT|MS_RDONLY), keeping
// the flags the kernel locks.
func ReadonlyRoot() error {
	return remountBind("/", unix.MS_RDONLY)
}

// MaskPaths hides paths such as /proc/kcore: a file gets /dev/null bound
// over it, a directory an empty read-only tmpfs. Missing paths are skipped.
func MaskPaths(paths []string) error {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0")
			trace.Step("mask", fmt.Sprintf("mount(\"tmpfs\", %q, \"tmpfs\", MS_RDONLY)", p), err)
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
			trace.Step("mask", fmt.Sprintf("mount(\"/dev/null\", %q, MS_BIND)", p), err)
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

// ReadonlyPaths makes each path read-only: bind it onto itself, then
// remount the bind read-only. Missing paths are skipped.
func ReadonlyPaths(paths []string) error {
	for _, p := range paths {
		err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, "")
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err == nil {
			err = remountBind(p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
		}
		if err != nil {
			return fmt.Errorf("readonly path %s: %w", p, err)
		}
	}
	return nil
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

// WriteSysctls writes each linux.sysctl value to /proc/sys.
func WriteSysctls(sysctl map[string]string) error {
	for k, v := range sysctl {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		err := os.WriteFile(p, []byte(v), 0)
		trace.Step("sysctl", fmt.Sprintf("write(%q, %q)", p, v), err)
		if err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// MoveRoot is the --no-pivot fallback for roots where pivot_root(2) is not
// possible (e.g. an initramfs): move the rootfs mount onto / with MS_MOVE,
// then chroot(2). The old root stays reachable underneath, so this is
// weaker than PivotRoot and only used when asked for.
func MoveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, "")
	if trace.Step("move-root", fmt.Sprintf("mount(%q, \"/\", MS_MOVE)", rootfs), err) != nil {
		return fmt.Errorf("move %s to /: %w", rootfs, err)
	}
	err = unix.Chroot(".")
	if trace.Step("chroot", "chroot(\".\")", err) != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}
