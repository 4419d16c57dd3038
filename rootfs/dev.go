package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/kernel"
)

func dev(path string, major, minor int64) specs.LinuxDevice {
	mode := os.FileMode(0o666)
	var uid, gid uint32
	return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
}

// DefaultDevices are the nodes every container gets, as in runc and Docker.
func DefaultDevices() []specs.LinuxDevice {
	return []specs.LinuxDevice{
		dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0),
	}
}

// HasMount reports whether the config mounts something at dest.
func HasMount(mounts []specs.Mount, dest string) bool {
	for _, m := range mounts {
		if filepath.Clean(m.Destination) == dest {
			return true
		}
	}
	return false
}

// SetupDev fills the container's /dev after the config's mounts: a tmpfs
// on /dev when the config has no /dev mount of its own (so that device
// nodes never land in the image), the device nodes, the symlinks programs
// expect, and a tmpfs on /dev/shm when the config has none.
func SetupDev(k kernel.Calls, rootfs string, mounts []specs.Mount, devices []specs.LinuxDevice, inUserNS bool) error {
	if !HasMount(mounts, "/dev") {
		dest := filepath.Join(rootfs, "dev")
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		if err := k.Mount("tmpfs", dest, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
			return err
		}
	}
	if err := CreateDevices(k, rootfs, devices, inUserNS); err != nil {
		return err
	}
	if err := DevSymlinks(k, rootfs); err != nil {
		return err
	}
	if !HasMount(mounts, "/dev/shm") {
		dest := filepath.Join(rootfs, "dev/shm")
		if err := os.MkdirAll(dest, 0o1777); err != nil {
			return err
		}
		return k.Mount("shm", dest, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k")
	}
	return nil
}

// CreateDevices makes the default device nodes plus the config's own with
// mknod(2). In a user namespace mknod is not allowed, so the host's node is
// bind-mounted onto an empty file instead (what runc does too).
func CreateDevices(k kernel.Calls, rootfs string, extra []specs.LinuxDevice, inUserNS bool) error {
	for _, d := range append(DefaultDevices(), extra...) {
		dest, err := Resolve(rootfs, d.Path)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		if inUserNS {
			err = bindDevice(k, d.Path, dest)
		} else {
			err = mknodDevice(k, d, dest)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func mknodDevice(k kernel.Calls, d specs.LinuxDevice, dest string) error {
	var kind uint32
	switch d.Type {
	case "c", "u":
		kind = unix.S_IFCHR
	case "b":
		kind = unix.S_IFBLK
	case "p":
		kind = unix.S_IFIFO
	default:
		return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	_ = os.Remove(dest)
	if err := k.Mknod(dest, kind|perm, uint32(d.Major), uint32(d.Minor)); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid == 0 && gid == 0 {
		return nil // mknod made it root's already
	}
	return k.Chown(dest, uid, gid)
}

func bindDevice(k kernel.Calls, hostPath, dest string) error {
	if err := createFile(dest, 0o644); err != nil {
		return err
	}
	return k.Mount(hostPath, dest, "", unix.MS_BIND, "")
}

// DevSymlinks makes the links programs expect in /dev: fd, stdin, stdout,
// stderr into /proc/self/fd, core to /proc/kcore, and ptmx into the
// container's own devpts instance.
func DevSymlinks(k kernel.Calls, rootfs string) error {
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		dest := filepath.Join(rootfs, "dev", l[1])
		if fi, err := os.Lstat(dest); err == nil && fi.Mode()&os.ModeSymlink == 0 && l[1] == "ptmx" {
			// a ptmx node already exists; replace it so it is this devpts's
			if err := os.Remove(dest); err != nil {
				return err
			}
		}
		if err := k.Symlink(l[0], dest); err != nil && !os.IsExist(err) && kernel.Errno(err) != unix.EEXIST {
			return err
		}
	}
	return nil
}

// BindConsole bind-mounts the pty's slave onto /dev/console, so that
// programs writing to the console reach the container's terminal.
func BindConsole(k kernel.Calls, rootfs, slavePath string) error {
	dest := filepath.Join(rootfs, "dev/console")
	if err := createFile(dest, 0o600); err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	return k.Mount(slavePath, dest, "", unix.MS_BIND, "")
}
