// Package runtime is minidock's OCI runtime: it turns a bundle (a rootfs
// and a config.json) into a running container, with runc's command line so
// that anything that drives runc can drive it, and as a library (Create,
// Load, Exec and the Container methods) for a caller that drives it in
// process, such as minidock's shim.
//
// The parent's steps, in order, are in create.go (Create: loadBundle,
// createCgroup beside checkBundle, startInit, saveState, serveInit) and
// container.go (Start, Signal, Delete); exec.go has Exec. The init's steps,
// which run inside the new namespaces, are in init.go (InitMain:
// readConfig, setupNamespaces, prepareRootfs, enterRootfs, finalizeRootfs,
// finishProcess, waitForStart, execProcess), each making its kernel calls
// through the seam of package kernel. The command line, a thin layer over
// the library, is cli.go. docs/runtime.md walks through them in this order.
package runtime

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/signals"
	"minidock/internal/trace"
	"minidock/kernel"
)

// Version is printed by `minidock runtime --version`.
const Version = "0.1.0"

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/minidock/runtime"

// cli holds the global flags of one `minidock runtime` command.
type cli struct {
	root          string
	logFile       string
	logFormat     string
	systemdCgroup bool     // --systemd-cgroup: see systemdCgroup
	step          bool     // --step: pause before each kernel call (run and create; step.go)
	trace         *os.File // --trace, MINIDOCK_TRACE=1 or --debug: where trace lines go
}

// command is one subcommand of `minidock runtime`.
type command struct {
	name  string
	usage string
	run   func(c *cli, args []string) (int, error)
}

// commands lists the subcommands in the order --help shows them. (A
// function, not a variable: the commands' own code looks their usage up
// here, which a package-level variable could not allow.)
func commands() []command {
	return []command{
		{"spec", "spec [--bundle DIR] [--rootless]: write a default config.json", (*cli).spec},
		{"create", "create [--bundle DIR] [--pid-file F] [--console-socket SOCK] [--no-pivot] [--preserve-fds N] ID", (*cli).create},
		{"start", "start ID: let a created container run its process", (*cli).start},
		{"run", "run [--bundle DIR] [--detach] [--pid-file F] [--console-socket SOCK] ID: create, start, wait", (*cli).run},
		{"state", "state ID: print the container's state as JSON", (*cli).state},
		{"kill", "kill [--all] ID [SIGNAL]: signal the container (default SIGTERM)", (*cli).kill},
		{"delete", "delete [--force] ID: remove a stopped container", (*cli).delete},
		{"list", "list [--format table|json] [-q]: list containers", (*cli).list},
		{"ps", "ps [--format table|json] ID: list the container's processes", (*cli).ps},
		{"exec", "exec [--tty] [--process FILE] [--detach] [--pid-file F] [--console-socket SOCK] [--cwd D] [--env K=V] [--user U[:G]] ID [CMD...]", (*cli).exec},
		{"pause", "pause ID: freeze every process of the container", (*cli).pause},
		{"resume", "resume ID: thaw a paused container", (*cli).resume},
		{"update", "update [--resources FILE|-] [--memory N] [--cpu-quota N] [--cpu-period N] [--cpu-shares N] [--pids-limit N] ID", (*cli).update},
		{"events", "events [--stats] [--interval D] ID: print cgroup stats as JSON", (*cli).events},
		{"features", "features: print what this runtime supports, as JSON", (*cli).features},
		{"checkpoint", "checkpoint ID: not supported (no CRIU)", (*cli).checkpoint},
		{"restore", "restore ID: not supported (no CRIU)", (*cli).restore},
	}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

// Main runs `minidock runtime ARGS...` and returns the exit code.
func Main(args []string) int {
	c := &cli{}
	fs := flag.NewFlagSet("minidock runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.root, "root", DefaultRoot, "directory for container state")
	fs.StringVar(&c.logFile, "log", "", "log file (errors are also printed on stderr)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	debug := fs.Bool("debug", false, "write the trace of every step to the --log file (or stderr)")
	traceOn := fs.Bool("trace", false, "print every set-up step (also MINIDOCK_TRACE=1)")
	fs.BoolVar(&c.step, "step", false, "run and create: pause before each kernel call, asking on the terminal (docs/step.md)")
	fs.BoolVar(&c.systemdCgroup, "systemd-cgroup", false, "use systemd for cgroups: refused at create unless systemd runs (and then unsupported)")
	fs.String("rootless", "auto", "ignored: rootless mode follows the caller's uid (runtime/rootless.go)")
	fs.String("criu", "", "ignored: no checkpoint/restore")
	version := fs.Bool("version", false, "print the version")
	fs.BoolVar(version, "v", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(os.Stdout)
			return 0
		}
		return c.fail(err)
	}
	if c.root == DefaultRoot && rootless() {
		c.root = defaultRootlessRoot() // root's /run is not the caller's
	}
	if *version {
		// runc's lines, which dockerd and go-runc parse: NAME version X,
		// commit: Y, spec: Z
		fmt.Printf("minidock version %s\ncommit: %s\nspec: %s\ngo: %s\n", Version, commit(), specs.Version, goruntime.Version())
		return 0
	}
	if *traceOn || isTrue(os.Getenv("MINIDOCK_TRACE")) {
		c.trace = os.Stderr
	} else if *debug {
		// --debug, as callers of runc pass it: the same trace, into a text
		// log (a JSON log stays JSON lines, for callers that parse it)
		c.trace = os.Stderr
		if c.logFile != "" && c.logFormat != "json" {
			if f, err := os.OpenFile(c.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
				c.trace = f
			}
		}
	}
	if fs.NArg() == 0 {
		usage(os.Stderr)
		return 1
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	cmd := lookup(name)
	if cmd == nil {
		return c.fail(fmt.Errorf("unknown command %q (see minidock runtime --help)", name))
	}
	if c.step && name != "run" && name != "create" {
		return c.fail(fmt.Errorf("--step applies to run and create, not %s", name))
	}
	code, err := cmd.run(c, rest)
	if err != nil {
		return c.fail(err)
	}
	return code
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: minidock runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--trace] [--step] COMMAND [ARGS]")
	fmt.Fprintln(w, "\nAn OCI runtime with runc's command line. Commands:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, cmd := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", cmd.name, cmd.usage)
	}
	tw.Flush()
}

// fail reports err on stderr and, with --log, in the log file (JSON lines
// {"level","msg","time"} with --log-format json, as callers of runc read it:
// containerd's shim shows the msg of the last "error" line).
func (c *cli) fail(err error) int {
	fmt.Fprintf(os.Stderr, "minidock runtime: %v\n", err)
	c.logLine("error", err.Error())
	return 1
}

// warn reports what runc warns about and goes on past (CreateOptions.Warn):
// into the --log file, as a "warning" line, else on stderr. Not on stderr
// when there is a log: a created container's init shares the runtime's
// stderr, which the caller keeps as the container's output.
func (c *cli) warn(msg string) {
	if c.logFile != "" {
		c.logLine("warning", msg)
		return
	}
	fmt.Fprintf(os.Stderr, "minidock runtime: warning: %s\n", msg)
}

func (c *cli) logLine(level, msg string) {
	if c.logFile == "" {
		return
	}
	f, err := os.OpenFile(c.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	if c.logFormat == "json" {
		json.NewEncoder(f).Encode(map[string]string{"level": level, "msg": msg, "time": time.Now().UTC().Format(time.RFC3339)})
	} else {
		fmt.Fprintf(f, "time=%q level=%s msg=%q\n", time.Now().UTC().Format(time.RFC3339), level, msg)
	}
}

// load is Load with the command line's root and trace.
func (c *cli) load(id string) (*Container, error) {
	ct, err := Load(c.root, id)
	if err != nil {
		return nil, err
	}
	ct.SetTrace(trace.New(c.trace, "runtime"))
	ct.SetWarn(c.warn)
	return ct, nil
}

// newFlags makes a subcommand's flag set; errors come back to Main.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func parse(fs *flag.FlagSet, args []string, nargs int) error {
	usage := lookup(fs.Name()).usage
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("usage: minidock runtime %s", usage)
		}
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if nargs >= 0 && fs.NArg() != nargs {
		if fs.NArg() == 0 && nargs > 0 {
			return fmt.Errorf("%s: container id missing (usage: minidock runtime %s)", fs.Name(), usage)
		}
		return fmt.Errorf("%s: want %d argument(s), got %d (usage: minidock runtime %s)", fs.Name(), nargs, fs.NArg(), usage)
	}
	return nil
}

// createFlags are the flags create and run share; preserve is
// --preserve-fds, turned into ExtraFiles by createOptions.
func (c *cli) createFlags(fs *flag.FlagSet, o *CreateOptions, preserve *int) {
	fs.StringVar(&o.Bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&o.Bundle, "b", ".", "bundle directory")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the init's pid here")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket to send the pty master to")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "use MS_MOVE + chroot instead of pivot_root")
	fs.IntVar(preserve, "preserve-fds", 0, "pass this many extra fds (from 3) to the process")
	fs.Bool("no-new-keyring", false, "ignored: no session keyring is made")
}

// createOptions fills in what the global flags and the runtime's own
// process give create and run. done closes the step terminal, if any.
func (c *cli) createOptions(o *CreateOptions, preserve int) (done func(), err error) {
	o.Stdio, o.ExtraFiles = c.stdio(preserve)
	o.Trace, o.Warn, o.SystemdCgroup = trace.New(c.trace, "runtime"), c.warn, c.systemdCgroup
	done = func() {}
	if c.step {
		tty, end, err := stepTerminal()
		if err != nil {
			return nil, err
		}
		o.Step, done = tty, end
	}
	if isTrue(os.Getenv("MINIDOCK_DEBUG_INIT")) {
		o.DebugInit = os.Stderr
		if o.Step != nil {
			o.DebugInit = o.Step
		}
	}
	return done, nil
}

// stepTerminal opens the controlling terminal for --step: the prompts go
// there, not to the container's stdio (a pipe, a file, or the terminal
// the container's own pty is attached to once it runs). Ctrl-C while
// stepping is q: the terminal is closed, the prompt's read ends, and the
// container is undone (at start: its init exits). done closes it.
func stepTerminal() (tty *os.File, done func(), err error) {
	tty, err = os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, fmt.Errorf("--step asks before each step on the controlling terminal, and this process has none (open /dev/tty: %w): run it from an interactive shell, or leave --step out", err)
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	stop := make(chan struct{})
	go func() {
		select {
		case <-interrupt:
			tty.Close()
		case <-stop:
		}
	}()
	return tty, func() {
		signal.Stop(interrupt)
		close(stop)
		tty.Close()
	}, nil
}

// stdio is what the command line gives a container's process: the
// runtime's own stdio and, with --preserve-fds N, its fds 3 to 3+N-1.
func (c *cli) stdio(preserve int) ([3]*os.File, []*os.File) {
	var extra []*os.File
	for i := 0; i < preserve; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), fmt.Sprintf("preserved-%d", i)))
	}
	return [3]*os.File{os.Stdin, os.Stdout, os.Stderr}, extra
}

func (c *cli) create(args []string) (int, error) {
	var o CreateOptions
	var preserve int
	fs := newFlags("create")
	c.createFlags(fs, &o, &preserve)
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	if err := c.checkTerminal(o.Bundle, o.ConsoleSocket); err != nil {
		return 1, err
	}
	done, err := c.createOptions(&o, preserve)
	if err != nil {
		return 1, err
	}
	ct, err := Create(c.root, fs.Arg(0), o)
	done()
	if err != nil {
		return 1, err
	}
	if m := ct.Console(); m != nil {
		m.Close()
	}
	return 0, nil
}

// checkTerminal refuses, as runc does, a detached container with a
// terminal and nowhere to send it.
func (c *cli) checkTerminal(bundle, consoleSocket string) error {
	if consoleSocket == "" && specTerminal(bundle) {
		return errors.New("cannot allocate a tty without a console socket (--console-socket) when detached")
	}
	return nil
}

// checkStdinTerminal refuses, as runc does ("provided file is not a
// console"), a foreground run of a spec with "terminal": true from a stdin
// that is not a terminal (a script, a pipe, CI): the container's
// interactive shell would wait on a pty that nobody types into.
func (c *cli) checkStdinTerminal(bundle, consoleSocket string) error {
	if consoleSocket != "" || !specTerminal(bundle) {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err != nil {
		return fmt.Errorf("%s has \"terminal\": true but stdin is not a terminal: run it from one, or set \"terminal\": false in config.json (and give process.args a command)", filepath.Join(bundle, "config.json"))
	}
	return nil
}

// specTerminal reads process.terminal from the bundle's config.json;
// a config that cannot be read is Create's to report.
func specTerminal(bundle string) bool {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var s struct {
		Process *struct {
			Terminal bool `json:"terminal"`
		} `json:"process"`
	}
	return json.Unmarshal(data, &s) == nil && s.Process != nil && s.Process.Terminal
}

func (c *cli) start(args []string) (int, error) {
	fs := newFlags("start")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	ct, err := c.load(fs.Arg(0))
	if err != nil {
		return 1, err
	}
	if ct.Step {
		// made by `runtime --step create`: its init asks on, up to execve
		tty, done, err := stepTerminal()
		if err != nil {
			return 1, fmt.Errorf("start %s, made with --step: %w", ct.ID, err)
		}
		defer done()
		ct.SetStep(tty)
	}
	return 0, ct.Start()
}

// run is create + start + wait, as `runc run`: the exit code of the
// container's process (128+signal when killed) is returned; the container
// is deleted afterwards unless detached.
func (c *cli) run(args []string) (int, error) {
	var o CreateOptions
	var preserve int
	fs := newFlags("run")
	c.createFlags(fs, &o, &preserve)
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "do not wait for the process")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	check := c.checkStdinTerminal
	if *detach {
		check = c.checkTerminal
	}
	if err := check(o.Bundle, o.ConsoleSocket); err != nil {
		return 1, err
	}
	done, err := c.createOptions(&o, preserve)
	if err != nil {
		return 1, err
	}
	o.StartNow = true
	ct, err := Create(c.root, fs.Arg(0), o)
	done()
	if err != nil {
		return 1, err
	}
	master := ct.Console()
	if *detach {
		if master != nil {
			master.Close()
		}
		return 0, nil
	}
	code := foreground(ct.Pid, master)
	kernel.NewLinux(trace.New(c.trace, "runtime")).Begin("wait").Note("wait4", fmt.Sprintf("%d, exit code %d", ct.Pid, code), nil)
	if err := ct.Delete(true); err != nil {
		fmt.Fprintf(os.Stderr, "delete %s: %v\n", ct.ID, err)
	}
	return code, nil
}

func (c *cli) state(args []string) (int, error) {
	fs := newFlags("state")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	ct, err := c.load(fs.Arg(0))
	if err != nil {
		return 1, err
	}
	return 0, printJSON(ct.State())
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) kill(args []string) (int, error) {
	fs := newFlags("kill")
	all := fs.Bool("all", false, "signal every process of the container")
	fs.BoolVar(all, "a", false, "signal every process of the container")
	if err := parse(fs, args, -1); err != nil {
		return 1, err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return 1, fmt.Errorf("kill: usage: minidock runtime %s", lookup("kill").usage)
	}
	sigName := "SIGTERM"
	if fs.NArg() == 2 {
		sigName = fs.Arg(1)
	}
	sig, err := signals.Parse(sigName)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(fs.Arg(0))
	if err != nil {
		return 1, err
	}
	return 0, ct.Signal(sig, *all)
}

func (c *cli) delete(args []string) (int, error) {
	fs := newFlags("delete")
	force := fs.Bool("force", false, "kill the container first if it runs")
	fs.BoolVar(force, "f", false, "kill the container first if it runs")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	ct, err := c.load(fs.Arg(0))
	if errors.Is(err, ErrNotExist) && *force {
		return 0, nil // as runc: deleting what is gone is fine with --force
	}
	if err != nil {
		return 1, err
	}
	return 0, ct.Delete(*force)
}

func (c *cli) list(args []string) (int, error) {
	fs := newFlags("list")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	quiet := fs.Bool("quiet", false, "ids only")
	fs.BoolVar(quiet, "q", false, "ids only")
	if err := parse(fs, args, 0); err != nil {
		return 1, err
	}
	cts, err := List(c.root)
	if err != nil {
		return 1, err
	}
	states := []StateJSON{}
	for _, ct := range cts {
		states = append(states, ct.State())
	}
	switch {
	case *quiet:
		for _, s := range states {
			fmt.Println(s.ID)
		}
	case *format == "json":
		return 0, json.NewEncoder(os.Stdout).Encode(states)
	case *format == "table":
		tw := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
		for _, s := range states {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), "root")
		}
		tw.Flush()
	default:
		return 1, fmt.Errorf("list: unknown format %q (table or json)", *format)
	}
	return 0, nil
}

func (c *cli) ps(args []string) (int, error) {
	fs := newFlags("ps")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	if err := parse(fs, args, -1); err != nil {
		return 1, err
	}
	if fs.NArg() < 1 {
		return 1, errors.New("ps: container id missing")
	}
	ct, err := c.load(fs.Arg(0))
	if err != nil {
		return 1, err
	}
	pids, err := ct.Pids()
	if err != nil {
		return 1, err
	}
	if *format == "json" {
		if pids == nil {
			pids = []int{}
		}
		return 0, json.NewEncoder(os.Stdout).Encode(pids)
	}
	if *format != "table" {
		return 1, fmt.Errorf("ps: unknown format %q (table or json)", *format)
	}
	tw := tabwriter.NewWriter(os.Stdout, 6, 1, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tCMD")
	for _, p := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		fmt.Fprintf(tw, "%d\t%s\n", p, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return 0, tw.Flush()
}

func (c *cli) spec(args []string) (int, error) {
	fs := newFlags("spec")
	bundle := fs.String("bundle", ".", "where to write config.json")
	fs.StringVar(bundle, "b", ".", "where to write config.json")
	rootless := fs.Bool("rootless", false, "a config for an unprivileged caller: a user namespace mapping uid 0 to it (and its /etc/subuid range from 1 with newuidmap)")
	if err := parse(fs, args, 0); err != nil {
		return 1, err
	}
	p := filepath.Join(*bundle, "config.json")
	if _, err := os.Stat(p); err == nil {
		return 1, fmt.Errorf("file %s exists. Remove it first", p)
	}
	spec := DefaultSpec()
	if *rootless {
		uids, gids := rootlessIDs() // rootless.go
		MakeRootless(spec, uids, gids)
	}
	data, _ := json.MarshalIndent(spec, "", "\t")
	return 0, os.WriteFile(p, append(data, '\n'), 0o644)
}

func (c *cli) features(args []string) (int, error) {
	fs := newFlags("features")
	if err := parse(fs, args, 0); err != nil {
		return 1, err
	}
	return 0, printJSON(Features())
}

// checkpoint and restore are runc's commands for CRIU, which minidock does
// not have: they answer, whatever their flags, with an error the caller
// shows (ctr tasks checkpoint, docker checkpoint create).
func (c *cli) checkpoint(args []string) (int, error) {
	return 1, errors.New("checkpoint: not supported: minidock has no checkpoint/restore (CRIU)")
}

func (c *cli) restore(args []string) (int, error) {
	return 1, errors.New("restore: not supported: minidock has no checkpoint/restore (CRIU)")
}

// commit is the source revision the binary was built from (go build
// stamps it when it builds in a git work tree), or "unknown".
func commit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// stringList is a repeatable string flag (--env A=1 --env B=2).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (c *cli) exec(args []string) (int, error) {
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
	ct, err := c.load(fs.Arg(0))
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
		if ct.Config.Process != nil {
			p = *ct.Config.Process
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
	if p.Terminal && *console == "" && *detach {
		return 1, errors.New("exec: cannot allocate a tty without --console-socket when detached")
	}
	o := ExecOptions{PidFile: *pidFile, ConsoleSocket: *console, Trace: trace.New(c.trace, "runtime"), Warn: c.warn}
	o.Stdio, o.ExtraFiles = c.stdio(*preserve)
	proc, err := Exec(c.root, ct.ID, &p, o)
	if err != nil {
		return 1, err
	}
	if *detach {
		if proc.Console != nil {
			proc.Console.Close()
		}
		return 0, nil
	}
	return foreground(proc.Pid, proc.Console), nil
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

func (c *cli) pause(args []string) (int, error) {
	ct, err := c.loadOnly("pause", args)
	if err != nil {
		return 1, err
	}
	return 0, ct.Pause()
}

func (c *cli) resume(args []string) (int, error) {
	ct, err := c.loadOnly("resume", args)
	if err != nil {
		return 1, err
	}
	return 0, ct.Resume()
}

// loadOnly loads the container named by a command's only argument.
func (c *cli) loadOnly(name string, args []string) (*Container, error) {
	fs := newFlags(name)
	if err := parse(fs, args, 1); err != nil {
		return nil, err
	}
	return c.load(fs.Arg(0))
}

func (c *cli) update(args []string) (int, error) {
	fs := newFlags("update")
	resources := fs.String("resources", "", "file with LinuxResources JSON, - for stdin")
	fs.StringVar(resources, "r", "", "file with LinuxResources JSON, - for stdin")
	memory := fs.Int64("memory", 0, "memory limit in bytes")
	memSwap := fs.Int64("memory-swap", 0, "memory+swap limit in bytes")
	cpuQuota := fs.Int64("cpu-quota", 0, "CPU quota in µs per period")
	cpuPeriod := fs.Uint64("cpu-period", 0, "CPU period in µs")
	cpuShares := fs.Uint64("cpu-shares", 0, "CPU shares (relative weight)")
	cpusetCpus := fs.String("cpuset-cpus", "", "CPUs to run on")
	pidsLimit := fs.Int64("pids-limit", 0, "maximum number of processes")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	ct, err := c.load(fs.Arg(0))
	if err != nil {
		return 1, err
	}
	r := &specs.LinuxResources{}
	if *resources != "" {
		var data []byte
		if *resources == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(*resources)
		}
		if err != nil {
			return 1, fmt.Errorf("update --resources: %w", err)
		}
		if err := json.Unmarshal(data, r); err != nil {
			return 1, fmt.Errorf("update --resources: not LinuxResources JSON: %w", err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["memory"] || set["memory-swap"] {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		if set["memory"] {
			r.Memory.Limit = memory
		}
		if set["memory-swap"] {
			r.Memory.Swap = memSwap
		}
	}
	if set["cpu-quota"] || set["cpu-period"] || set["cpu-shares"] || set["cpuset-cpus"] {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		if set["cpu-quota"] {
			r.CPU.Quota = cpuQuota
		}
		if set["cpu-period"] {
			r.CPU.Period = cpuPeriod
		}
		if set["cpu-shares"] {
			r.CPU.Shares = cpuShares
		}
		if set["cpuset-cpus"] {
			r.CPU.Cpus = *cpusetCpus
		}
	}
	if set["pids-limit"] {
		r.Pids = &specs.LinuxPids{Limit: pidsLimit}
	}
	return 0, ct.Update(r)
}

// event is one line of `events`, runc's shape.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func (c *cli) events(args []string) (int, error) {
	fs := newFlags("events")
	stats := fs.Bool("stats", false, "print one stats event and exit")
	interval := fs.Duration("interval", 5*time.Second, "time between stats events")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	ct, err := c.load(fs.Arg(0))
	if err != nil {
		return 1, err
	}
	enc := json.NewEncoder(os.Stdout)
	lastOOM, _ := ct.OOMKillCount()
	for {
		s, err := ct.Stats()
		if err != nil {
			return 1, err
		}
		if err := enc.Encode(event{Type: "stats", ID: ct.ID, Data: s}); err != nil {
			return 1, err
		}
		if *stats {
			return 0, nil
		}
		time.Sleep(*interval)
		if n, err := ct.OOMKillCount(); err == nil && n > lastOOM {
			lastOOM = n
			enc.Encode(event{Type: "oom", ID: ct.ID})
		}
	}
}

// isTrue reads env-style booleans.
func isTrue(s string) bool { return s == "1" || strings.EqualFold(s, "true") }
