package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
	"minidock/ns"
	"minidock/rootfs"
	"minidock/seccomp"
)

type createOpts struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	PreserveFds   int
	// KeepMaster: `run` without a console socket keeps the pty master to
	// attach it to the caller's terminal.
	KeepMaster bool
}

// loadBundle reads and checks <bundle>/config.json with the runtime-spec
// types.
func loadBundle(bundle string) (*specs.Spec, string, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("bundle %s: config.json not found (make one with `minidock runtime spec`)", bundle)
		}
		return nil, "", fmt.Errorf("read config.json: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, "", fmt.Errorf("config.json in %s is not valid: %w", bundle, err)
	}
	rootPath, err := validateSpec(&spec, bundle)
	if err != nil {
		return nil, "", fmt.Errorf("config.json: %w", err)
	}
	return &spec, rootPath, nil
}

// validateSpec refuses what the runtime cannot do faithfully, before
// anything is made. It returns the absolute rootfs path.
func validateSpec(spec *specs.Spec, bundle string) (string, error) {
	if spec.Root == nil || spec.Root.Path == "" {
		return "", errors.New("root.path is missing")
	}
	// process may be left out: the container is made, and start fails
	// (the OCI spec's rule).
	if spec.Process != nil && len(spec.Process.Args) == 0 {
		return "", errors.New("process.args is empty")
	}
	if spec.Linux == nil {
		return "", errors.New("linux section is missing")
	}
	if !strings.HasPrefix(spec.Version, "1.") {
		return "", fmt.Errorf("ociVersion %q: this runtime implements the 1.x runtime spec", spec.Version)
	}
	root := spec.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(bundle, root)
	}
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("rootfs %s: %w", root, err)
	}
	root = resolved
	fi, err := os.Stat(root)
	if err != nil {
		return "", fmt.Errorf("rootfs %s: %w", root, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("rootfs %s is not a directory", root)
	}
	if err := ns.Validate(spec.Linux.Namespaces); err != nil {
		return "", err
	}
	nss := spec.Linux.Namespaces
	if ns.Path(nss, specs.UserNamespace) != "" {
		return "", errors.New("joining an existing user namespace (linux.namespaces user path) is not supported: setns(2) into a user namespace needs a single-threaded process")
	}
	if ns.Has(nss, specs.UserNamespace) && (len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0) {
		return "", errors.New("a user namespace needs linux.uidMappings and linux.gidMappings")
	}
	if spec.Linux.Seccomp != nil {
		if _, err := seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return "", err
		}
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return "", fmt.Errorf("mount destination %q is not absolute", m.Destination)
		}
		if _, err := rootfs.Resolve(root, m.Destination); err != nil {
			return "", fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	if p := spec.Process; p != nil {
		if err := checkRlimits(p.Rlimits); err != nil {
			return "", err
		}
		if err := checkCaps(p.Capabilities); err != nil {
			return "", err
		}
	}
	own := map[string]bool{}
	for _, n := range nss {
		if n.Path == "" {
			own[string(n.Type)] = true
		}
	}
	if err := rootfs.CheckSysctls(spec.Linux.Sysctl, own); err != nil {
		return "", err
	}
	return root, nil
}

// create makes a container: state directory, cgroup, the init process in
// its new namespaces, and the handshake up to "ready". The init is left
// blocked until `start`. On any error everything made so far is undone.
func create(root, id string, o createOpts) (c *Container, cmd *exec.Cmd, master *os.File, err error) {
	if err := checkID(id); err != nil {
		return nil, nil, nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, nil, nil, err
	}
	spec, rootPath, err := loadBundle(bundle)
	if trace.Step("load-bundle", fmt.Sprintf("read(%q) + check", filepath.Join(bundle, "config.json")), err) != nil {
		return nil, nil, nil, err
	}
	if spec.Process != nil && spec.Process.Terminal && o.ConsoleSocket == "" && !o.KeepMaster {
		return nil, nil, nil, errors.New("cannot allocate a tty without a console socket (--console-socket) when detached")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("runtime root %s: %w", root, err)
	}
	dir := filepath.Join(root, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, nil, nil, fmt.Errorf("container with id %q already exists", id)
		}
		return nil, nil, nil, fmt.Errorf("state dir: %w", err)
	}
	c = &Container{ID: id, Bundle: bundle, Rootfs: rootPath, Created: time.Now().UTC(), Annotations: spec.Annotations, Config: spec, dir: dir}
	var cg cgroupHandle
	defer func() {
		if err == nil {
			return
		}
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if master != nil {
			master.Close()
		}
		if cg != nil {
			cg.Destroy()
		}
		os.RemoveAll(dir)
	}()

	startL, err := listenStart(dir)
	if err != nil {
		return c, nil, nil, err
	}
	defer startL.Close()
	parentSync, childSync, err := syncPair()
	if err != nil {
		return c, nil, nil, err
	}
	defer unix.Close(parentSync)
	configR, configW, err := os.Pipe()
	if err != nil {
		childSync.Close()
		return c, nil, nil, err
	}

	cmd = initCommand(childSync, configR, startL, o.PreserveFds)
	nss := spec.Linux.Namespaces
	cmd.SysProcAttr.Cloneflags = ns.CloneFlags(nss)
	if ns.Has(nss, specs.UserNamespace) {
		// os/exec writes these to /proc/<pid>/uid_map and gid_map from this
		// (parent) process between clone and execve, while the child waits;
		// the child then becomes uid 0 of the new namespace before execve,
		// so that it keeps its capabilities there.
		cmd.SysProcAttr.UidMappings = ns.IDMaps(spec.Linux.UIDMappings)
		cmd.SysProcAttr.GidMappings = ns.IDMaps(spec.Linux.GIDMappings)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	err = startInNamespace(cmd, ns.Path(nss, specs.PIDNamespace))
	childSync.Close()
	configR.Close()
	trace.Step("clone", fmt.Sprintf("clone(%s) + execve(/proc/self/exe init) = pid %d", ns.FlagName(cmd.SysProcAttr.Cloneflags), pidOf(cmd)), err)
	if err != nil {
		configW.Close()
		cmd = nil
		return c, nil, nil, fmt.Errorf("start container init: %w", err)
	}
	c.Pid = cmd.Process.Pid
	_, c.PidStart, _ = procStat(c.Pid)

	cfg := initConfig{ID: id, Rootfs: rootPath, Spec: forInit(spec), Process: spec.Process, NoPivot: o.NoPivot, PreserveFds: o.PreserveFds,
		State: c.ociState(string(specs.StateCreated))}
	for _, n := range nss {
		if n.Path != "" && n.Type != specs.PIDNamespace {
			cfg.Join = append(cfg.Join, n)
		}
	}
	err = json.NewEncoder(configW).Encode(&cfg)
	configW.Close()
	if err != nil {
		return c, cmd, nil, fmt.Errorf("send config to init: %w", err)
	}
	// The cgroup is made while the init's Go runtime starts up: the two
	// overlap, and the init does nothing before "go".
	if cg, err = createCgroup(c); err != nil {
		return c, cmd, nil, err
	}
	if err = cg.AddProc(c.Pid); err != nil {
		return c, cmd, nil, err
	}
	trace.Step("join-cgroup", fmt.Sprintf("write(cgroup.procs, %d) in %s", c.Pid, cg.Path()), nil)
	if err = sendMsg(parentSync, syncMsg{Type: msgGo}, -1); err != nil {
		return c, cmd, nil, err
	}
	// Serve the init until it is ready.
	for {
		m, fd, rerr := recvMsg(parentSync)
		if rerr != nil {
			return c, cmd, master, rerr
		}
		switch m.Type {
		case msgError:
			return c, cmd, master, &stepError{Step: m.Step, Msg: m.Message}
		case msgPty:
			master = os.NewFile(uintptr(fd), "ptmx")
			if o.ConsoleSocket != "" {
				err = sendConsole(o.ConsoleSocket, fd)
				master.Close()
				master = nil
				if err != nil {
					return c, cmd, nil, err
				}
			}
		case msgHooks:
			// "created", as runc passes it and the OCI validation suite
			// (hooks_stdin) expects, though create has not returned yet
			st := c.ociState(string(specs.StateCreated))
			if err = runHooks("prestart", spec.Hooks.Prestart, st); err != nil {
				return c, cmd, master, err
			}
			if err = runHooks("createRuntime", spec.Hooks.CreateRuntime, st); err != nil {
				return c, cmd, master, err
			}
			if err = sendMsg(parentSync, syncMsg{Type: msgHooksDone}, -1); err != nil {
				return c, cmd, master, err
			}
		case msgReady:
			if err = c.save(); err != nil {
				return c, cmd, master, err
			}
			if o.PidFile != "" {
				if err = writeFileAtomic(o.PidFile, []byte(strconv.Itoa(c.Pid)), 0o644); err != nil {
					return c, cmd, master, fmt.Errorf("pid file: %w", err)
				}
			}
			return c, cmd, master, nil
		default:
			return c, cmd, master, fmt.Errorf("sync: unexpected %q from init", m.Type)
		}
	}
}

// forInit is the part of the spec the init uses: the process travels on
// its own, and cgroup resources and id maps are the parent's business.
// Less to decode makes the init's first JSON decode (cold, reflection)
// faster.
func forInit(spec *specs.Spec) *specs.Spec {
	s := *spec
	s.Process = nil
	s.Annotations = nil
	linux := *spec.Linux
	linux.Resources, linux.UIDMappings, linux.GIDMappings, linux.CgroupsPath = nil, nil, nil, ""
	s.Linux = &linux
	return &s
}

func pidOf(cmd *exec.Cmd) int {
	if cmd.Process == nil {
		return 0
	}
	return cmd.Process.Pid
}

// initCommand prepares the re-exec of this binary as `minidock init`, with
// the fds of the handshake at the numbers init expects (see sync.go).
func initCommand(sync, config, start *os.File, preserve int) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", "init")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{sync, config, nil, nil}
	if start != nil {
		cmd.ExtraFiles[2] = start
	}
	cmd.Env = []string{}
	if trace.On() {
		cmd.ExtraFiles[3] = os.Stderr
		cmd.Env = append(cmd.Env, "_MINIDOCK_TRACE=1")
	}
	for i := 0; i < preserve; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), fmt.Sprintf("preserved-%d", i)))
	}
	if cmd.ExtraFiles[3] == nil && preserve > 0 {
		// keep the positions of preserved fds fixed
		cmd.ExtraFiles[3] = os.Stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	return cmd
}

// startInNamespace starts cmd with its parent thread inside the pid
// namespace at pidns, if any. setns(CLONE_NEWPID) only changes the
// namespace of children, and only of the calling thread's: so a thread is
// locked, joins, forks, and is then thrown away (never unlocked).
func startInNamespace(cmd *exec.Cmd, pidns string) error {
	return inPidNamespace(pidns, cmd.Start)
}

// inPidNamespace runs start (which forks) on a thread that has joined the
// pid namespace at pidns, if any.
func inPidNamespace(pidns string, start func() error) error {
	if pidns == "" {
		return start()
	}
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		if err := ns.Join(specs.PIDNamespace, pidns); err != nil {
			errc <- err
			return
		}
		errc <- start()
	}()
	return <-errc
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

// start releases a created container's init: connect to its start socket,
// which makes it execve. EOF on the connection means execve worked.
func (c *Container) start() error {
	switch st := c.Status(); st {
	case "created":
	case "stopped":
		return errors.New("cannot start a container that has stopped")
	default:
		return fmt.Errorf("cannot start an already %s container", st)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	conn := os.NewFile(uintptr(fd), "start")
	defer conn.Close()
	err = withDirPath(c.dir, func(d string) error {
		return unix.Connect(fd, &unix.SockaddrUnix{Name: filepath.Join(d, startSock)})
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", c.ID, err)
	}
	os.Remove(filepath.Join(c.dir, startSock))
	msg, _ := io.ReadAll(conn)
	if len(msg) > 0 {
		return fmt.Errorf("start %s: %s", c.ID, msg)
	}
	trace.Step("start", "connect(start.sock) → init calls execve", nil)
	if c.Config.Hooks != nil {
		if err := runHooks("poststart", c.Config.Hooks.Poststart, c.ociState("running")); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		}
	}
	return nil
}

// signal sends sig to the init, or with all to every process of the
// container.
func (c *Container) signal(sig unix.Signal, all bool) error {
	st := c.Status()
	if st == "stopped" {
		return errors.New("container not running")
	}
	if all {
		if cg, err := c.cgroup(); err == nil {
			return cg.KillAll(sig)
		}
	}
	if err := unix.Kill(c.Pid, sig); err != nil {
		return fmt.Errorf("kill %d: %w", c.Pid, err)
	}
	return nil
}

// destroy removes a stopped container: poststop hooks, cgroup, state.
func (c *Container) destroy() error {
	var errs []error
	if cg, err := c.cgroup(); err == nil {
		if err := cg.Destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Config != nil && c.Config.Hooks != nil {
		if err := runHooks("poststop", c.Config.Hooks.Poststop, c.ociState("stopped")); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// delete removes a container; a running one only with force (SIGKILL).
func (c *Container) delete(force bool) error {
	switch st := c.Status(); st {
	case "stopped":
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", c.ID, st)
		}
		if st == "paused" {
			if cg, err := c.cgroup(); err == nil {
				cg.Thaw()
			}
		}
		c.killAndWait()
	}
	return c.destroy()
}

func (c *Container) killAndWait() {
	if cg, err := c.cgroup(); err == nil {
		cg.KillAll(unix.SIGKILL)
	}
	unix.Kill(c.Pid, unix.SIGKILL)
	waitGone(c.Pid, 10*time.Second)
}

// run is create + start + wait, as `runc run`: the exit code of the
// container's process (128+signal when killed) is returned; the container
// is deleted afterwards unless detached.
func run(root, id string, o createOpts, detach bool) (int, error) {
	o.KeepMaster = !detach && o.ConsoleSocket == ""
	c, cmd, master, err := create(root, id, o)
	if err != nil {
		return 1, err
	}
	if detach {
		if master != nil {
			master.Close()
		}
		return 0, c.start()
	}
	if err := c.start(); err != nil {
		if master != nil {
			master.Close()
		}
		c.delete(true)
		return 1, err
	}
	code := foreground(cmd.Process, master)
	trace.Step("wait", fmt.Sprintf("wait4(%d) = exit code %d", c.Pid, code), nil)
	err = c.delete(true)
	trace.Step("delete", "rmdir(cgroup), rm -r "+c.dir, err)
	if err != nil {
		fmt.Fprintf(os.Stderr, "delete %s: %v\n", id, err)
	}
	return code, nil
}

// foreground waits for a process the runtime started and returns its exit
// code, meanwhile forwarding the signals the runtime gets to it (as runc
// does) and, with a pty, connecting the caller's terminal to it.
func foreground(proc *os.Process, master *os.File) int {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	defer signal.Stop(sigs)
	var outDone chan struct{}
	if master != nil {
		restore := attachTerminal(master)
		defer restore()
		outDone = make(chan struct{})
		go func() { io.Copy(os.Stdout, master); close(outDone) }()
	}
	var ps *os.ProcessState
	waitc := make(chan error, 1)
	go func() {
		var err error
		ps, err = proc.Wait()
		waitc <- err
	}()
	for {
		select {
		case s := <-sigs:
			sig := s.(syscall.Signal)
			if sig == unix.SIGCHLD || sig == unix.SIGWINCH || sig == unix.SIGURG || sig == unix.SIGPIPE {
				continue
			}
			proc.Signal(sig)
		case werr := <-waitc:
			if outDone != nil {
				// the copy ends with EIO once the last holder of the pty's
				// slave side has exited
				select {
				case <-outDone:
				case <-time.After(time.Second):
				}
			}
			return exitCode(ps, werr)
		}
	}
}

// exitCode maps a wait status as shells do: the exit status, or 128+signal.
func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
	return ps.ExitCode()
}

// parseSignal accepts 9, KILL and SIGKILL.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// containerPids lists the container's processes: from its cgroup when it
// has one, else the init and its descendants.
func (c *Container) pids() ([]int, error) {
	if c.Status() == "stopped" {
		return nil, nil
	}
	if cg, err := c.cgroup(); err == nil {
		return cg.Pids()
	}
	return descendants(c.Pid), nil
}

func descendants(root int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
