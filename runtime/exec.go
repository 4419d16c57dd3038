package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
	"minidock/ns"
)

// stringList is a repeatable string flag (--env A=1 --env B=2).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdExec(args []string) (int, error) {
	fs := newFlags("exec")
	processFile := fs.String("process", "", "JSON file with a specs.Process")
	fs.StringVar(processFile, "p", "", "JSON file with a specs.Process")
	tty := fs.Bool("tty", false, "allocate a pseudo-terminal")
	fs.BoolVar(tty, "t", false, "allocate a pseudo-terminal")
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "do not wait for the process")
	pidFile := fs.String("pid-file", "", "write the process's pid here")
	console := fs.String("console-socket", "", "unix socket to send the pty master to")
	cwd := fs.String("cwd", "", "working directory")
	user := fs.String("user", "", "UID[:GID]")
	fs.StringVar(user, "u", "", "UID[:GID]")
	var env, addCaps stringList
	fs.Var(&env, "env", "KEY=VALUE (repeatable)")
	fs.Var(&env, "e", "KEY=VALUE (repeatable)")
	fs.Var(&addCaps, "cap", "add a capability (repeatable)")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs")
	preserve := fs.Int("preserve-fds", 0, "pass this many extra fds (from 3) to the process")
	if err := parse(fs, args, -1); err != nil {
		return 1, err
	}
	if fs.NArg() < 1 {
		return 1, errors.New("exec: container id missing")
	}
	c, err := load(g.root, fs.Arg(0))
	if err != nil {
		return 1, err
	}
	var p specs.Process
	if *processFile != "" {
		data, err := os.ReadFile(*processFile)
		if err != nil {
			return 1, fmt.Errorf("exec --process: %w", err)
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return 1, fmt.Errorf("exec --process %s: %w", *processFile, err)
		}
	} else {
		if fs.NArg() < 2 {
			return 1, errors.New("exec: no command given (arguments or --process)")
		}
		if c.Config.Process != nil {
			p = *c.Config.Process
		}
		p.Args = fs.Args()[1:]
		p.Terminal = *tty
		p.Env = append(append([]string{}, p.Env...), env...)
		if *cwd != "" {
			p.Cwd = *cwd
		}
		if *user != "" {
			u, err := parseUser(*user)
			if err != nil {
				return 1, err
			}
			p.User = u
		}
		if *noNewPrivs {
			p.NoNewPrivileges = true
		}
		if len(addCaps) > 0 && p.Capabilities != nil {
			caps := *p.Capabilities
			caps.Bounding = append(append([]string{}, caps.Bounding...), addCaps...)
			caps.Effective = append(append([]string{}, caps.Effective...), addCaps...)
			caps.Permitted = append(append([]string{}, caps.Permitted...), addCaps...)
			p.Capabilities = &caps
		}
	}
	if len(p.Args) == 0 {
		return 1, errors.New("exec: process.args is empty")
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if err := checkRlimits(p.Rlimits); err != nil {
		return 1, err
	}
	if err := checkCaps(p.Capabilities); err != nil {
		return 1, err
	}
	if p.Terminal && *console == "" && *detach {
		return 1, errors.New("exec: cannot allocate a tty without --console-socket when detached")
	}
	return c.exec(&p, *console, *pidFile, *detach, *preserve)
}

func parseUser(s string) (specs.User, error) {
	var u specs.User
	parts := strings.SplitN(s, ":", 2)
	uid, err := strconv.ParseUint(parts[0], 10, 32)
	if err != nil {
		return u, fmt.Errorf("user %q: want numeric UID[:GID]", s)
	}
	u.UID = uint32(uid)
	if len(parts) == 2 {
		gid, err := strconv.ParseUint(parts[1], 10, 32)
		if err != nil {
			return u, fmt.Errorf("user %q: want numeric UID[:GID]", s)
		}
		u.GID = uint32(gid)
	}
	return u, nil
}

// exec starts process p inside the running container c: a new `minidock
// init` is started with its parent thread in the container's pid
// namespace, is put into the container's cgroup, and then enters every
// other namespace of the container with setns(2) before execve.
func (c *Container) exec(p *specs.Process, consoleSocket, pidFile string, detach bool, preserve int) (int, error) {
	if st := c.Status(); st != "running" && st != "created" {
		return 1, fmt.Errorf("exec: container %s is %s, not running", c.ID, st)
	}
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
		return 1, err
	}
	defer unix.Close(parentSync)
	configR, configW, err := os.Pipe()
	if err != nil {
		return 1, err
	}
	cmd := initCommand(childSync, configR, nil, preserve)
	var proc *os.Process
	if userns == "" {
		err = startInNamespace(cmd, pidns)
		proc = cmd.Process
	} else {
		proc, err = startInUserNamespace(cmd, pidns, userns)
	}
	childSync.Close()
	configR.Close()
	if err != nil {
		configW.Close()
		return 1, fmt.Errorf("exec: start: %w", err)
	}
	trace.Step("exec-clone", fmt.Sprintf("fork+execve(/proc/self/exe init) in pid ns of %d = pid %d", c.Pid, proc.Pid), nil)
	fail := func(err error) (int, error) {
		proc.Kill()
		proc.Wait()
		return 1, err
	}
	cfg := initConfig{ID: c.ID, Exec: true, Process: p, Spec: c.Config, Join: join, PreserveFds: preserve}
	err = json.NewEncoder(configW).Encode(&cfg)
	configW.Close()
	if err != nil {
		return fail(err)
	}
	if cg, err := c.cgroup(); err == nil && c.CgroupPath != "" {
		if err := cg.AddProc(proc.Pid); err != nil {
			return fail(err)
		}
	}
	if err := sendMsg(parentSync, syncMsg{Type: msgGo}, -1); err != nil {
		return fail(err)
	}
	var master *os.File
	for ready := false; !ready; {
		m, fd, err := recvMsg(parentSync)
		if err != nil {
			return fail(err)
		}
		switch m.Type {
		case msgError:
			return fail(&stepError{Step: m.Step, Msg: m.Message})
		case msgPty:
			master = os.NewFile(uintptr(fd), "ptmx")
			if consoleSocket != "" {
				err := sendConsole(consoleSocket, fd)
				master.Close()
				master = nil
				if err != nil {
					return fail(err)
				}
			}
		case msgReady:
			ready = true
		}
	}
	if pidFile != "" {
		if err := writeFileAtomic(pidFile, []byte(strconv.Itoa(proc.Pid)), 0o644); err != nil {
			return fail(err)
		}
	}
	if detach {
		if master != nil {
			master.Close()
		}
		return 0, nil
	}
	return foreground(proc, master), nil
}

// startInUserNamespace starts the exec init described by cmd (its stdio,
// ExtraFiles and Env) inside the container's user namespace, with
// ns.StartInUserNamespace instead of os/exec (see there for why).
func startInUserNamespace(cmd *exec.Cmd, pidns, userns string) (*os.Process, error) {
	fd, err := unix.Open(userns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open user namespace %s: %w", userns, err)
	}
	defer unix.Close(fd)
	files := []int{0, 1, 2}
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
	trace.Step("exec-userns", fmt.Sprintf("fork(); setns(%q, CLONE_NEWUSER); setresuid(0); execve(/proc/self/exe init) = pid %d", userns, pid), err)
	if err != nil {
		return nil, err
	}
	return os.FindProcess(pid)
}
