// Package ns creates and joins Linux namespaces.
//
// A namespace wraps one kind of global resource so that processes inside
// see their own copy: pid (process ids), mount (the mount table), uts
// (hostname), ipc (SysV IPC and POSIX message queues), network (links,
// addresses, routes), cgroup (the cgroup root seen in /proc/self/cgroup),
// user (uid/gid numbers and the capabilities that go with them) and time.
//
// New namespaces are made by clone(2) with CLONE_NEW* flags (CloneFlags);
// existing ones are entered with setns(2) on a file from /proc/<pid>/ns/
// (Join, JoinAll), through the kernel seam. See docs/namespaces.md.
package ns

import (
	"fmt"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/kernel"
)

// Flag is the clone(2)/setns(2) flag of an OCI namespace type (0 for an
// unknown type), and procName its file name under /proc/<pid>/ns/.
func Flag(t specs.LinuxNamespaceType) uintptr {
	flag, _ := kind(t)
	return flag
}

func kind(t specs.LinuxNamespaceType) (flag uintptr, procName string) {
	switch t {
	case specs.PIDNamespace:
		return unix.CLONE_NEWPID, "pid"
	case specs.MountNamespace:
		return unix.CLONE_NEWNS, "mnt"
	case specs.UTSNamespace:
		return unix.CLONE_NEWUTS, "uts"
	case specs.IPCNamespace:
		return unix.CLONE_NEWIPC, "ipc"
	case specs.NetworkNamespace:
		return unix.CLONE_NEWNET, "net"
	case specs.CgroupNamespace:
		return unix.CLONE_NEWCGROUP, "cgroup"
	case specs.UserNamespace:
		return unix.CLONE_NEWUSER, "user"
	case specs.TimeNamespace:
		return unix.CLONE_NEWTIME, "time"
	}
	return 0, ""
}

// Validate checks the namespace list of a config: known types, each at
// most once, paths that exist.
func Validate(list []specs.LinuxNamespace) error {
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, n := range list {
		if Flag(n.Type) == 0 {
			return fmt.Errorf("unknown namespace type %q", n.Type)
		}
		if seen[n.Type] {
			return fmt.Errorf("namespace %q listed twice", n.Type)
		}
		seen[n.Type] = true
		if n.Path != "" {
			if _, err := os.Stat(n.Path); err != nil {
				return fmt.Errorf("namespace %s path: %w", n.Type, err)
			}
		}
	}
	return nil
}

// CloneFlags returns the CLONE_NEW* flags for the namespaces of list that
// are to be created (those without a path). The cgroup namespace is left
// out: init unshares it after it has been born into its cgroup, so that
// the container's cgroup becomes the root it sees.
func CloneFlags(list []specs.LinuxNamespace) uintptr {
	var flags uintptr
	for _, n := range list {
		if n.Path == "" && n.Type != specs.CgroupNamespace {
			flags |= Flag(n.Type)
		}
	}
	return flags
}

// Has reports whether list asks for a namespace of type t (new or joined).
func Has(list []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, n := range list {
		if n.Type == t {
			return true
		}
	}
	return false
}

// New reports whether list asks for a new namespace of type t (no path).
func New(list []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	return Has(list, t) && Path(list, t) == ""
}

// Path returns the path of the namespace of type t to join, or "".
func Path(list []specs.LinuxNamespace, t specs.LinuxNamespaceType) string {
	for _, n := range list {
		if n.Type == t {
			return n.Path
		}
	}
	return ""
}

// Join enters the existing namespace at path with setns(2). It acts on the
// calling thread only: callers lock the goroutine to its OS thread first.
func Join(k kernel.Calls, t specs.LinuxNamespaceType, path string) error {
	fd, err := k.Open(path, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer k.Close(fd)
	return k.Setns(fd, int(Flag(t)), path)
}

// JoinAll enters every namespace of list that has a path, with setns(2)
// on the calling thread, which must be locked to its goroutine. The files
// are all opened first: once the mount namespace is entered, /proc/<pid>/ns
// paths would be looked up in the container's /proc. The mount namespace
// needs a private fs_struct (root, cwd), which Go's threads share:
// unshare(CLONE_FS) gives this thread its own first.
func JoinAll(k kernel.Calls, list []specs.LinuxNamespace) error {
	type open struct {
		t    specs.LinuxNamespaceType
		fd   int
		path string
	}
	var fds []open
	defer func() {
		for _, o := range fds {
			k.Close(o.fd)
		}
	}()
	for _, n := range list {
		if n.Path == "" {
			continue
		}
		if len(fds) == 0 {
			if err := k.Unshare(unix.CLONE_FS); err != nil {
				return err
			}
		}
		fd, err := k.Open(n.Path, unix.O_RDONLY|unix.O_CLOEXEC)
		if err != nil {
			return err
		}
		fds = append(fds, open{n.Type, fd, n.Path})
	}
	for _, o := range fds {
		if err := k.Setns(o.fd, int(Flag(o.t)), o.path); err != nil {
			return err
		}
	}
	return nil
}

// ProcPath is the file naming the namespace of type t of process pid.
func ProcPath(pid int, t specs.LinuxNamespaceType) string {
	_, name := kind(t)
	return fmt.Sprintf("/proc/%d/ns/%s", pid, name)
}

// Same reports whether two namespace files name the same namespace.
func Same(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// IDMaps turns OCI id mappings into the form os/exec writes to
// /proc/<pid>/uid_map and gid_map (one "inside outside count" line each).
func IDMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	var out []syscall.SysProcIDMap
	for _, e := range m {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)})
	}
	return out
}
