// Package ns creates and joins Linux namespaces.
//
// A namespace wraps one kind of global resource so that processes inside
// see their own copy: pid (process ids), mount (the mount table), uts
// (hostname), ipc (SysV IPC and POSIX message queues), network (links,
// addresses, routes), cgroup (the cgroup root seen in /proc/self/cgroup) and
// user (uid/gid numbers and the capabilities that go with them).
//
// New namespaces are made by clone(2) with CLONE_NEW* flags (CloneFlags);
// existing ones are entered with setns(2) on a file from /proc/<pid>/ns/
// (Join). See docs/namespaces.md.
package ns

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// Flags maps each OCI namespace type to its clone(2)/setns(2) flag.
var Flags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// procName is the file name of each namespace under /proc/<pid>/ns/.
var procName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.MountNamespace:   "mnt",
	specs.UTSNamespace:     "uts",
	specs.IPCNamespace:     "ipc",
	specs.NetworkNamespace: "net",
	specs.CgroupNamespace:  "cgroup",
	specs.UserNamespace:    "user",
	specs.TimeNamespace:    "time",
}

// Validate checks the namespace list of a config: known types, each at
// most once, paths that exist.
func Validate(list []specs.LinuxNamespace) error {
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, n := range list {
		if _, ok := Flags[n.Type]; !ok {
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
// out: init unshares it after the runtime has put it into its cgroup, so
// that the container's cgroup becomes the root it sees.
func CloneFlags(list []specs.LinuxNamespace) uintptr {
	var flags uintptr
	for _, n := range list {
		if n.Path == "" && n.Type != specs.CgroupNamespace {
			flags |= Flags[n.Type]
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
func Join(t specs.LinuxNamespaceType, path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return trace.Step("join-"+string(t), fmt.Sprintf("open(%q)", path), fmt.Errorf("open namespace %s: %w", path, err))
	}
	defer unix.Close(fd)
	err = unix.Setns(fd, int(Flags[t]))
	if err != nil {
		err = fmt.Errorf("setns %s namespace %s: %w", t, path, err)
	}
	return trace.Step("join-"+string(t), fmt.Sprintf("setns(%q, %s)", path, FlagName(Flags[t])), err)
}

// ProcPath is the file naming the namespace of type t of process pid.
func ProcPath(pid int, t specs.LinuxNamespaceType) string {
	return fmt.Sprintf("/proc/%d/ns/%s", pid, procName[t])
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

// FlagName spells a set of CLONE_NEW* flags, for traces and errors.
func FlagName(flags uintptr) string {
	names := []struct {
		f uintptr
		n string
	}{{unix.CLONE_NEWUSER, "CLONE_NEWUSER"}, {unix.CLONE_NEWPID, "CLONE_NEWPID"}, {unix.CLONE_NEWNS, "CLONE_NEWNS"},
		{unix.CLONE_NEWUTS, "CLONE_NEWUTS"}, {unix.CLONE_NEWIPC, "CLONE_NEWIPC"}, {unix.CLONE_NEWNET, "CLONE_NEWNET"},
		{unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {unix.CLONE_NEWTIME, "CLONE_NEWTIME"}}
	var parts []string
	for _, x := range names {
		if flags&x.f != 0 {
			parts = append(parts, x.n)
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// SetHostname sets the hostname of the calling process's uts namespace.
func SetHostname(name string) error {
	return trace.Step("hostname", fmt.Sprintf("sethostname(%q)", name), wrap("sethostname", unix.Sethostname([]byte(name))))
}

// SetDomainname sets the NIS domain name of the uts namespace.
func SetDomainname(name string) error {
	return trace.Step("domainname", fmt.Sprintf("setdomainname(%q)", name), wrap("setdomainname", unix.Setdomainname([]byte(name))))
}

// LoopbackUp brings up "lo" in a new network namespace (it starts down),
// with the SIOCSIFFLAGS ioctl on a throwaway socket.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	return trace.Step("loopback-up", "ioctl(SIOCSIFFLAGS, lo, IFF_UP)", wrap("SIOCSIFFLAGS lo", err))
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
