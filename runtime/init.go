package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
	"minidock/kernel"
	"minidock/ns"
	"minidock/rootfs"
	"minidock/seccomp"
)

// initConfig is what the parent sends the init through the config pipe
// (fd 4): what the init sequence uses, and nothing else. The parent has
// checked all of it; seccomp comes compiled.
type initConfig struct {
	// Exec: enter a running container (runtime exec) instead of making one.
	Exec bool `json:"exec,omitempty"`
	// StartNow: execve as soon as ready, without waiting for start
	// (runtime run); the parent learns of the execve from the sync socket's
	// end (it is close-on-exec).
	StartNow bool `json:"startNow,omitempty"`
	// Namespaces of the container. Those with a path are joined with
	// setns(2) by the init (the pid namespace, which only applies to
	// children, by the parent); new ones were made by clone(2), except a
	// new cgroup namespace, which the init unshares.
	Namespaces []specs.LinuxNamespace `json:"namespaces,omitempty"`
	Hostname   string                 `json:"hostname,omitempty"`
	Domainname string                 `json:"domainname,omitempty"`

	// The filesystem (new containers with a mount namespace).
	Rootfs            string              `json:"rootfs,omitempty"`
	RootfsPropagation string              `json:"rootfsPropagation,omitempty"`
	Mounts            []specs.Mount       `json:"mounts,omitempty"`
	Devices           []specs.LinuxDevice `json:"devices,omitempty"`
	NoPivot           bool                `json:"noPivot,omitempty"`
	Sysctl            map[string]string   `json:"sysctl,omitempty"`
	ReadonlyPaths     []string            `json:"readonlyPaths,omitempty"`
	MaskedPaths       []string            `json:"maskedPaths,omitempty"`
	ReadonlyRoot      bool                `json:"readonlyRoot,omitempty"`
	// CgroupPath is the container's cgroup (the same path in every
	// hierarchy), for its view of /sys/fs/cgroup.
	CgroupPath string `json:"cgroupPath,omitempty"`

	// Hooks: RuntimeHooks asks the parent to run prestart and
	// createRuntime hooks; createContainer hooks run in the init, with
	// State on their stdin.
	RuntimeHooks         bool         `json:"runtimeHooks,omitempty"`
	CreateContainerHooks []specs.Hook `json:"createContainerHooks,omitempty"`
	State                *specs.State `json:"state,omitempty"`

	// The process; nil when config.json has none (every start then fails).
	Process     *initProc       `json:"process,omitempty"`
	Seccomp     *seccomp.Filter `json:"seccomp,omitempty"`
	PreserveFds int             `json:"preserveFds,omitempty"`
}

// initProc is the part of specs.Process the init uses. (Not sending the
// rest also spares the init's first JSON decode the reflection over types
// it would never fill: console size, scheduler, I/O priority, CPU affinity.)
type initProc struct {
	Terminal        bool                     `json:"terminal,omitempty"`
	User            specs.User               `json:"user"`
	Args            []string                 `json:"args"`
	Env             []string                 `json:"env,omitempty"`
	Cwd             string                   `json:"cwd"`
	Capabilities    *specs.LinuxCapabilities `json:"capabilities,omitempty"`
	Rlimits         []specs.POSIXRlimit      `json:"rlimits,omitempty"`
	NoNewPrivileges bool                     `json:"noNewPrivileges,omitempty"`
	OOMScoreAdj     *int                     `json:"oomScoreAdj,omitempty"`
}

// initProcFor keeps of p what the init uses (nil stays nil); the ambient
// capabilities it could not raise are left out, with a warning to warn
// (runcCapabilities).
func initProcFor(p *specs.Process, warn func(string)) *initProc {
	if p == nil {
		return nil
	}
	return &initProc{Terminal: p.Terminal, User: p.User, Args: p.Args, Env: p.Env, Cwd: p.Cwd, Capabilities: runcCapabilities(p.Capabilities, warn),
		Rlimits: p.Rlimits, NoNewPrivileges: p.NoNewPrivileges, OOMScoreAdj: p.OOMScoreAdj}
}

// initProcess is the init along its sequence: its config, and what one
// step hands on to the next.
type initProcess struct {
	cfg           *initConfig
	master, slave *os.File        // the pty, when process.terminal
	seccomp       *seccomp.Filter // loaded by execProcess, unless finishProcess had to load it
	start         *os.File        // the connection from `runtime start`
	sync          int             // the sync socket to the parent (fdSync, or where execProcess moved it)
	step          *initAsker      // step mode: asks the runtime before each call (nil: not stepping)
}

// initStep is one named step of the init sequence: the name tags its
// trace lines and its error, and docs/runtime.md lists the same names.
type initStep struct {
	name string
	run  func(*initProcess, kernel.Calls) error
}

// createSteps make a new container around the init, in order.
var createSteps = []initStep{
	{"setupNamespaces", (*initProcess).setupNamespaces},
	{"prepareRootfs", (*initProcess).prepareRootfs},
	{"enterRootfs", (*initProcess).enterRootfs},
	{"finalizeRootfs", (*initProcess).finalizeRootfs},
	{"finishProcess", (*initProcess).finishProcess},
	{"waitForStart", (*initProcess).waitForStart},
	{"execProcess", (*initProcess).execProcess},
}

// execSteps enter a running container (runtime exec), in order.
var execSteps = []initStep{
	{"setupNamespaces", (*initProcess).setupNamespaces},
	{"finishProcess", (*initProcess).finishProcess},
	{"execProcess", (*initProcess).execProcess},
}

// InitMain is the hidden `minidock init` role: the first process inside
// the container's new namespaces. It never returns: it ends in execve(2) of
// the container's process, or exits after telling the parent (or, once
// ready, `runtime start`) what failed.
func InitMain(args []string) {
	// setns(2), the credentials and the capabilities act on the calling
	// thread: keep this goroutine on one thread, the one that calls execve.
	goruntime.LockOSThread()
	var tr *trace.Tracer
	if enc := os.Getenv("_MINIDOCK_TRACE"); enc != "" { // the runtime's encoding: text or json
		tr = trace.NewEncoded(os.NewFile(fdTrace, "trace"), enc, "init")
	}
	var k kernel.Calls = kernel.NewLinux(tr)
	p := &initProcess{sync: fdSync, step: openInitAsker()}
	if p.step != nil {
		k = kernel.NewStepper(k, p.step.pause) // step mode: step.go
	}
	// Not dumpable until the container's program replaces this one (execve
	// makes it dumpable again): /proc/<pid>/exe is the host's minidock
	// binary, and from the moment the capabilities are dropped a process
	// of the container, with the same uid and capabilities, could
	// otherwise ptrace(2) this one before its seccomp filter is loaded, or
	// open its exe (what CVE-2019-5736 did to runc).
	if os.Getenv(envAwaitIDMaps) == "1" {
		// rootless, with ranges only newuidmap can map (rootless.go)
		err := k.Note("execve", "/proc/self/exe init, once the id maps are written", awaitIDMaps())
		(&initProcess{sync: fdSync}).fail(&InitError{Step: "awaitIDMaps", Msg: err.Error(), Errno: kernel.Errno(err), err: err})
	}
	k.Note("prctl", "PR_SET_DUMPABLE 0", unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0))
	first := []initStep{{"readConfig", (*initProcess).readConfig}}
	if os.Getenv(envDebugInit) == "1" {
		first = append([]initStep{{"waitForDebugger", (*initProcess).waitForDebugger}}, first...)
	}
	err := p.run(k, first)
	if err == nil {
		steps := createSteps
		switch {
		case p.cfg.Exec:
			steps = execSteps
		case p.cfg.StartNow:
			// runtime run: no waiting for start
			steps = slices.DeleteFunc(slices.Clone(createSteps), func(s initStep) bool { return s.name == "waitForStart" })
		}
		err = p.run(k, steps)
	}
	p.fail(err)
}

// run runs steps in order; the first that fails ends the sequence with an
// error naming it.
func (p *initProcess) run(k kernel.Calls, steps []initStep) error {
	for _, s := range steps {
		if err := s.run(p, k.Begin(s.name)); err != nil {
			return &InitError{Step: s.name, Msg: err.Error(), Errno: kernel.Errno(err), err: err}
		}
	}
	return nil
}

// readConfig reads the initConfig from the config pipe (fd 4) until EOF.
// The parent sends it once the init is where it belongs (born in its
// cgroup, its id maps written), so it is also the signal to go on.
func (p *initProcess) readConfig(k kernel.Calls) error {
	f := os.NewFile(fdConfig, "config")
	err := json.NewDecoder(f).Decode(&p.cfg)
	f.Close()
	return k.Note("read", "fd 4: the initConfig", err)
}

// setupNamespaces finishes the namespaces clone(2) made: it joins those
// given by path (setns), unshares a new cgroup namespace (now that the
// init is in its cgroup, which becomes the namespace's root), brings up
// the loopback interface of a new network namespace (it starts down), and
// sets the hostname and domain name of the uts namespace.
func (p *initProcess) setupNamespaces(k kernel.Calls) error {
	nss := p.cfg.Namespaces
	if err := ns.JoinAll(k, nss); err != nil {
		return err
	}
	if ns.New(nss, specs.CgroupNamespace) {
		if err := k.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return err
		}
	}
	if ns.New(nss, specs.NetworkNamespace) {
		if err := k.SetLinkUp("lo"); err != nil {
			return err
		}
	}
	if p.cfg.Hostname != "" {
		if err := k.Sethostname(p.cfg.Hostname); err != nil {
			return err
		}
	}
	if p.cfg.Domainname != "" {
		return k.Setdomainname(p.cfg.Domainname)
	}
	return nil
}

// prepareRootfs builds the container's filesystem under its rootfs
// directory, still seen from the host's tree: propagation, the rootfs bind,
// the config's mounts, /dev, the console; then the hooks that run at this
// point (createRuntime in the parent's namespaces, createContainer here).
// Without a mount namespace only the hooks run.
func (p *initProcess) prepareRootfs(k kernel.Calls) error {
	cfg := p.cfg
	if ns.Has(cfg.Namespaces, specs.MountNamespace) {
		root := cfg.Rootfs
		env := rootfs.MountEnv{
			UserNS:   ns.Has(cfg.Namespaces, specs.UserNamespace),
			CgroupNS: ns.New(cfg.Namespaces, specs.CgroupNamespace),
			Cgroup:   cfg.CgroupPath,
		}
		if err := rootfs.SetRootPropagation(k, cfg.RootfsPropagation); err != nil {
			return err
		}
		if err := rootfs.MakeParentPrivate(k, root, cfg.RootfsPropagation); err != nil {
			return err
		}
		if err := rootfs.BindRootfs(k, root); err != nil {
			return err
		}
		if err := rootfs.MountAll(k, root, cfg.Mounts, env); err != nil {
			return err
		}
		if err := rootfs.SetupDev(k, root, cfg.Mounts, cfg.Devices, env.UserNS); err != nil {
			return err
		}
		if cfg.Process != nil && cfg.Process.Terminal {
			var err error
			p.master, p.slave, err = k.OpenPty(filepath.Join(root, "dev/pts/ptmx"), filepath.Join(root, "dev/pts"))
			if err != nil {
				return err
			}
			if err := rootfs.BindConsole(k, root, p.slave.Name()); err != nil {
				return err
			}
		}
	}
	return p.runCreateHooks(k)
}

// runCreateHooks asks the parent to run the prestart and createRuntime
// hooks (in the runtime's namespaces), then runs the createContainer hooks
// here, in the container's namespaces, before pivot_root.
func (p *initProcess) runCreateHooks(k kernel.Calls) error {
	if p.cfg.RuntimeHooks {
		if err := sendMsg(p.sync, syncMsg{Type: msgHooks}, -1); err != nil {
			return err
		}
		if _, err := expect(p.sync, msgHooksDone); err != nil {
			return err
		}
	}
	if len(p.cfg.CreateContainerHooks) == 0 {
		return nil
	}
	return runHooks(k, "createContainer", p.cfg.CreateContainerHooks, *p.cfg.State)
}

// enterRootfs makes the rootfs the root of the mount namespace:
// pivot_root(2) and the old root detached, or with --no-pivot MS_MOVE and
// chroot(2).
func (p *initProcess) enterRootfs(k kernel.Calls) error {
	if !ns.Has(p.cfg.Namespaces, specs.MountNamespace) {
		return nil
	}
	if p.cfg.NoPivot {
		return rootfs.MoveRoot(k, p.cfg.Rootfs)
	}
	return rootfs.PivotRoot(k, p.cfg.Rootfs)
}

// finalizeRootfs makes what must be read-only so, from inside the new
// root: sysctls first (/proc/sys becomes read-only just after), the
// read-only and masked paths, then the root itself.
func (p *initProcess) finalizeRootfs(k kernel.Calls) error {
	cfg := p.cfg
	if !ns.Has(cfg.Namespaces, specs.MountNamespace) {
		return nil
	}
	if err := rootfs.WriteSysctls(k, cfg.Sysctl); err != nil {
		return err
	}
	if err := rootfs.ReadonlyPaths(k, cfg.ReadonlyPaths); err != nil {
		return err
	}
	if err := rootfs.MaskPaths(k, cfg.MaskedPaths); err != nil {
		return err
	}
	if cfg.ReadonlyRoot {
		return rootfs.ReadonlyRoot(k)
	}
	return nil
}

// finishProcess turns the init into the container's process, everything
// but execve: the terminal, rlimits, oom_score_adj, the working directory,
// the capability bounding set, the user, the capabilities, no_new_privs.
// A seccomp filter is loaded here only without no_new_privs, while the
// init still has CAP_SYS_ADMIN (as runc does); otherwise execProcess loads
// it last.
func (p *initProcess) finishProcess(k kernel.Calls) error {
	proc := p.cfg.Process
	if proc == nil {
		return nil // nothing to finish: start will fail (noProcess)
	}
	if proc.Terminal {
		if err := p.useTerminal(k); err != nil {
			return err
		}
	}
	if err := setRlimits(k, proc.Rlimits); err != nil {
		return err
	}
	if proc.OOMScoreAdj != nil {
		if err := k.WriteFile("/proc/self/oom_score_adj", strconv.Itoa(*proc.OOMScoreAdj)); err != nil {
			return err
		}
	}
	if proc.Cwd != "" {
		if err := k.Chdir(proc.Cwd); err != nil {
			return fmt.Errorf("cwd %q set in config.json: %w", proc.Cwd, err)
		}
	}
	p.seccomp = p.cfg.Seccomp
	if p.seccomp != nil && !proc.NoNewPrivileges {
		// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load
		// it now, while the init still has every capability. The steps
		// below then run under the filter.
		if err := p.seccomp.Load(k); err != nil {
			return err
		}
		p.seccomp = nil
	}
	if err := dropBoundingSet(k, proc.Capabilities); err != nil {
		return err
	}
	if err := setUser(k, proc.User); err != nil {
		return err
	}
	if err := setCapabilities(k, proc.Capabilities); err != nil {
		return err
	}
	if proc.NoNewPrivileges {
		return k.SetNoNewPrivs()
	}
	return nil
}

// useTerminal hands the pty master to the parent (SCM_RIGHTS over the sync
// socket) and makes the slave the process's controlling terminal and its
// stdin, stdout and stderr: setsid(2), ioctl(TIOCSCTTY), dup3(2). Without
// a mount namespace of its own, or for exec, the pty is opened now from
// /dev/ptmx.
func (p *initProcess) useTerminal(k kernel.Calls) error {
	if p.master == nil {
		var err error
		if p.master, p.slave, err = k.OpenPty("/dev/ptmx", "/dev/pts"); err != nil {
			return err
		}
	}
	if err := sendMsg(p.sync, syncMsg{Type: msgPty}, int(p.master.Fd())); err != nil {
		return err
	}
	p.master.Close()
	if err := k.Setsid(); err != nil {
		return err
	}
	fd := int(p.slave.Fd())
	if err := k.SetCtty(fd); err != nil {
		return err
	}
	for i := 0; i <= 2; i++ {
		if err := k.Dup3(fd, i); err != nil {
			return err
		}
	}
	return p.slave.Close()
}

// waitForStart tells the parent the container is ready and blocks in
// accept(2) on the start socket until `runtime start` connects. The
// connection stays open (close-on-exec) so that start learns whether
// execve worked: EOF means it did, text is the error. In step mode the
// init asks its pauses over it too, before the error or EOF.
func (p *initProcess) waitForStart(k kernel.Calls) error {
	if err := sendMsg(p.sync, syncMsg{Type: msgReady}, -1); err != nil {
		return err
	}
	unix.Close(p.sync)
	p.step.end() // runtime create has returned
	for {
		nfd, _, err := unix.Accept4(fdStart, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err := k.Note("accept4", "start.sock (runtime start)", err); err != nil {
			return err
		}
		unix.Close(fdStart)
		// Move the connection out of the way of the fds kept for the process.
		high, err := unix.FcntlInt(uintptr(nfd), unix.F_DUPFD_CLOEXEC, 3+p.cfg.PreserveFds)
		unix.Close(nfd)
		if err != nil {
			return err
		}
		p.start = os.NewFile(uintptr(high), "start")
		p.step.askStart(p.start) // step mode: Start answers the pauses of execProcess
		return nil
	}
}

// execProcess execs the container's program: looked up only now, as the
// OCI spec has it (create does not depend on it; a missing program fails
// start), the fds passed on moved into place and every other fd marked
// close-on-exec, then the seccomp filter loaded last, so that it
// constrains the program and not the init's set-up.
func (p *initProcess) execProcess(k kernel.Calls) error {
	proc := p.cfg.Process
	if proc == nil {
		return errors.New("config.json has no process to start")
	}
	switch {
	case p.cfg.Exec:
		// runtime exec: ready now (there is no start)
		if err := sendMsg(p.sync, syncMsg{Type: msgReady}, -1); err != nil {
			return err
		}
		unix.Close(p.sync)
	case p.cfg.StartNow:
		// runtime run: ready, and the sync socket stays open for an error
		// until execve closes it, above the fds passed on (moved to 3,
		// 4, ... below)
		if err := sendMsg(p.sync, syncMsg{Type: msgReady}, -1); err != nil {
			return err
		}
		if p.cfg.PreserveFds > 0 {
			high, err := unix.FcntlInt(uintptr(p.sync), unix.F_DUPFD_CLOEXEC, fdTrace+1+p.cfg.PreserveFds)
			if err != nil {
				return err
			}
			p.sync = high
		}
	}
	path, err := lookPath(proc.Args[0], proc.Env)
	if err != nil {
		return &execError{err}
	}
	// The files passed on come after ours (see initCommand): move them
	// down to 3, 4, ...
	for i := 0; i < p.cfg.PreserveFds; i++ {
		if err := k.Dup3(fdTrace+1+i, 3+i); err != nil {
			return err
		}
	}
	if err := k.CloseOnExecFrom(3 + p.cfg.PreserveFds); err != nil {
		return err
	}
	if p.seccomp != nil {
		if err := p.seccomp.Load(k); err != nil {
			return err
		}
	}
	return &execError{k.Exec(path, proc.Args, proc.Env)}
}

// execError is a program that could not be executed: the init exits 127,
// as a shell does.
type execError struct{ err error }

func (e *execError) Error() string { return e.err.Error() }
func (e *execError) Unwrap() error { return e.err }

// fail reports a failed step and exits: to the parent while it listens on
// the sync socket, else (after "ready") to `runtime start` through its
// connection, else on stderr.
func (p *initProcess) fail(err error) {
	if err == nil {
		err = errors.New("init returned without exec")
	}
	code := 1
	var ee *execError
	if errors.As(err, &ee) {
		code = 127
	}
	var ie *InitError
	switch {
	case p.start != nil:
		msg := err.Error()
		if errors.As(err, &ie) {
			msg = ie.Msg // start names the container; the message is enough
		}
		fmt.Fprint(p.start, msg)
	case !errors.As(err, &ie) || sendMsg(p.sync, ie.message(), -1) != nil:
		fmt.Fprintf(os.Stderr, "minidock init: %v\n", err)
	}
	os.Exit(code)
}
