package explain

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"minidock/api"
)

// nsTypes are the namespaces a process is in, as /proc/PID/ns names them
// (the *_for_children links, what its next children get, are left out).
var nsTypes = []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}

// Namespaces reads the links /proc/PID/ns/TYPE ("net:[4026532008]") of
// the container's init and of the host's init (pid 1): the number in
// brackets is the namespace's inode in the nsfs filesystem, and two
// processes share a namespace exactly when it is the same. A type the
// kernel does not have (time before 5.6) is left out. Where pid 1's links
// cannot be read (a sandbox whose init belongs to another user
// namespace: reading them needs ptrace access), the calling process's
// stand for the host's; HostPid says whose were read.
func Namespaces(pid int) ([]api.ExplainNamespace, error) {
	hostPid := 1
	if _, err := nsInode(1, "net"); os.IsPermission(err) {
		hostPid = os.Getpid()
	}
	var out []api.ExplainNamespace
	for _, t := range nsTypes {
		ino, err := nsInode(pid, t)
		if os.IsNotExist(err) {
			if _, perr := os.Stat(fmt.Sprintf("/proc/%d", pid)); perr != nil {
				return nil, fmt.Errorf("namespaces of pid %d: %w", pid, perr)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("namespaces of pid %d: %w", pid, err)
		}
		host, err := nsInode(hostPid, t)
		if err != nil {
			return nil, fmt.Errorf("namespaces of the host (pid %d): %w", hostPid, err)
		}
		out = append(out, api.ExplainNamespace{Type: t, Inode: ino, HostInode: host, HostPid: hostPid, Shared: ino == host})
	}
	return out, nil
}

// nsInode reads the inode of pid's namespace of type t.
func nsInode(pid int, t string) (uint64, error) {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, t))
	if err != nil {
		return 0, err
	}
	return parseNSLink(link)
}

// parseNSLink takes the inode out of "net:[4026532008]".
func parseNSLink(link string) (uint64, error) {
	_, rest, ok := strings.Cut(link, ":[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, fmt.Errorf("namespace link %q: want TYPE:[INODE]", link)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("namespace link %q: %w", link, err)
	}
	return n, nil
}
