package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// Linux makes the calls. Each one writes a trace line when tracing is on,
// and a failed one returns an *Error; the arguments are only spelled out
// for those two, so an untraced, successful call costs just the call.
type Linux struct {
	trace *trace.Tracer
	step  string
}

// NewLinux returns the real kernel calls, tracing to t (nil: no trace).
func NewLinux(t *trace.Tracer) *Linux { return &Linux{trace: t} }

// Begin starts a step: a "begin" line in the trace, and the step's name on
// every line and error that follows.
func (l *Linux) Begin(step string) Calls {
	l.trace.Line(step, "begin")
	return &Linux{trace: l.trace, step: step}
}

// Note traces a call made elsewhere.
func (l *Linux) Note(op, args string, err error) error {
	return l.done(op, func() string { return args }, noteWhy[op], err)
}

// done writes the trace line of a call, with why it is made, and wraps
// its error.
func (l *Linux) done(op string, args func() string, why string, err error) error {
	if l.trace == nil && err == nil {
		return nil
	}
	a := args()
	l.trace.Call(l.step, op, a, why, err)
	return wrap(op, a, err)
}

// returned writes the trace line of a call that returned a value (an fd).
func (l *Linux) returned(op, args, why string, err error, value string) error {
	res := trace.Result(err)
	if err == nil {
		res = value
	}
	l.trace.CallResult(l.step, op, args, res, why)
	return wrap(op, args, err)
}

func (l *Linux) Setns(fd, nstype int, path string) error {
	err := unix.Setns(fd, nstype)
	return l.done("setns", func() string { return setnsArgs(fd, nstype, path) }, whySetns, err)
}

func (l *Linux) Unshare(flags int) error {
	err := unix.Unshare(flags)
	return l.done("unshare", func() string { return CloneFlags(uintptr(flags)) }, whyUnshare, err)
}

func (l *Linux) Sethostname(name string) error {
	err := unix.Sethostname([]byte(name))
	return l.done("sethostname", func() string { return q(name) }, whyHostname, err)
}

func (l *Linux) Setdomainname(name string) error {
	err := unix.Setdomainname([]byte(name))
	return l.done("setdomainname", func() string { return q(name) }, whyDomainname, err)
}

func (l *Linux) SetLinkUp(name string) error {
	err := setLinkUp(name)
	return l.done("ioctl", func() string { return linkUpArgs(name) }, whyLinkUp, err)
}

// setLinkUp sets IFF_UP on a network interface with the SIOCGIFFLAGS and
// SIOCSIFFLAGS ioctls on a throwaway socket.
func setLinkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func (l *Linux) Open(path string, flags int) (int, error) {
	fd, err := unix.Open(path, flags, 0)
	if l.trace == nil && err == nil {
		return fd, nil
	}
	return fd, l.returned("open", openArgs(path, flags), whyOpen, err, fmt.Sprintf("fd %d", fd))
}

func (l *Linux) Openat2(dirfd int, root, path string, flags int, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolve}
	fd, err := unix.Openat2(dirfd, path, &how)
	for i := 0; err == unix.EAGAIN && i < 16; i++ { // a rename raced the lookup
		fd, err = unix.Openat2(dirfd, path, &how)
	}
	if l.trace == nil && err == nil {
		return fd, nil
	}
	return fd, l.returned("openat2", openat2Args(dirfd, root, path, flags, resolve), whyOpenat2, err, fmt.Sprintf("fd %d", fd))
}

// Close is not traced: only its failure is worth a word.
func (l *Linux) Close(fd int) error { return wrap("close", fmt.Sprint(fd), unix.Close(fd)) }

func (l *Linux) Fchdir(fd int) error {
	err := unix.Fchdir(fd)
	return l.done("fchdir", func() string { return fmt.Sprint(fd) }, whyFchdir, err)
}

func (l *Linux) Chdir(path string) error {
	err := unix.Chdir(path)
	return l.done("chdir", func() string { return path }, whyChdir, err)
}

func (l *Linux) Chroot(path string) error {
	err := unix.Chroot(path)
	return l.done("chroot", func() string { return path }, whyChroot, err)
}

func (l *Linux) Mount(source, target, fstype string, flags uintptr, data string) error {
	err := unix.Mount(source, target, fstype, flags, data)
	return l.done("mount", func() string { return mountArgs(source, target, fstype, flags, data) }, mountWhy(source, target, fstype, flags), err)
}

func (l *Linux) Unmount(target string, flags int) error {
	err := unix.Unmount(target, flags)
	return l.done("umount2", func() string { return unmountArgs(target, flags) }, unmountWhy(target), err)
}

func (l *Linux) PivotRoot(newroot, putold string) error {
	err := unix.PivotRoot(newroot, putold)
	return l.done("pivot_root", func() string { return pivotArgs(newroot, putold) }, whyPivotRoot, err)
}

func (l *Linux) Mknod(path string, mode, major, minor uint32) error {
	old := unix.Umask(0)
	err := unix.Mknod(path, mode, int(unix.Mkdev(major, minor)))
	unix.Umask(old)
	return l.done("mknod", func() string { return mknodArgs(path, mode, major, minor) }, whyMknod, err)
}

func (l *Linux) Chown(path string, uid, gid int) error {
	err := unix.Chown(path, uid, gid)
	return l.done("chown", func() string { return chownArgs(path, uid, gid) }, whyChown, err)
}

func (l *Linux) Symlink(target, link string) error {
	err := unix.Symlink(target, link)
	return l.done("symlink", func() string { return symlinkArgs(target, link) }, whySymlink, err)
}

func (l *Linux) WriteFile(path, data string) error {
	err := writeExisting(path, data)
	return l.done("write", func() string { return writeArgs(path, data) }, writeWhy(path), err)
}

func writeExisting(path, data string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte(data))
	return err
}

func (l *Linux) Prlimit(resource int, soft, hard uint64) error {
	err := unix.Prlimit(0, resource, &unix.Rlimit{Cur: soft, Max: hard}, nil)
	return l.done("prlimit", func() string { return prlimitArgs(resource, soft, hard) }, whyPrlimit, err)
}

func (l *Linux) OpenPty(ptmx, ptsDir string) (master, slave *os.File, err error) {
	master, slave, err = openPty(ptmx, ptsDir)
	err = l.done("openpty", func() string {
		s := ptmx
		if slave != nil {
			s += " → " + slave.Name()
		}
		return s
	}, whyOpenPty, err)
	return master, slave, err
}

// openPty opens a new pseudo-terminal pair: open(ptmx), unlockpt
// (TIOCSPTLCK 0), then the slave by its number (TIOCGPTN) in ptsDir, the
// devpts instance that ptmx belongs to.
func openPty(ptmx, ptsDir string) (*os.File, *os.File, error) {
	mfd, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	slavePath := filepath.Join(ptsDir, fmt.Sprint(n))
	sfd, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("open %s: %w", slavePath, err)
	}
	return os.NewFile(uintptr(mfd), "ptmx"), os.NewFile(uintptr(sfd), slavePath), nil
}

func (l *Linux) Setsid() error {
	_, err := unix.Setsid()
	return l.done("setsid", func() string { return "" }, whySetsid, err)
}

func (l *Linux) SetCtty(fd int) error {
	err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0)
	return l.done("ioctl", func() string { return cttyArgs(fd) }, whyCtty, err)
}

func (l *Linux) Dup3(oldfd, newfd int) error {
	err := unix.Dup3(oldfd, newfd, 0)
	return l.done("dup3", func() string { return dup3Args(oldfd, newfd) }, whyDup3, err)
}

// CloseOnExecFrom marks every descriptor from fd up close-on-exec with one
// close_range(2); where that call is refused (a seccomp profile of the
// container, loaded already, that predates it), one fcntl(FD_CLOEXEC) per
// descriptor listed in /proc/self/fd.
func (l *Linux) CloseOnExecFrom(fd int) error {
	err := unix.CloseRange(uint(fd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err != nil {
		l.done("close_range", func() string { return closeRangeArgs(fd) }, whyCloseRange, err)
		err = closeOnExecEach(fd)
		return l.done("fcntl", func() string { return fmt.Sprintf("F_SETFD, FD_CLOEXEC on each fd from %d in /proc/self/fd", fd) }, whyCloseRange, err)
	}
	return l.done("close_range", func() string { return closeRangeArgs(fd) }, whyCloseRange, err)
}

func closeOnExecEach(from int) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscan(e.Name(), &n); err == nil && n >= from {
			unix.CloseOnExec(n)
		}
	}
	return nil
}

func (l *Linux) CapBsetDrop(capability int) error {
	err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(capability), 0, 0, 0)
	return l.done("prctl", func() string { return "PR_CAPBSET_DROP, " + CapabilityName(capability) }, whyBsetDrop, err)
}

func (l *Linux) SetKeepCaps(on bool) error {
	var v uintptr
	if on {
		v = 1
	}
	err := unix.Prctl(unix.PR_SET_KEEPCAPS, v, 0, 0, 0)
	return l.done("prctl", func() string { return keepCapsArgs(on) }, whyKeepCaps, err)
}

// Setgroups, Setresgid and Setresuid change the credentials of the calling
// thread only, as the kernel's calls do (and as capset and the bounding set
// always act): the thread that goes on to execve, whose credentials the
// new program gets. Go's syscall.Setresuid would stop every thread of the
// process to change them all (POSIX semantics), for nothing here: execve
// ends every other thread.
func (l *Linux) Setgroups(gids []int) error {
	list := make([]uint32, len(gids))
	for i, g := range gids {
		list[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(list) > 0 {
		p = unsafe.Pointer(&list[0])
	}
	_, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(list)), uintptr(p), 0)
	runtime.KeepAlive(list)
	return l.done("setgroups", func() string { return fmt.Sprint(gids) }, whySetgroups, errnoErr(e))
}

func (l *Linux) Setresgid(gid int) error {
	_, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid))
	return l.done("setresgid", func() string { return resArgs(gid) }, whySetresgid, errnoErr(e))
}

func (l *Linux) Setresuid(uid int) error {
	_, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid))
	return l.done("setresuid", func() string { return resArgs(uid) }, whySetresuid, errnoErr(e))
}

// errnoErr turns a raw call's errno into an error, 0 into nil.
func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func (l *Linux) Capset(effective, permitted, inheritable uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(effective), Permitted: uint32(permitted), Inheritable: uint32(inheritable)},
		{Effective: uint32(effective >> 32), Permitted: uint32(permitted >> 32), Inheritable: uint32(inheritable >> 32)},
	}
	err := unix.Capset(&hdr, &data[0])
	return l.done("capset", func() string { return capsetArgs(effective, permitted, inheritable) }, whyCapset, err)
}

func (l *Linux) CapAmbientRaise(capability int) error {
	err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(capability), 0, 0)
	return l.done("prctl", func() string { return "PR_CAP_AMBIENT_RAISE, " + CapabilityName(capability) }, whyAmbient, err)
}

func (l *Linux) Umask(mask int) error {
	unix.Umask(mask)
	return l.done("umask", func() string { return fmt.Sprintf("%#o", mask) }, whyUmask, nil)
}

func (l *Linux) SetNoNewPrivs() error {
	err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	return l.done("prctl", func() string { return "PR_SET_NO_NEW_PRIVS, 1" }, whyNoNewPrivs, err)
}

// Seccomp loads a filter with seccomp(2). A positive result with
// SECCOMP_FILTER_FLAG_TSYNC is the id of a thread that could not be
// synchronised; it is returned as an error.
func (l *Linux) Seccomp(flags uintptr, prog []unix.SockFilter) error {
	var err error
	if len(prog) == 0 {
		err = errors.New("empty filter")
	} else {
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
		runtime.KeepAlive(prog)
		switch {
		case errno == unix.EACCES:
			err = fmt.Errorf("%w (this thread needs no_new_privs or CAP_SYS_ADMIN)", errno)
		case errno != 0:
			err = errno
		case tid != 0:
			err = fmt.Errorf("thread %d has another seccomp filter and cannot be synchronised", tid)
		}
	}
	return l.done("seccomp", func() string { return seccompArgs(flags, len(prog)) }, whySeccomp, err)
}

// Exec traces the call before making it: on success there is no after.
func (l *Linux) Exec(path string, argv, env []string) error {
	l.trace.CallResult(l.step, "execve", execArgs(path, argv), "(returns only on failure)", whyExec)
	err := unix.Exec(path, argv, env)
	return l.done("execve", func() string { return execArgs(path, argv) }, whyExec, err)
}
