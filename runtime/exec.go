package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/atomicfile"
	"minidock/internal/trace"
	"minidock/kernel"
	"minidock/ns"
	"minidock/seccomp"
)

// ExecOptions are runc exec's flags, plus what a library caller hands the
// new process instead of the runtime's own stdio.
type ExecOptions struct {
	// PidFile, when set, receives the process's pid once it is ready.
	PidFile string
	// ConsoleSocket receives the pty master when process.terminal is set
	// (runc's protocol); empty: it stays with the caller (Process.Console).
	ConsoleSocket string
	// Stdio are the process's stdin, stdout and stderr unless it has a
	// terminal; nil means /dev/null.
	Stdio [3]*os.File
	// ExtraFiles become fds 3, 4, ... of the process (runc --preserve-fds).
	ExtraFiles []*os.File
	// Trace receives trace events (as "runtime"); nil for none.
	Trace *trace.Tracer
	// Warn receives what Exec goes on past with a warning, as Create's
	// (CreateOptions.Warn); nil: stderr.
	Warn func(msg string)
}

// Process is a process started in a running container by Exec.
type Process struct {
	// Pid is the process's pid in the caller's pid namespace. The caller
	// is its parent and reaps it (wait4).
	Pid int
	// Console is the pty master when the process has a terminal and no
	// console socket was given; the caller owns it.
	Console *os.File
}

// Exec starts process p inside running container id, as `runc exec
// --detach` does: it returns once the process is about to execve (its
// pid written to PidFile), and the caller waits for it.
//
// A new `minidock init` is started with its parent thread in the
// container's pid namespace, put into the container's cgroup, and enters
// every other namespace of the container with setns(2) before execve.
func Exec(root, id string, p *specs.Process, o ExecOptions) (*Process, error) {
	c, err := Load(root, id)
	if err != nil {
		return nil, err
	}
	if len(p.Args) == 0 {
		return nil, errors.New("exec: process.args is empty")
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if err := checkRlimits(p.Rlimits); err != nil {
		return nil, err
	}
	if err := checkCaps(p.Capabilities); err != nil {
		return nil, err
	}
	if err := checkPidFile(o.PidFile); err != nil {
		return nil, err
	}
	if st := c.Status(); st != "running" && st != "created" {
		return nil, fmt.Errorf("cannot exec in a %s container (%s)", st, c.ID)
	}
	cfg := &initConfig{Exec: true, Process: initProcFor(p, o.Warn), PreserveFds: len(o.ExtraFiles)}
	if c.Config.Linux != nil && c.Config.Linux.Seccomp != nil {
		// the container's filter applies to its exec'd processes too
		if cfg.Seccomp, err = seccomp.Compile(c.Config.Linux.Seccomp); err != nil {
			return nil, err
		}
	}
	tr := o.Trace.As("runtime")
	self := os.Getpid()
	for _, t := range []specs.LinuxNamespaceType{specs.IPCNamespace, specs.UTSNamespace,
		specs.NetworkNamespace, specs.CgroupNamespace, specs.MountNamespace} {
		theirs := ns.ProcPath(c.Pid, t)
		if _, err := os.Stat(theirs); err != nil || ns.Same(theirs, ns.ProcPath(self, t)) {
			continue
		}
		cfg.Namespaces = append(cfg.Namespaces, specs.LinuxNamespace{Type: t, Path: theirs})
	}
	userns := ns.ProcPath(c.Pid, specs.UserNamespace)
	if ns.Same(userns, ns.ProcPath(self, specs.UserNamespace)) {
		userns = ""
	}
	pidns := ns.ProcPath(c.Pid, specs.PIDNamespace)
	if ns.Same(pidns, ns.ProcPath(self, specs.PIDNamespace)) {
		pidns = ""
	}

	h, err := newHandshake()
	if err != nil {
		return nil, err
	}
	defer h.close()
	cmd := initCommand(h, nil, o.Stdio, o.ExtraFiles, tr)
	cg, err := c.cgroup()
	if err != nil || c.CgroupPath == "" {
		cg = nil
	}
	k := kernel.NewLinux(tr)
	ks := k.Begin("startInit")
	var pid int
	if userns == "" {
		var settled func() error
		settled, err = startInit(ks, cg, pidns, cmd.SysProcAttr, cmd.Start)
		defer settled()
		if err == nil {
			pid = cmd.Process.Pid
			// waited for by pid, as the userns case below must be
			cmd.Process.Release()
		}
		err = ks.Note("clone", fmt.Sprintf("in the pid namespace and cgroup of %d, then execve /proc/self/exe init = pid %d", c.Pid, pid), err)
	} else {
		pid, err = startInUserNamespace(ks, cmd, pidns, userns)
	}
	if err != nil {
		return nil, fmt.Errorf("exec: start: %w", err)
	}
	proc := &Process{Pid: pid}
	fail := func(err error) (*Process, error) {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		return nil, err
	}
	if userns != "" && cg != nil {
		// the raw clone could not be born in the cgroup: move it in (the
		// init waits for its config until then)
		err := cg.AddProc(pid)
		if err := ks.Note("write", fmt.Sprintf("cgroup.procs of %s, %d", cg.Path(), pid), err); err != nil {
			return fail(err)
		}
	}
	if err := h.sendConfig(cfg); err != nil {
		return fail(err)
	}
	proc.Console, err = serveInit(k.Begin("serveInit"), h.parent, o.ConsoleSocket, nil)
	if err != nil {
		return fail(err)
	}
	if o.PidFile != "" {
		if err := atomicfile.Replace(o.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			if proc.Console != nil {
				proc.Console.Close()
			}
			return fail(err)
		}
	}
	return proc, nil
}

// startInUserNamespace starts the exec init described by cmd (its stdio,
// ExtraFiles and Env) inside the container's user namespace, with
// ns.StartInUserNamespace instead of os/exec (see there for why).
func startInUserNamespace(k kernel.Calls, cmd *exec.Cmd, pidns, userns string) (int, error) {
	fd, err := unix.Open(userns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open user namespace %s: %w", userns, err)
	}
	defer unix.Close(fd)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	var files []int
	for _, f := range []*os.File{stdFile(cmd.Stdin, devnull), stdFile(cmd.Stdout, devnull), stdFile(cmd.Stderr, devnull)} {
		files = append(files, int(f.Fd()))
	}
	for _, f := range cmd.ExtraFiles {
		if f == nil {
			files = append(files, -1)
		} else {
			files = append(files, int(f.Fd()))
		}
	}
	var pid int
	settled, err := startInit(k, nil, pidns, nil, func() error {
		var err error
		pid, err = ns.StartInUserNamespace(fd, "/proc/self/exe", cmd.Args, cmd.Env, files)
		return err
	})
	settled()
	err = k.Note("clone", fmt.Sprintf("raw fork, setns %s CLONE_NEWUSER, setresuid 0, execve /proc/self/exe init = pid %d", userns, pid), err)
	return pid, err
}

// stdFile is the *os.File behind one of cmd's stdio fields (initCommand
// only ever sets files), or def when it is unset.
func stdFile(v any, def *os.File) *os.File {
	if f, ok := v.(*os.File); ok && f != nil {
		return f
	}
	return def
}
