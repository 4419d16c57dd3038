package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

func dev(path string, major, minor int64) specs.LinuxDevice {
	mode := os.FileMode(0o666)
	var uid, gid uint32
	return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
}

// DefaultDevices are the nodes every container gets, as in runc and Docker.
var DefaultDevices = []specs.LinuxDevice{
	dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
	dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0),
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

// MountDevTmpfs puts an empty tmpfs on /dev when the config has no /dev
// mount of its own, so that device nodes never land in the image.
func MountDevTmpfs(rootfs string) error {
	dest := filepath.Join(rootfs, "dev")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	err := unix.Mount("tmpfs", dest, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k")
	return trace.Step("mount-dev", fmt.Sprintf("mount(\"tmpfs\", %q, \"tmpfs\", MS_NOSUID|MS_STRICTATIME)", dest), wrapf(err, "mount tmpfs on /dev"))
}

// CreateDevices makes the default device nodes plus the config's own with
// mknod(2). In a user namespace mknod is not allowed, so the host's node is
// bind-mounted onto an empty file instead (what runc does too).
func CreateDevices(rootfs string, extra []specs.LinuxDevice, inUserNS bool) error {
	all := append(append([]specs.LinuxDevice{}, DefaultDevices...), extra...)
	for _, d := range all {
		dest, err := Resolve(rootfs, d.Path)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		if inUserNS {
			err = bindDevice(d.Path, dest)
		} else {
			err = mknodDevice(d, dest)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func mknodDevice(d specs.LinuxDevice, dest string) error {
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
	devnum := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	old := unix.Umask(0)
	err := unix.Mknod(dest, kind|perm, devnum)
	unix.Umask(old)
	trace.Step("mknod", fmt.Sprintf("mknod(%q, %#o, %d:%d)", dest, kind|perm, d.Major, d.Minor), err)
	if err != nil {
		return fmt.Errorf("mknod %s: %w", d.Path, err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Chown(dest, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", d.Path, err)
	}
	return nil
}

func bindDevice(hostPath, dest string) error {
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	err = unix.Mount(hostPath, dest, "", unix.MS_BIND, "")
	return trace.Step("bind-device", fmt.Sprintf("mount(%q, %q, MS_BIND)", hostPath, dest), wrapf(err, "bind device %s", hostPath))
}

// DevSymlinks makes the links programs expect in /dev: fd, stdin, stdout,
// stderr into /proc/self/fd, and ptmx into the container's own devpts.
func DevSymlinks(rootfs string) error {
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
		if err := os.Symlink(l[0], dest); err != nil && !os.IsExist(err) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return trace.Step("dev-symlinks", "symlink(/proc/self/fd → /dev/fd, stdin, stdout, stderr; pts/ptmx → /dev/ptmx)", nil)
}

// MountShm gives /dev/shm a tmpfs of its own when the config has none.
func MountShm(rootfs string) error {
	dest := filepath.Join(rootfs, "dev/shm")
	if err := os.MkdirAll(dest, 0o1777); err != nil {
		return err
	}
	err := unix.Mount("shm", dest, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k")
	return trace.Step("mount-shm", fmt.Sprintf("mount(\"shm\", %q, \"tmpfs\", MS_NOSUID|MS_NODEV|MS_NOEXEC)", dest), wrapf(err, "mount /dev/shm"))
}

// BindConsole bind-mounts the pty's slave onto /dev/console, so that
// programs writing to the console reach the container's terminal.
func BindConsole(rootfs, slavePath string) error {
	dest := filepath.Join(rootfs, "dev/console")
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	f.Close()
	err = unix.Mount(slavePath, dest, "", unix.MS_BIND, "")
	return trace.Step("console", fmt.Sprintf("mount(%q, %q, MS_BIND)", slavePath, dest), wrapf(err, "bind %s on /dev/console", slavePath))
}
