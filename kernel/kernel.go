// Package kernel is the seam between the container's set-up sequence and
// the Linux kernel: every kernel call that the init sequence (and the
// runtime's side of it) makes goes through one interface, Calls.
//
// There are two implementations:
//
//   - Linux makes the call with golang.org/x/sys/unix, writes one trace
//     line for it (`minidock runtime --trace`) and, when it fails, returns
//     an *Error naming the call and its arguments, flags spelled by name
//     (MS_BIND|MS_REC, CLONE_NEWNS, CAP_SYS_ADMIN, ...) and the errno. The
//     trace line and the error are made from the same words.
//   - Recorder makes no call: it records each one (step, operation,
//     arguments) so that tests can check the order and the arguments of
//     the init sequence without root, and can make a chosen call fail.
//
// Calls only covers calls that change the kernel's state for the
// container (mounts, namespaces, credentials, ...). Reads that decide what
// to do (stat, statfs, /proc/self/mountinfo) and plain file creation in the
// rootfs are made directly by the callers.
//
// The sequence is cut into named steps (Begin): the step's name tags every
// trace line, every recorded call and every error made within it. See
// docs/runtime.md.
package kernel

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Calls is the seam. Arguments are those of the system call of the same
// name unless said otherwise.
type Calls interface {
	// Begin starts step name of the sequence: the Calls it returns tag
	// their trace lines, records and errors with that name.
	Begin(step string) Calls
	// Note records a call made elsewhere (os/exec's clone, a hook, a
	// cgroup file) in the trace, and turns a non-nil err into an *Error.
	Note(op, args string, err error) error

	// Namespaces.
	Setns(fd int, nstype int, path string) error // path: what fd was opened from, for the trace
	Unshare(flags int) error
	Sethostname(name string) error
	Setdomainname(name string) error
	SetLinkUp(name string) error // SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP

	// Files and the mount table.
	Open(path string, flags int) (int, error)
	// Openat2 opens path relative to the directory dirfd with openat2(2)'s
	// resolve flags (RESOLVE_IN_ROOT: dirfd is "/" for every lookup of the
	// path, ".." and absolute symlinks included), retrying while the
	// kernel asks to (EAGAIN). root names dirfd, for the trace.
	Openat2(dirfd int, root, path string, flags int, resolve uint64) (int, error)
	Close(fd int) error
	Fchdir(fd int) error
	Chdir(path string) error
	Chroot(path string) error
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
	PivotRoot(newroot, putold string) error
	Mknod(path string, mode uint32, major, minor uint32) error // with umask 0: mode is exact
	Chown(path string, uid, gid int) error
	Symlink(target, link string) error
	WriteFile(path, data string) error // one write(2) of data to an existing file

	// The process: limits, terminal, credentials, capabilities.
	Prlimit(resource int, soft, hard uint64) error
	OpenPty(ptmx, ptsDir string) (master, slave *os.File, err error) // open ptmx, unlockpt, open the slave
	Setsid() error
	SetCtty(fd int) error // ioctl(TIOCSCTTY)
	Dup3(oldfd, newfd int) error
	CloseOnExecFrom(fd int) error // close_range(fd, ~0, CLOSE_RANGE_CLOEXEC)
	CapBsetDrop(capability int) error
	SetKeepCaps(on bool) error
	Setgroups(gids []int) error
	Setresgid(gid int) error
	Setresuid(uid int) error
	Capset(effective, permitted, inheritable uint64) error
	CapAmbientRaise(capability int) error
	Umask(mask int) error
	SetNoNewPrivs() error
	Seccomp(flags uintptr, prog []unix.SockFilter) error // SECCOMP_SET_MODE_FILTER
	Exec(path string, argv, env []string) error          // returns only on failure
}

// Error is a failed kernel call: what was called, with which arguments,
// and the error (usually a unix.Errno), e.g.
//
//	mount src=proc, dst=/r/proc, type=proc, flags=MS_NOSUID|MS_NODEV: operation not permitted
type Error struct {
	Op   string // the call: "mount", "pivot_root", "setns", ...
	Args string // its arguments, flags spelled by name
	Err  error
}

func (e *Error) Error() string {
	if e.Args == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Args + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errno is the errno of a failed call, or 0.
func Errno(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// wrap makes err an *Error of op with args, nil staying nil.
func wrap(op, args string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Args: args, Err: err}
}

// q quotes a path or name in arguments.
func q(s string) string { return fmt.Sprintf("%q", s) }

// Both implementations are complete.
var (
	_ Calls = (*Linux)(nil)
	_ Calls = (*Recorder)(nil)
)
