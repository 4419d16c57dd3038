package kernel

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Call is one call a Recorder saw.
type Call struct {
	Step string // the step it was made in (Begin)
	Op   string // "mount", "pivot_root", ...; "begin" for the start of a step
	Args string // spelled as in the trace
}

// String is "step: op args", the form tests compare.
func (c Call) String() string {
	if c.Args == "" {
		return c.Step + ": " + c.Op
	}
	return c.Step + ": " + c.Op + " " + c.Args
}

// Recorder is the recording fake of Calls: it makes no call, records every
// one, and fails the calls a test chose with FailOn. Open and Openat2
// return made-up descriptors, the lowest from 100 up that is not open (a
// Close frees one, as the kernel's table does); OpenPty returns the two
// ends of a pipe.
type Recorder struct {
	log  *recording
	step string
}

type recording struct {
	mu    sync.Mutex
	calls []Call
	fails []failure
	open  map[int]bool // the made-up descriptors not closed
}

type failure struct {
	op, args string // args: a substring to match
	errno    unix.Errno
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{log: &recording{open: map[int]bool{}}} }

// newFd is the lowest made-up descriptor not open.
func (r *Recorder) newFd() int {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	fd := 100
	for r.log.open[fd] {
		fd++
	}
	r.log.open[fd] = true
	return fd
}

// FailOn makes calls of op whose arguments contain args fail with errno.
func (r *Recorder) FailOn(op, args string, errno unix.Errno) {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	r.log.fails = append(r.log.fails, failure{op, args, errno})
}

// Calls returns what was recorded, in order.
func (r *Recorder) Calls() []Call {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	return append([]Call(nil), r.log.calls...)
}

// Steps lists the steps begun, in order.
func (r *Recorder) Steps() []string {
	var out []string
	for _, c := range r.Calls() {
		if c.Op == "begin" {
			out = append(out, c.Step)
		}
	}
	return out
}

// record appends a call and returns the error FailOn chose for it.
func (r *Recorder) record(op, args string) error {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	r.log.calls = append(r.log.calls, Call{Step: r.step, Op: op, Args: args})
	for _, f := range r.log.fails {
		if f.op == op && strings.Contains(args, f.args) {
			return &Error{Op: op, Args: args, Err: f.errno}
		}
	}
	return nil
}

func (r *Recorder) Begin(step string) Calls {
	n := &Recorder{log: r.log, step: step}
	n.record("begin", "")
	return n
}

func (r *Recorder) Note(op, args string, err error) error {
	if ferr := r.record(op, args); ferr != nil {
		return ferr
	}
	return wrap(op, args, err)
}

func (r *Recorder) Setns(fd, nstype int, path string) error {
	return r.record("setns", setnsArgs(fd, nstype, path))
}
func (r *Recorder) Unshare(flags int) error { return r.record("unshare", CloneFlags(uintptr(flags))) }
func (r *Recorder) Sethostname(name string) error {
	return r.record("sethostname", q(name))
}
func (r *Recorder) Setdomainname(name string) error { return r.record("setdomainname", q(name)) }
func (r *Recorder) SetLinkUp(name string) error {
	return r.record("ioctl", linkUpArgs(name))
}

func (r *Recorder) Open(path string, flags int) (int, error) {
	if err := r.record("open", openArgs(path, flags)); err != nil {
		return -1, err
	}
	return r.newFd(), nil
}

func (r *Recorder) Openat2(dirfd int, root, path string, flags int, resolve uint64) (int, error) {
	if err := r.record("openat2", openat2Args(dirfd, root, path, flags, resolve)); err != nil {
		return -1, err
	}
	return r.newFd(), nil
}

func (r *Recorder) Close(fd int) error {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	delete(r.log.open, fd)
	return nil
}
func (r *Recorder) Fchdir(fd int) error {
	return r.record("fchdir", fmt.Sprint(fd))
}
func (r *Recorder) Chdir(path string) error  { return r.record("chdir", path) }
func (r *Recorder) Chroot(path string) error { return r.record("chroot", path) }
func (r *Recorder) Mount(source, target, fstype string, flags uintptr, data string) error {
	return r.record("mount", mountArgs(source, target, fstype, flags, data))
}
func (r *Recorder) Unmount(target string, flags int) error {
	return r.record("umount2", unmountArgs(target, flags))
}
func (r *Recorder) PivotRoot(newroot, putold string) error {
	return r.record("pivot_root", pivotArgs(newroot, putold))
}
func (r *Recorder) Mknod(path string, mode, major, minor uint32) error {
	return r.record("mknod", mknodArgs(path, mode, major, minor))
}
func (r *Recorder) Chown(path string, uid, gid int) error {
	return r.record("chown", chownArgs(path, uid, gid))
}
func (r *Recorder) Symlink(target, link string) error {
	return r.record("symlink", symlinkArgs(target, link))
}
func (r *Recorder) WriteFile(path, data string) error {
	return r.record("write", writeArgs(path, data))
}
func (r *Recorder) Prlimit(resource int, soft, hard uint64) error {
	return r.record("prlimit", prlimitArgs(resource, soft, hard))
}

func (r *Recorder) OpenPty(ptmx, ptsDir string) (*os.File, *os.File, error) {
	if err := r.record("openpty", ptmx); err != nil {
		return nil, nil, err
	}
	return os.Pipe()
}

func (r *Recorder) Setsid() error        { return r.record("setsid", "") }
func (r *Recorder) SetCtty(fd int) error { return r.record("ioctl", cttyArgs(fd)) }
func (r *Recorder) Dup3(oldfd, newfd int) error {
	return r.record("dup3", dup3Args(oldfd, newfd))
}
func (r *Recorder) CloseOnExecFrom(fd int) error {
	return r.record("close_range", closeRangeArgs(fd))
}
func (r *Recorder) CapBsetDrop(capability int) error {
	return r.record("prctl", "PR_CAPBSET_DROP, "+CapabilityName(capability))
}
func (r *Recorder) SetKeepCaps(on bool) error {
	return r.record("prctl", keepCapsArgs(on))
}
func (r *Recorder) Setgroups(gids []int) error { return r.record("setgroups", fmt.Sprint(gids)) }
func (r *Recorder) Setresgid(gid int) error {
	return r.record("setresgid", resArgs(gid))
}
func (r *Recorder) Setresuid(uid int) error {
	return r.record("setresuid", resArgs(uid))
}
func (r *Recorder) Capset(effective, permitted, inheritable uint64) error {
	return r.record("capset", capsetArgs(effective, permitted, inheritable))
}
func (r *Recorder) CapAmbientRaise(capability int) error {
	return r.record("prctl", "PR_CAP_AMBIENT_RAISE, "+CapabilityName(capability))
}
func (r *Recorder) Umask(mask int) error { return r.record("umask", fmt.Sprintf("%#o", mask)) }
func (r *Recorder) SetNoNewPrivs() error { return r.record("prctl", "PR_SET_NO_NEW_PRIVS, 1") }
func (r *Recorder) Seccomp(flags uintptr, prog []unix.SockFilter) error {
	return r.record("seccomp", seccompArgs(flags, len(prog)))
}
func (r *Recorder) Exec(path string, argv, env []string) error {
	return r.record("execve", execArgs(path, argv))
}
