package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
	"minidock/ns"
	"minidock/rootfs"
	"minidock/seccomp"
)

// initConfig is what the parent sends the init through the config pipe.
type initConfig struct {
	ID      string         `json:"id"`
	Exec    bool           `json:"exec,omitempty"` // join a running container instead of making one
	Rootfs  string         `json:"rootfs,omitempty"`
	Spec    *specs.Spec    `json:"spec"`
	Process *specs.Process `json:"process"`
	// Join lists the namespaces to enter with setns(2) (paths); for exec,
	// every namespace of the running container.
	Join        []specs.LinuxNamespace `json:"join,omitempty"`
	NoPivot     bool                   `json:"no_pivot,omitempty"`
	State       specs.State            `json:"state"` // for createContainer hooks
	PreserveFds int                    `json:"preserve_fds,omitempty"`
}

// InitMain is the hidden `minidock init` role: the first process inside
// the container's new namespaces. It never returns: it ends in execve(2) of
// the container's process, or exits 1 after telling the parent what failed.
func InitMain(args []string) {
	// setns(2) acts on the calling thread: keep this goroutine on one thread,
	// the one that will call execve.
	goruntime.LockOSThread()
	if os.Getenv("_MINIDOCK_TRACE") == "1" {
		trace.Enable(os.NewFile(fdTrace, "trace"), "init")
	}
	trace.Step("init-start", "Go runtime up in the new namespaces", nil)
	var cfg initConfig
	err := json.NewDecoder(os.NewFile(fdConfig, "config")).Decode(&cfg)
	if trace.Step("read-config", "read(fd 4) until EOF", err) != nil {
		failInit("read-config", err)
	}
	unix.Close(fdConfig)
	_, err = expect(fdSync, msgGo)
	if trace.Step("wait-parent", "recvmsg(fd 3) = \"go\"", err) != nil {
		failInit("wait-for-parent", err)
	}
	if cfg.Exec {
		err = execSequence(&cfg)
	} else {
		err = initSequence(&cfg)
	}
	failInit(currentStep, err)
}

// currentStep names the step in progress, for the error sent to the parent.
var currentStep = "start"

func step(name string) { currentStep = name }

// failInit reports a failed step to the parent and exits.
func failInit(stepName string, err error) {
	if err == nil {
		err = errors.New("init returned without exec")
	}
	if sendMsg(fdSync, syncMsg{Type: msgError, Step: stepName, Message: err.Error()}, -1) != nil {
		fmt.Fprintf(os.Stderr, "minidock init: %s: %v\n", stepName, err)
	}
	os.Exit(1)
}

// initSequence builds the container around this process, in order, then
// waits for `start` and execs the container's process.
func initSequence(cfg *initConfig) error {
	spec := cfg.Spec
	nss := spec.Linux.Namespaces
	step("join-namespaces")
	if err := joinNamespaces(cfg.Join); err != nil {
		return err
	}
	if ns.Has(nss, specs.CgroupNamespace) && ns.Path(nss, specs.CgroupNamespace) == "" {
		step("unshare-cgroupns")
		// Done now, after the parent put us into our cgroup: that cgroup
		// becomes the root of the new cgroup namespace.
		err := unix.Unshare(unix.CLONE_NEWCGROUP)
		if trace.Step("unshare-cgroupns", "unshare(CLONE_NEWCGROUP)", err) != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if ns.Has(nss, specs.NetworkNamespace) && ns.Path(nss, specs.NetworkNamespace) == "" {
		step("loopback")
		if err := ns.LoopbackUp(); err != nil {
			return err
		}
	}
	inUserNS := ns.Has(nss, specs.UserNamespace)
	var master, slave *os.File
	if ns.Has(nss, specs.MountNamespace) {
		root := cfg.Rootfs
		step("rootfs-propagation")
		if err := rootfs.SetRootPropagation(spec.Linux.RootfsPropagation); err != nil {
			return err
		}
		step("bind-rootfs")
		if err := rootfs.MakeParentPrivate(root); err != nil {
			return err
		}
		if err := rootfs.BindRootfs(root); err != nil {
			return err
		}
		step("mounts")
		if err := rootfs.MountAll(root, spec.Mounts, inUserNS); err != nil {
			return err
		}
		step("dev")
		if !rootfs.HasMount(spec.Mounts, "/dev") {
			if err := rootfs.MountDevTmpfs(root); err != nil {
				return err
			}
		}
		if err := rootfs.CreateDevices(root, spec.Linux.Devices, inUserNS); err != nil {
			return err
		}
		if err := rootfs.DevSymlinks(root); err != nil {
			return err
		}
		if !rootfs.HasMount(spec.Mounts, "/dev/shm") {
			if err := rootfs.MountShm(root); err != nil {
				return err
			}
		}
		if terminal(cfg) {
			step("console")
			var err error
			if master, slave, err = openPty(filepath.Join(root, "dev/pts/ptmx"), filepath.Join(root, "dev/pts")); err != nil {
				return err
			}
			if err := rootfs.BindConsole(root, slave.Name()); err != nil {
				return err
			}
		}
		step("hooks")
		if err := runHooksFromInit(spec, cfg.State); err != nil {
			return err
		}
		step("pivot-root")
		if cfg.NoPivot {
			if err := rootfs.MoveRoot(root); err != nil {
				return err
			}
		} else if err := rootfs.PivotRoot(root); err != nil {
			return err
		}
		// sysctls first: /proc/sys becomes read-only just after
		step("sysctl")
		if err := rootfs.WriteSysctls(spec.Linux.Sysctl); err != nil {
			return err
		}
		step("readonly-paths")
		if err := rootfs.ReadonlyPaths(spec.Linux.ReadonlyPaths); err != nil {
			return err
		}
		step("masked-paths")
		if err := rootfs.MaskPaths(spec.Linux.MaskedPaths); err != nil {
			return err
		}
		if spec.Root.Readonly {
			step("readonly-root")
			if err := rootfs.ReadonlyRoot(); err != nil {
				return err
			}
		}
	} else {
		step("hooks")
		if err := runHooksFromInit(spec, cfg.State); err != nil {
			return err
		}
		if terminal(cfg) {
			step("console")
			var err error
			if master, slave, err = openPty("/dev/ptmx", "/dev/pts"); err != nil {
				return err
			}
		}
	}
	if ns.Has(nss, specs.UTSNamespace) {
		step("hostname")
		if spec.Hostname != "" {
			if err := ns.SetHostname(spec.Hostname); err != nil {
				return err
			}
		}
		if spec.Domainname != "" {
			if err := ns.SetDomainname(spec.Domainname); err != nil {
				return err
			}
		}
	}
	return finishProcess(cfg, master, slave, true)
}

// execSequence enters a running container's namespaces for `runtime exec`.
func execSequence(cfg *initConfig) error {
	step("join-namespaces")
	if err := joinNamespaces(cfg.Join); err != nil {
		return err
	}
	var master, slave *os.File
	if cfg.Process.Terminal {
		step("console")
		var err error
		if master, slave, err = openPty("/dev/ptmx", "/dev/pts"); err != nil {
			return err
		}
	}
	return finishProcess(cfg, master, slave, false)
}

// joinNamespaces enters each namespace with setns(2). The files are all
// opened first: once the mount namespace is entered, /proc/<pid>/ns paths
// would be looked up in the container's /proc. The mount namespace needs a
// private fs_struct (root, cwd), which Go's threads share: unshare(CLONE_FS)
// gives this thread its own first.
func joinNamespaces(list []specs.LinuxNamespace) error {
	if len(list) == 0 {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	type open struct {
		t  specs.LinuxNamespaceType
		fd int
		p  string
	}
	var fds []open
	defer func() {
		for _, o := range fds {
			unix.Close(o.fd)
		}
	}()
	for _, n := range list {
		fd, err := unix.Open(n.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace %s: %w", n.Type, n.Path, err)
		}
		fds = append(fds, open{n.Type, fd, n.Path})
	}
	for _, o := range fds {
		err := unix.Setns(o.fd, int(ns.Flags[o.t]))
		trace.Step("join-"+string(o.t), fmt.Sprintf("setns(%q, %s)", o.p, ns.FlagName(ns.Flags[o.t])), err)
		if err != nil {
			return fmt.Errorf("setns %s namespace %s: %w", o.t, o.p, err)
		}
	}
	return nil
}

// finishProcess turns this process into the container's process: terminal,
// rlimits, working directory, capabilities and user; then, for a new
// container, it reports ready and waits for start; then execve(2).
func finishProcess(cfg *initConfig, master, slave *os.File, waitStart bool) error {
	p := cfg.Process
	if p == nil {
		return noProcess()
	}
	if master != nil {
		step("console")
		if err := sendMsg(fdSync, syncMsg{Type: msgPty}, int(master.Fd())); err != nil {
			return err
		}
		master.Close()
		if err := useTerminal(slave); err != nil {
			return err
		}
	}
	step("rlimits")
	if err := SetRlimits(p.Rlimits); err != nil {
		return err
	}
	if p.OOMScoreAdj != nil {
		step("oom-score-adj")
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("oom_score_adj: %w", err)
		}
	}
	step("cwd")
	if p.Cwd != "" {
		err := unix.Chdir(p.Cwd)
		if trace.Step("cwd", fmt.Sprintf("chdir(%q)", p.Cwd), err) != nil {
			return fmt.Errorf("chdir to cwd %q set in config.json: %w", p.Cwd, err)
		}
	}
	if len(p.Args) == 0 {
		return errors.New("process.args is empty")
	}
	var filter *seccomp.Filter
	if cfg.Spec.Linux != nil && cfg.Spec.Linux.Seccomp != nil {
		step("seccomp")
		var err error
		if filter, err = seccomp.Compile(cfg.Spec.Linux.Seccomp); err != nil {
			return err
		}
		if !p.NoNewPrivileges {
			// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN:
			// load it now, while the init still has every capability (as
			// runc does). The steps below then run under the filter.
			if err := loadSeccomp(filter); err != nil {
				return err
			}
			filter = nil
		}
	}
	step("capabilities")
	if err := DropBoundingSet(p.Capabilities); err != nil {
		return err
	}
	step("user")
	if err := SetUser(p.User); err != nil {
		return err
	}
	step("capabilities")
	if err := SetCapabilities(p.Capabilities); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		step("no-new-privs")
		if err := SetNoNewPrivs(); err != nil {
			return err
		}
	}
	if err := sendMsg(fdSync, syncMsg{Type: msgReady}, -1); err != nil {
		return err
	}
	unix.Close(fdSync)
	var report io.Writer = os.Stderr
	if waitStart {
		conn, err := waitForStart(3 + cfg.PreserveFds)
		if err != nil {
			fmt.Fprintf(os.Stderr, "minidock init: wait for start: %v\n", err)
			os.Exit(1)
		}
		report = conn
	}
	// The program is looked up only now, as the OCI spec has it: create
	// does not depend on the process; a missing program fails start.
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		fmt.Fprint(report, err)
		os.Exit(127)
	}
	if filter != nil {
		// Last, so that the filter constrains the container's program and
		// not the init's own set-up.
		if err := loadSeccomp(filter); err != nil {
			fmt.Fprint(report, err)
			os.Exit(1)
		}
	}
	trace.Step("execve", fmt.Sprintf("execve(%q, %q)", path, p.Args), nil)
	if err := prepareFds(cfg.PreserveFds); err != nil {
		fmt.Fprintf(report, "prepare fds: %v", err)
		os.Exit(1)
	}
	err = unix.Exec(path, p.Args, p.Env)
	// Only reached when execve failed: tell whoever started us.
	fmt.Fprintf(report, "exec %s: %v", p.Args[0], err)
	os.Exit(127)
	return nil
}

// loadSeccomp installs the filter with seccomp(2) (SECCOMP_FILTER_FLAG_TSYNC:
// on every thread of this Go process; see docs/seccomp.md).
func loadSeccomp(f *seccomp.Filter) error {
	err := f.Load()
	trace.Step("seccomp", "seccomp(SECCOMP_SET_MODE_FILTER, TSYNC, bpf)", err)
	return err
}

func terminal(cfg *initConfig) bool { return cfg.Process != nil && cfg.Process.Terminal }

// noProcess is the end of a container made from a config without process:
// ready, then every start fails.
func noProcess() error {
	if err := sendMsg(fdSync, syncMsg{Type: msgReady}, -1); err != nil {
		return err
	}
	unix.Close(fdSync)
	conn, err := waitForStart(3)
	if err == nil {
		fmt.Fprint(conn, "config.json has no process to start")
	}
	os.Exit(1)
	return nil
}

// waitForStart blocks in accept(2) on the start socket until `runtime
// start` connects. The connection stays open (close-on-exec) so that start
// learns whether execve worked: EOF means it did.
func waitForStart(minFd int) (*os.File, error) {
	trace.Step("wait-start", "accept(start.sock): waiting for `runtime start`", nil)
	for {
		nfd, _, err := unix.Accept4(fdStart, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		unix.Close(fdStart)
		// Move the connection out of the way of the fds kept for the process.
		high, err := unix.FcntlInt(uintptr(nfd), unix.F_DUPFD_CLOEXEC, minFd)
		if err != nil {
			return nil, err
		}
		unix.Close(nfd)
		return os.NewFile(uintptr(high), "start"), nil
	}
}

// prepareFds leaves the container's process exactly stdio plus the
// preserved fds: those passed with --preserve-fds come after ours and are
// moved down to 3, 4, ...; every other fd is marked close-on-exec.
func prepareFds(preserve int) error {
	first := fdTrace + 1
	for i := 0; i < preserve; i++ {
		if err := unix.Dup3(first+i, 3+i, 0); err != nil {
			return fmt.Errorf("dup preserved fd %d: %w", 3+i, err)
		}
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		// no /proc in the container: fall back to a fixed range
		for fd := 3 + preserve; fd < 1024; fd++ {
			unix.CloseOnExec(fd)
		}
		return nil
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && fd >= 3+preserve {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// isTrue reads env-style booleans.
func isTrue(s string) bool { return s == "1" || strings.EqualFold(s, "true") }
