package ns

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// NewUserNamespace makes a user namespace with the given id maps and
// returns it open (/proc/<pid>/ns/user), for idmapped mounts
// (mount_setattr(2) MOUNT_ATTR_IDMAP takes the mapping from a user
// namespace, not from a list). A namespace needs a process to be made
// in: a raw clone(CLONE_NEWUSER) child that only waits on a pipe, whose
// maps this (root) process writes, and which ends as soon as its
// namespace is open; the open file keeps the namespace alive.
func NewUserNamespace(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	syscall.ForkLock.Lock()
	unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old) // no Go handler may run in the child
	pid, errno := childHoldUserNS(uintptr(p[0]), uintptr(p[1]))
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	syscall.ForkLock.Unlock()
	unix.Close(p[0])
	defer func() {
		unix.Close(p[1]) // the child reads EOF and exits
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
	}()
	if errno != 0 {
		return nil, fmt.Errorf("clone(CLONE_NEWUSER): %w", errno)
	}
	for _, m := range []struct {
		file string
		maps []specs.LinuxIDMapping
	}{{"uid_map", uids}, {"gid_map", gids}} {
		var b strings.Builder
		for _, r := range m.maps {
			fmt.Fprintf(&b, "%d %d %d\n", r.ContainerID, r.HostID, r.Size)
		}
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, m.file), []byte(b.String()), 0); err != nil {
			return nil, fmt.Errorf("user namespace: write %s: %w", m.file, err)
		}
	}
	return os.Open(ProcPath(pid, specs.UserNamespace))
}

// childHoldUserNS forks a child in a new user namespace that closes its
// copy of the pipe's write end w (or it would wait for itself) and blocks
// reading fd until the parent closes the other end, then exits. The child runs only
// raw system calls (see StartInUserNamespace for why).
//
//go:norace
//go:nosplit
func childHoldUserNS(fd, w uintptr) (int, syscall.Errno) {
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.CLONE_NEWUSER|unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r1 != 0 {
		return int(r1), 0 // parent
	}
	syscall.RawSyscall(unix.SYS_CLOSE, w, 0, 0)
	var b [1]byte
	syscall.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), 1)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
}
