package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/atomicfile"
	"minidock/internal/trace"
	"minidock/kernel"
	"minidock/ns"
	"minidock/seccomp"
)

// CreateOptions are runc's create flags, plus what a library caller hands
// the container's process instead of the runtime's own stdio.
type CreateOptions struct {
	// Bundle is the bundle directory (config.json and the rootfs).
	Bundle string
	// PidFile, when set, receives the init's pid once it is ready.
	PidFile string
	// ConsoleSocket is a unix socket to which the pty master is sent
	// (SCM_RIGHTS, runc's protocol) when process.terminal is set. Empty:
	// the master stays with the caller (Container.Console).
	ConsoleSocket string
	// NoPivot uses MS_MOVE + chroot instead of pivot_root (runc --no-pivot).
	NoPivot bool
	// StartNow starts the container's process as soon as it is ready,
	// without waiting for Start, as `runc run` does: Create then returns
	// once the process has called execve and the poststart hooks have run.
	StartNow bool
	// Stdio are the init's stdin, stdout and stderr, kept by the
	// container's process unless it has a terminal; nil means /dev/null.
	Stdio [3]*os.File
	// ExtraFiles become fds 3, 4, ... of the container's process (what
	// runc --preserve-fds N passes on from the runtime's own fds).
	ExtraFiles []*os.File
	// Trace receives the trace events of the parent (as "runtime") and of
	// the init, in its encoding; nil for none.
	Trace *trace.Tracer
	// Warn receives what the runtime goes on past where runc goes on with
	// a warning: ambient capabilities the kernel would refuse to raise
	// (runcCapabilities), kernel memory limits (runcResources). nil:
	// stderr.
	Warn func(msg string)
	// SystemdCgroup is runc's --systemd-cgroup (containerd's SystemdCgroup
	// option): minidock has no systemd cgroup driver, and says so
	// (systemdCgroup).
	SystemdCgroup bool
	// Step, when set, is a terminal (or what stands for one): before each
	// kernel call of the parent and of the init, the call is shown there
	// and the answer read from it, a line: Enter goes on, s runs the rest
	// of the step, c continues to the end, q aborts, and Create undoes
	// what it made (step.go, docs/step.md). Without StartNow, the
	// pauses from waitForStart on, up to execve, are Start's: the
	// returned Container's Start asks on the same Step.
	Step io.ReadWriter
	// DebugInit, when set, makes the init wait for a debugger before its
	// first step (waitForDebugger), and receives the line `dlv attach PID`
	// with the init's host pid (MINIDOCK_DEBUG_INIT=1).
	DebugInit io.Writer
}

// Create makes container id under the runtime root: state directory,
// cgroup, the init process in its new namespaces, and the handshake up to
// "ready". It returns with the init blocked until Start, as `runc create`
// does.
//
// The init is a child of the calling process: the caller reaps it (wait4
// on Container.Pid) when it exits, or gives that job to a subreaper by
// exiting, as the runtime's command line does. Create leaves no goroutine,
// signal handler or process-wide setting behind. On any error everything
// made so far is undone.
func Create(root, id string, o CreateOptions) (ct *Container, err error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	tr := o.Trace.As("runtime")
	var k kernel.Calls = kernel.NewLinux(tr)
	var prompt *prompter
	if o.Step != nil {
		prompt = newPrompter(o.Step)
		k = kernel.NewStepper(k, func(c kernel.Pause) error { return prompt.pause("runtime", c) })
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	spec, err := loadBundle(k.Begin("loadBundle"), bundle)
	if err != nil {
		return nil, err
	}
	if o.SystemdCgroup {
		if err := systemdCgroup(spec.Linux.CgroupsPath); err != nil {
			return nil, err
		}
	}
	if err := checkPidFile(o.PidFile); err != nil {
		return nil, err
	}
	if rootless() {
		if err := checkRootless(spec); err != nil { // rootless.go
			return nil, err
		}
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("runtime root %s: %w", root, err)
	}
	// The state directory claims the id: from here on, what is made is
	// this container's, and undone if creating it fails.
	dir := filepath.Join(root, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container with id %q already exists", id)
		}
		return nil, fmt.Errorf("state dir: %w", err)
	}
	c := &Container{ID: id, Bundle: bundle, Created: time.Now().UTC(), Annotations: spec.Annotations, Config: spec, dir: dir, trace: tr, warn: o.Warn}
	if prompt != nil && !o.StartNow {
		// the init asks Start, with the same prompter, up to execve
		c.Step, c.prompt = true, prompt
	}
	var cmd *exec.Cmd
	var cg cgroupHandle
	defer func() {
		if err == nil {
			return
		}
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if c.console != nil {
			c.console.Close()
		}
		if cg != nil {
			cg.Destroy()
		}
		os.RemoveAll(dir)
	}()

	// The cgroup is made while the bundle is checked: the two take about as
	// long, on two CPUs.
	made := make(chan error, 1)
	go func() {
		var err error
		cg, err = createCgroup(k.Begin("createCgroup"), c)
		made <- err
	}()
	c.Rootfs, err = checkBundle(spec, bundle)
	var cfg *initConfig
	if err == nil {
		cfg, err = initConfigFor(spec, c.Rootfs, o)
	}
	if cerr := <-made; err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if cg != nil {
		cfg.CgroupPath = cg.Path()
	}
	var startL *os.File // the start socket: Start connects to it
	if !o.StartNow {
		if startL, err = listenStart(dir); err != nil {
			return nil, err
		}
		defer startL.Close()
	}
	h, err := newHandshake()
	if err != nil {
		return nil, err
	}
	defer h.close()
	cmd = initCommand(h, startL, o.Stdio, o.ExtraFiles, tr)
	if prompt != nil {
		conn, child, err := stepSocket()
		if err != nil {
			return nil, err
		}
		// the init's end after all the others (initCommand): its fd
		// number is passed on
		cmd.ExtraFiles = append(cmd.ExtraFiles, child)
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", envStep, 2+len(cmd.ExtraFiles)))
		defer child.Close()
		defer prompt.serveSteps(conn)()
	}
	if o.DebugInit != nil {
		cmd.Env = append(cmd.Env, envDebugInit+"=1")
	}
	nss := spec.Linux.Namespaces
	cmd.SysProcAttr.Cloneflags = ns.CloneFlags(nss)
	awaitMaps := false
	switch {
	case ns.Has(nss, specs.UserNamespace) && rootless() && needIDMapHelpers(spec):
		// only newuidmap/newgidmap may write these maps, once the child
		// exists: it is born unmapped and waits for them (rootless.go)
		awaitMaps = true
		cmd.Env = append(cmd.Env, envAwaitIDMaps+"=1")
	case ns.Has(nss, specs.UserNamespace):
		// os/exec writes these to /proc/<pid>/uid_map and gid_map from this
		// (parent) process between clone and execve, while the child waits;
		// the child then becomes uid 0 of the new namespace before execve,
		// so that it keeps its capabilities there. Unprivileged, the kernel
		// takes a gid_map only once setgroups(2) is denied in the namespace.
		cmd.SysProcAttr.UidMappings = ns.IDMaps(spec.Linux.UIDMappings)
		cmd.SysProcAttr.GidMappings = ns.IDMaps(spec.Linux.GIDMappings)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = !rootless()
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	ks := k.Begin("startInit")
	if err = kernel.PauseBefore(ks, "clone", cloneStepArgs(cmd.SysProcAttr, cg, awaitMaps)); err != nil {
		return nil, err
	}
	settled, err := startInit(ks, cg, ns.Path(nss, specs.PIDNamespace), cmd.SysProcAttr, cmd.Start)
	defer func() {
		if serr := settled(); serr != nil && err == nil {
			ct, err = nil, serr
		}
	}()
	into := "no cgroup"
	if cg != nil {
		into = cg.Path()
	}
	err = ks.Note("clone", fmt.Sprintf("flags=%s, into %s, then execve /proc/self/exe init = pid %d", kernel.CloneFlags(cmd.SysProcAttr.Cloneflags), into, pidOf(cmd)), err)
	if err != nil {
		cmd = nil
		return nil, fmt.Errorf("start container init: %w", err)
	}
	c.Pid = cmd.Process.Pid
	_, c.PidStart, _ = procStat(c.Pid)
	if o.DebugInit != nil {
		fmt.Fprintf(o.DebugInit, "minidock: init %d waits for a debugger before its first step: dlv attach %d\n", c.Pid, c.Pid)
	}
	if prompt != nil {
		prompt.started(c.Pid, c.CgroupPath)
	}
	if awaitMaps {
		if err = writeIDMaps(ks, c.Pid, spec); err != nil {
			return nil, err
		}
		if err = sendMsg(h.parent, syncMsg{Type: msgIDMaps}, -1); err != nil {
			return nil, err
		}
	}
	if len(cfg.CreateContainerHooks) > 0 {
		st := c.ociState(string(specs.StateCreated))
		cfg.State = &st
	}
	// The init is in its cgroup from its first instruction: its config
	// lets it go on. The state is saved while its Go runtime starts.
	if err = kernel.PauseBefore(ks, "write", "config pipe: the initConfig, and EOF: the init, born and waiting, goes on"); err != nil {
		return nil, err
	}
	if err = h.sendConfig(cfg); err != nil {
		return nil, err
	}
	k.Begin("saveState")
	if o.StartNow {
		err = os.WriteFile(filepath.Join(dir, startingFile), nil, 0o600)
	}
	if err == nil {
		err = c.save()
	}
	if err != nil {
		return nil, err
	}
	ki := k.Begin("serveInit")
	c.console, err = serveInit(ki, h.parent, o.ConsoleSocket, func() error {
		// "created", as runc passes it and the OCI validation suite
		// (hooks_stdin) expects, though create has not returned yet
		st := c.ociState(string(specs.StateCreated))
		if err := runHooks(ki, "prestart", spec.Hooks.Prestart, st); err != nil {
			return err
		}
		return runHooks(ki, "createRuntime", spec.Hooks.CreateRuntime, st)
	})
	if err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err = atomicfile.Replace(o.PidFile, []byte(strconv.Itoa(c.Pid)), 0o644); err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
	}
	if o.StartNow {
		if err = c.startedNow(k.Begin("start"), h.parent); err != nil {
			return nil, err
		}
		os.Remove(filepath.Join(dir, startingFile)) // running now
	}
	// The caller waits for the init by its pid; drop os/exec's handle (a
	// pidfd) now rather than at garbage collection.
	cmd.Process.Release()
	return c, nil
}

// startedNow waits for the init of a StartNow container to call execve:
// the sync socket ends (close-on-exec), or brings the error that stopped
// it. Then the poststart hooks run, as after Start.
func (c *Container) startedNow(k kernel.Calls, sync int) error {
	m, _, err := recvMsg(sync)
	switch {
	case errors.Is(err, errSyncClosed):
	case err != nil:
		return err
	case m.Type == msgError:
		return m.initError()
	default:
		return fmt.Errorf("sync: unexpected %q from init", m.Type)
	}
	k.Note("recvmsg", "sync socket closed: the init called execve", nil)
	c.poststart(k)
	return nil
}

// serveInit answers the init until it is ready, and returns the pty
// master, if any, unless it went to the console socket. hooks runs when
// the init asks for the hooks of its prepareRootfs step.
func serveInit(k kernel.Calls, sync int, consoleSocket string, hooks func() error) (console *os.File, err error) {
	defer func() {
		if err != nil && console != nil {
			console.Close()
		}
	}()
	for {
		m, fd, err := recvMsg(sync)
		if err != nil {
			return console, err
		}
		switch m.Type {
		case msgError:
			return console, m.initError()
		case msgPty:
			master := os.NewFile(uintptr(fd), "ptmx")
			if consoleSocket == "" {
				console = master
				break
			}
			err = k.Note("sendmsg", "pty master to "+consoleSocket, sendConsole(consoleSocket, fd))
			master.Close()
			if err != nil {
				return console, err
			}
		case msgHooks:
			if hooks == nil {
				return console, errors.New("sync: the init asked for hooks there are none of")
			}
			if err := hooks(); err != nil {
				return console, err
			}
			if err := sendMsg(sync, syncMsg{Type: msgHooksDone}, -1); err != nil {
				return console, err
			}
		case msgReady:
			return console, nil
		default:
			return console, fmt.Errorf("sync: unexpected %q from init", m.Type)
		}
	}
}

// initConfigFor is what the init of a new container needs of its spec (a
// bad seccomp profile fails here, before anything is made).
func initConfigFor(spec *specs.Spec, rootPath string, o CreateOptions) (*initConfig, error) {
	linux := spec.Linux
	cfg := &initConfig{
		Namespaces: linux.Namespaces, Hostname: spec.Hostname, Domainname: spec.Domainname,
		Rootfs: rootPath, RootfsPropagation: linux.RootfsPropagation, Mounts: spec.Mounts, Devices: linux.Devices,
		NoPivot: o.NoPivot, StartNow: o.StartNow, Sysctl: linux.Sysctl, ReadonlyPaths: linux.ReadonlyPaths, MaskedPaths: linux.MaskedPaths,
		ReadonlyRoot: spec.Root.Readonly, Process: initProcFor(spec.Process, o.Warn), PreserveFds: len(o.ExtraFiles),
	}
	if hooks := spec.Hooks; hooks != nil {
		cfg.RuntimeHooks = len(hooks.Prestart) > 0 || len(hooks.CreateRuntime) > 0
		cfg.CreateContainerHooks = hooks.CreateContainer // State is added once the init has a pid
	}
	if linux.Seccomp != nil {
		f, err := seccomp.Compile(linux.Seccomp)
		if err != nil {
			return nil, err
		}
		cfg.Seccomp = f
	}
	return cfg, nil
}

// checkPidFile fails, before anything is made, when the pid file could
// not be written for want of its directory (runc fails the same way, once
// the container is made).
func checkPidFile(p string) error {
	if p == "" {
		return nil
	}
	fi, err := os.Stat(filepath.Dir(p))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("directory %s: %w", filepath.Dir(p), pe.Err)
		}
		return fmt.Errorf("pid file %s: %w", p, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("pid file %s: %s is not a directory", p, filepath.Dir(p))
	}
	return nil
}

// Console is the pty master of a container made with process.terminal and
// no console socket; the caller owns it (nil otherwise).
func (c *Container) Console() *os.File { return c.console }

func pidOf(cmd *exec.Cmd) int {
	if cmd.Process == nil {
		return 0
	}
	return cmd.Process.Pid
}

// initCommand prepares the re-exec of this binary as `minidock init`, with
// the fds of the handshake at the numbers init expects (see sync.go) and
// the files to preserve after them.
func initCommand(h *handshake, start *os.File, stdio [3]*os.File, extra []*os.File, tr *trace.Tracer) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", "init")
	// left nil (os/exec's /dev/null) unless given: a nil *os.File in an
	// io.Reader would not be nil
	if stdio[0] != nil {
		cmd.Stdin = stdio[0]
	}
	if stdio[1] != nil {
		cmd.Stdout = stdio[1]
	}
	if stdio[2] != nil {
		cmd.Stderr = stdio[2]
	}
	cmd.ExtraFiles = []*os.File{h.child, h.configR, start, tr.File()}
	cmd.ExtraFiles = append(cmd.ExtraFiles, extra...)
	// The init's own environment (the container's process gets its own at
	// execve). One P: the init runs one goroutine, and fewer threads make
	// its start and its execve (which ends every other thread) shorter.
	cmd.Env = []string{"GOMAXPROCS=1"}
	if tr != nil {
		cmd.Env = append(cmd.Env, "_MINIDOCK_TRACE="+tr.Encoding())
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	return cmd
}

// startInit runs start, which starts the init with attr (os/exec's
// Cmd.Start), on a thread locked for the purpose, so that the init is born
// where it belongs:
//
//   - in the pid namespace at pidns, if any: setns(CLONE_NEWPID) only
//     changes the namespace of the calling thread's children, so the thread
//     joins it first, and is then thrown away (never unlocked);
//   - in the cgroup cg, if any: the thread enters its v1 hierarchies and
//     moves back after the fork, and clone3 puts the child into its v2
//     directory (cgroup.Manager.EnterThread, CloneInto). A process moved in
//     afterwards would cost an RCU grace period (docs/cgroups.md).
//
// It returns once the init has started; the thread's way back out of the
// cgroup is still under way then (it is of no concern to the init), and
// settled waits for it and returns its error. Call it before returning.
// attr nil means start does not use os/exec (the raw clone of an exec into
// a user namespace): then the caller puts the process into cg itself.
func startInit(k kernel.Calls, cg cgroupHandle, pidns string, attr *syscall.SysProcAttr, start func() error) (settled func() error, err error) {
	started, left := make(chan error, 1), make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		discard := false // the thread is somewhere it cannot leave
		defer func() {
			if !discard {
				goruntime.UnlockOSThread()
			}
		}()
		if pidns != "" {
			discard = true
			if err := ns.Join(k, specs.PIDNamespace, pidns); err != nil {
				started <- err
				left <- nil
				return
			}
		}
		if cg == nil || attr == nil {
			started <- start()
			left <- nil
			return
		}
		leave, err := cg.EnterThread()
		if err != nil {
			discard = true
			started <- err
			left <- nil
			return
		}
		closeDir, err := cg.CloneInto(attr)
		if err == nil {
			err = start()
			closeDir()
		}
		started <- err
		if err := leave(); err != nil {
			discard = true
			left <- err
			return
		}
		left <- nil
	}()
	return func() error { return <-left }, <-started
}

// listenStart binds the start socket in the state directory. The path is
// reached through /proc/self/fd/<dir fd> so that long --root paths do not
// hit the 108-byte limit of socket addresses.
func listenStart(dir string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	err = withDirPath(dir, func(d string) error {
		return unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(d, startSock)})
	})
	if err == nil {
		err = unix.Listen(fd, 1)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("start socket in %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), startSock), nil
}

func withDirPath(dir string, f func(string) error) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return f(fmt.Sprintf("/proc/self/fd/%d", d.Fd()))
}
