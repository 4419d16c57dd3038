package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/atomicfile"
	"minidock/internal/trace"
	"minidock/ns"
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
	// Trace receives trace lines; nil for none.
	Trace *os.File
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
	if st := c.Status(); st != "running" && st != "created" {
		return nil, fmt.Errorf("exec: container %s is %s, not running", c.ID, st)
	}
	tr := trace.New(o.Trace, "runtime")
	self := os.Getpid()
	var join []specs.LinuxNamespace
	for _, t := range []specs.LinuxNamespaceType{specs.IPCNamespace, specs.UTSNamespace,
		specs.NetworkNamespace, specs.CgroupNamespace, specs.MountNamespace} {
		theirs := ns.ProcPath(c.Pid, t)
		if _, err := os.Stat(theirs); err != nil || ns.Same(theirs, ns.ProcPath(self, t)) {
			continue
		}
		join = append(join, specs.LinuxNamespace{Type: t, Path: theirs})
	}
	userns := ns.ProcPath(c.Pid, specs.UserNamespace)
	if ns.Same(userns, ns.ProcPath(self, specs.UserNamespace)) {
		userns = ""
	}
	pidns := ns.ProcPath(c.Pid, specs.PIDNamespace)
	if ns.Same(pidns, ns.ProcPath(self, specs.PIDNamespace)) {
		pidns = ""
	}

	parentSync, childSync, err := syncPair()
	if err != nil {
		return nil, err
	}
	defer unix.Close(parentSync)
	configR, configW, err := os.Pipe()
	if err != nil {
		childSync.Close()
		return nil, err
	}
	cmd := initCommand(childSync, configR, nil, o.Stdio, o.ExtraFiles, tr)
	var pid int
	if userns == "" {
		err = startInNamespace(cmd, pidns)
		if err == nil {
			pid = cmd.Process.Pid
			// waited for by pid, as the userns case below must be
			cmd.Process.Release()
		}
	} else {
		pid, err = startInUserNamespace(cmd, pidns, userns, tr)
	}
	childSync.Close()
	configR.Close()
	if err != nil {
		configW.Close()
		return nil, fmt.Errorf("exec: start: %w", err)
	}
	tr.Step("exec-clone", fmt.Sprintf("fork+execve(/proc/self/exe init) in pid ns of %d = pid %d", c.Pid, pid), nil)
	proc := &Process{Pid: pid}
	fail := func(err error) (*Process, error) {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		if proc.Console != nil {
			proc.Console.Close()
		}
		return nil, err
	}
	cfg := initConfig{ID: c.ID, Exec: true, Process: p, Spec: c.Config, Join: join, PreserveFds: len(o.ExtraFiles)}
	err = json.NewEncoder(configW).Encode(&cfg)
	configW.Close()
	if err != nil {
		return fail(err)
	}
	if cg, err := c.cgroup(); err == nil && c.CgroupPath != "" {
		if err := cg.AddProc(pid); err != nil {
			return fail(err)
		}
	}
	if err := sendMsg(parentSync, syncMsg{Type: msgGo}, -1); err != nil {
		return fail(err)
	}
	for ready := false; !ready; {
		m, fd, err := recvMsg(parentSync)
		if err != nil {
			return fail(err)
		}
		switch m.Type {
		case msgError:
			return fail(&stepError{Step: m.Step, Msg: m.Message})
		case msgPty:
			master := os.NewFile(uintptr(fd), "ptmx")
			if o.ConsoleSocket == "" {
				proc.Console = master
				break
			}
			err := sendConsole(o.ConsoleSocket, fd)
			master.Close()
			if err != nil {
				return fail(err)
			}
		case msgReady:
			ready = true
		}
	}
	if o.PidFile != "" {
		if err := atomicfile.Replace(o.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fail(err)
		}
	}
	return proc, nil
}

// startInUserNamespace starts the exec init described by cmd (its stdio,
// ExtraFiles and Env) inside the container's user namespace, with
// ns.StartInUserNamespace instead of os/exec (see there for why).
func startInUserNamespace(cmd *exec.Cmd, pidns, userns string, tr *trace.Tracer) (int, error) {
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
	err = inPidNamespace(pidns, func() error {
		var err error
		pid, err = ns.StartInUserNamespace(fd, "/proc/self/exe", cmd.Args, cmd.Env, files)
		return err
	})
	tr.Step("exec-userns", fmt.Sprintf("fork(); setns(%q, CLONE_NEWUSER); setresuid(0); execve(/proc/self/exe init) = pid %d", userns, pid), err)
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
