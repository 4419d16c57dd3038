package kernel

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Step mode (`minidock runtime --step`, docs/step.md): a Stepper wraps
// the real calls and, before each one, hands a PauseFunc the call it is
// about to make, spelled as the trace spells it. The PauseFunc decides:
// nil lets the call go on; an error stops it, and the call returns that
// error as an *Error naming it, so the step fails as if the kernel had
// refused, and the runtime's usual failure path cleans up.

// Pause is the call a Stepper is about to make.
type Pause struct {
	Step string // the step of the sequence (Begin)
	Op   string // the call: "mount", "pivot_root", "execve", ...
	Args string // its arguments, flags by name, as in the trace
}

// PauseFunc is consulted before each call; it may block (a person reads
// the prompt) and returns non-nil to stop the call.
type PauseFunc func(Pause) error

// Stepper is Calls that pause before each call. Note, which records a
// call already made elsewhere, and Close, plumbing, do not pause.
type Stepper struct {
	calls Calls
	step  string
	pause PauseFunc
}

// NewStepper wraps calls (NewLinux's) so that pause is consulted before
// each of them.
func NewStepper(calls Calls, pause PauseFunc) *Stepper {
	return &Stepper{calls: calls, pause: pause}
}

// PauseBefore pauses k, if it is a Stepper, before a call that does not
// go through the seam (os/exec's clone, the cgroup package's mkdir and
// writes); otherwise it does nothing.
func PauseBefore(k Calls, op, args string) error {
	s, ok := k.(*Stepper)
	if !ok {
		return nil
	}
	return s.before(op, args)
}

// before asks the PauseFunc about one call.
func (s *Stepper) before(op, args string) error {
	return wrap(op, args, s.pause(Pause{Step: s.step, Op: op, Args: args}))
}

func (s *Stepper) Begin(step string) Calls {
	return &Stepper{calls: s.calls.Begin(step), step: step, pause: s.pause}
}

func (s *Stepper) Note(op, args string, err error) error { return s.calls.Note(op, args, err) }

func (s *Stepper) Setns(fd, nstype int, path string) error {
	if err := s.before("setns", setnsArgs(fd, nstype, path)); err != nil {
		return err
	}
	return s.calls.Setns(fd, nstype, path)
}

func (s *Stepper) Unshare(flags int) error {
	if err := s.before("unshare", CloneFlags(uintptr(flags))); err != nil {
		return err
	}
	return s.calls.Unshare(flags)
}

func (s *Stepper) Sethostname(name string) error {
	if err := s.before("sethostname", q(name)); err != nil {
		return err
	}
	return s.calls.Sethostname(name)
}

func (s *Stepper) Setdomainname(name string) error {
	if err := s.before("setdomainname", q(name)); err != nil {
		return err
	}
	return s.calls.Setdomainname(name)
}

func (s *Stepper) SetLinkUp(name string) error {
	if err := s.before("ioctl", linkUpArgs(name)); err != nil {
		return err
	}
	return s.calls.SetLinkUp(name)
}

func (s *Stepper) Open(path string, flags int) (int, error) {
	if err := s.before("open", openArgs(path, flags)); err != nil {
		return -1, err
	}
	return s.calls.Open(path, flags)
}

func (s *Stepper) Openat2(dirfd int, root, path string, flags int, resolve uint64) (int, error) {
	if err := s.before("openat2", openat2Args(dirfd, root, path, flags, resolve)); err != nil {
		return -1, err
	}
	return s.calls.Openat2(dirfd, root, path, flags, resolve)
}

func (s *Stepper) Close(fd int) error { return s.calls.Close(fd) }

func (s *Stepper) Fchdir(fd int) error {
	if err := s.before("fchdir", fmt.Sprint(fd)); err != nil {
		return err
	}
	return s.calls.Fchdir(fd)
}

func (s *Stepper) Chdir(path string) error {
	if err := s.before("chdir", path); err != nil {
		return err
	}
	return s.calls.Chdir(path)
}

func (s *Stepper) Chroot(path string) error {
	if err := s.before("chroot", path); err != nil {
		return err
	}
	return s.calls.Chroot(path)
}

func (s *Stepper) Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := s.before("mount", mountArgs(source, target, fstype, flags, data)); err != nil {
		return err
	}
	return s.calls.Mount(source, target, fstype, flags, data)
}

func (s *Stepper) Unmount(target string, flags int) error {
	if err := s.before("umount2", unmountArgs(target, flags)); err != nil {
		return err
	}
	return s.calls.Unmount(target, flags)
}

func (s *Stepper) PivotRoot(newroot, putold string) error {
	if err := s.before("pivot_root", pivotArgs(newroot, putold)); err != nil {
		return err
	}
	return s.calls.PivotRoot(newroot, putold)
}

func (s *Stepper) Mknod(path string, mode, major, minor uint32) error {
	if err := s.before("mknod", mknodArgs(path, mode, major, minor)); err != nil {
		return err
	}
	return s.calls.Mknod(path, mode, major, minor)
}

func (s *Stepper) Chown(path string, uid, gid int) error {
	if err := s.before("chown", chownArgs(path, uid, gid)); err != nil {
		return err
	}
	return s.calls.Chown(path, uid, gid)
}

func (s *Stepper) Symlink(target, link string) error {
	if err := s.before("symlink", symlinkArgs(target, link)); err != nil {
		return err
	}
	return s.calls.Symlink(target, link)
}

func (s *Stepper) WriteFile(path, data string) error {
	if err := s.before("write", writeArgs(path, data)); err != nil {
		return err
	}
	return s.calls.WriteFile(path, data)
}

func (s *Stepper) Prlimit(resource int, soft, hard uint64) error {
	if err := s.before("prlimit", prlimitArgs(resource, soft, hard)); err != nil {
		return err
	}
	return s.calls.Prlimit(resource, soft, hard)
}

func (s *Stepper) OpenPty(ptmx, ptsDir string) (*os.File, *os.File, error) {
	if err := s.before("openpty", ptmx); err != nil {
		return nil, nil, err
	}
	return s.calls.OpenPty(ptmx, ptsDir)
}

func (s *Stepper) Setsid() error {
	if err := s.before("setsid", ""); err != nil {
		return err
	}
	return s.calls.Setsid()
}

func (s *Stepper) SetCtty(fd int) error {
	if err := s.before("ioctl", cttyArgs(fd)); err != nil {
		return err
	}
	return s.calls.SetCtty(fd)
}

func (s *Stepper) Dup3(oldfd, newfd int) error {
	if err := s.before("dup3", dup3Args(oldfd, newfd)); err != nil {
		return err
	}
	return s.calls.Dup3(oldfd, newfd)
}

func (s *Stepper) CloseOnExecFrom(fd int) error {
	if err := s.before("close_range", closeRangeArgs(fd)); err != nil {
		return err
	}
	return s.calls.CloseOnExecFrom(fd)
}

func (s *Stepper) CapBsetDrop(capability int) error {
	if err := s.before("prctl", "PR_CAPBSET_DROP, "+CapabilityName(capability)); err != nil {
		return err
	}
	return s.calls.CapBsetDrop(capability)
}

func (s *Stepper) SetKeepCaps(on bool) error {
	if err := s.before("prctl", keepCapsArgs(on)); err != nil {
		return err
	}
	return s.calls.SetKeepCaps(on)
}

func (s *Stepper) Setgroups(gids []int) error {
	if err := s.before("setgroups", fmt.Sprint(gids)); err != nil {
		return err
	}
	return s.calls.Setgroups(gids)
}

func (s *Stepper) Setresgid(gid int) error {
	if err := s.before("setresgid", resArgs(gid)); err != nil {
		return err
	}
	return s.calls.Setresgid(gid)
}

func (s *Stepper) Setresuid(uid int) error {
	if err := s.before("setresuid", resArgs(uid)); err != nil {
		return err
	}
	return s.calls.Setresuid(uid)
}

func (s *Stepper) Capset(effective, permitted, inheritable uint64) error {
	if err := s.before("capset", capsetArgs(effective, permitted, inheritable)); err != nil {
		return err
	}
	return s.calls.Capset(effective, permitted, inheritable)
}

func (s *Stepper) CapAmbientRaise(capability int) error {
	if err := s.before("prctl", "PR_CAP_AMBIENT_RAISE, "+CapabilityName(capability)); err != nil {
		return err
	}
	return s.calls.CapAmbientRaise(capability)
}

func (s *Stepper) Umask(mask int) error {
	if err := s.before("umask", fmt.Sprintf("%#o", mask)); err != nil {
		return err
	}
	return s.calls.Umask(mask)
}

func (s *Stepper) SetNoNewPrivs() error {
	if err := s.before("prctl", "PR_SET_NO_NEW_PRIVS, 1"); err != nil {
		return err
	}
	return s.calls.SetNoNewPrivs()
}

func (s *Stepper) Seccomp(flags uintptr, prog []unix.SockFilter) error {
	if err := s.before("seccomp", seccompArgs(flags, len(prog))); err != nil {
		return err
	}
	return s.calls.Seccomp(flags, prog)
}

func (s *Stepper) Exec(path string, argv, env []string) error {
	if err := s.before("execve", execArgs(path, argv)); err != nil {
		return err
	}
	return s.calls.Exec(path, argv, env)
}

var _ Calls = (*Stepper)(nil)
