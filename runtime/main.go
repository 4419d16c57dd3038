// Package runtime is minidock's OCI runtime: it turns a bundle (a rootfs
// and a config.json) into a running container, with runc's command line so
// that anything that drives runc can drive it.
//
// The parent side (create, start, kill, delete, exec...) is in
// container.go and exec.go; the init side, which runs inside the new
// namespaces, in init.go. docs/runtime.md walks through both.
package runtime

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/internal/trace"
)

// Version is printed by `minidock runtime --version`.
const Version = "0.1.0"

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/minidock/runtime"

type globals struct {
	root      string
	logFile   string
	logFormat string
	debug     bool
}

var g globals

// Main runs `minidock runtime ARGS...` and returns the exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("minidock runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", DefaultRoot, "directory for container state")
	fs.StringVar(&g.logFile, "log", "", "log file (errors are also printed on stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "write the trace of every step to the --log file (or stderr)")
	traceOn := fs.Bool("trace", false, "print every set-up step (also MINIDOCK_TRACE=1)")
	systemd := fs.Bool("systemd-cgroup", false, "use systemd for cgroups (not supported)")
	fs.String("rootless", "auto", "ignored: minidock runs as root")
	fs.String("criu", "", "ignored: no checkpoint/restore")
	version := fs.Bool("version", false, "print the version")
	fs.BoolVar(version, "v", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(os.Stdout)
			return 0
		}
		return fail(err)
	}
	if *version {
		fmt.Printf("minidock runtime version %s\nspec: %s\n", Version, specs.Version)
		return 0
	}
	if *traceOn || isTrue(os.Getenv("MINIDOCK_TRACE")) {
		trace.Enable(os.Stderr, "runtime")
	} else if g.debug {
		// --debug, as callers of runc pass it: the same trace, into a text
		// log (a JSON log stays JSON lines, for callers that parse it)
		out := os.Stderr
		if g.logFile != "" && g.logFormat != "json" {
			if f, err := os.OpenFile(g.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
				out = f
			}
		}
		trace.Enable(out, "runtime")
	}
	if *systemd {
		return fail(errors.New("--systemd-cgroup: the systemd cgroup driver is not supported; minidock writes cgroup files itself"))
	}
	if fs.NArg() == 0 {
		usage(os.Stderr)
		return 1
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	h, ok := commands[cmd]
	if !ok {
		return fail(fmt.Errorf("unknown command %q (see minidock runtime --help)", cmd))
	}
	code, err := h.run(rest)
	if err != nil {
		return fail(err)
	}
	return code
}

type command struct {
	usage string
	run   func(args []string) (int, error)
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"spec":     {"spec [--bundle DIR] [--rootless]: write a default config.json", cmdSpec},
		"create":   {"create [--bundle DIR] [--pid-file F] [--console-socket SOCK] [--no-pivot] [--preserve-fds N] ID", cmdCreate},
		"start":    {"start ID: let a created container run its process", cmdStart},
		"run":      {"run [--bundle DIR] [--detach] [--pid-file F] [--console-socket SOCK] ID: create, start, wait", cmdRun},
		"state":    {"state ID: print the container's state as JSON", cmdState},
		"kill":     {"kill [--all] ID [SIGNAL]: signal the container (default SIGTERM)", cmdKill},
		"delete":   {"delete [--force] ID: remove a stopped container", cmdDelete},
		"list":     {"list [--format table|json] [-q]: list containers", cmdList},
		"ps":       {"ps [--format table|json] ID: list the container's processes", cmdPs},
		"exec":     {"exec [--tty] [--process FILE] [--detach] [--pid-file F] [--console-socket SOCK] [--cwd D] [--env K=V] [--user U[:G]] ID [CMD...]", cmdExec},
		"features": {"features: print what this runtime supports, as JSON", cmdFeatures},
		"pause":    {"pause ID: freeze every process of the container", cmdPause},
		"resume":   {"resume ID: thaw a paused container", cmdResume},
		"update":   {"update [--resources FILE|-] [--memory N] [--cpu-quota N] [--cpu-period N] [--cpu-shares N] [--pids-limit N] ID", cmdUpdate},
		"events":   {"events [--stats] [--interval D] ID: print cgroup stats as JSON", cmdEvents},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: minidock runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--trace] COMMAND [ARGS]")
	fmt.Fprintln(w, "\nAn OCI runtime with runc's command line. Commands:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, name := range []string{"spec", "create", "start", "run", "state", "kill", "delete", "list", "ps", "exec", "pause", "resume", "update", "events", "features"} {
		fmt.Fprintf(tw, "  %s\t%s\n", name, commands[name].usage)
	}
	tw.Flush()
}

// fail reports err on stderr and, with --log, in the log file (JSON lines
// {"level","msg","time"} with --log-format json, as callers of runc read it).
func fail(err error) int {
	fmt.Fprintf(os.Stderr, "minidock runtime: %v\n", err)
	logLine("error", err.Error())
	return 1
}

func logLine(level, msg string) {
	if g.logFile == "" {
		return
	}
	f, err := os.OpenFile(g.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	if g.logFormat == "json" {
		json.NewEncoder(f).Encode(map[string]string{"level": level, "msg": msg, "time": time.Now().UTC().Format(time.RFC3339Nano)})
	} else {
		fmt.Fprintf(f, "time=%q level=%s msg=%q\n", time.Now().UTC().Format(time.RFC3339Nano), level, msg)
	}
}

// newFlags makes a subcommand's flag set; errors come back to Main.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func parse(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("usage: minidock runtime %s", commands[fs.Name()].usage)
		}
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if nargs >= 0 && fs.NArg() != nargs {
		if fs.NArg() == 0 && nargs > 0 {
			return fmt.Errorf("%s: container id missing (usage: minidock runtime %s)", fs.Name(), commands[fs.Name()].usage)
		}
		return fmt.Errorf("%s: want %d argument(s), got %d (usage: minidock runtime %s)", fs.Name(), nargs, fs.NArg(), commands[fs.Name()].usage)
	}
	return nil
}

func createFlags(fs *flag.FlagSet, o *createOpts) {
	fs.StringVar(&o.Bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&o.Bundle, "b", ".", "bundle directory")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the init's pid here")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket to send the pty master to")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "use MS_MOVE + chroot instead of pivot_root")
	fs.IntVar(&o.PreserveFds, "preserve-fds", 0, "pass this many extra fds (from 3) to the process")
	fs.Bool("no-new-keyring", false, "ignored: no session keyring is made")
}

func cmdCreate(args []string) (int, error) {
	var o createOpts
	fs := newFlags("create")
	createFlags(fs, &o)
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	_, _, master, err := create(g.root, fs.Arg(0), o)
	if master != nil {
		master.Close()
	}
	return 0, err
}

func cmdStart(args []string) (int, error) {
	fs := newFlags("start")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	c, err := load(g.root, fs.Arg(0))
	if err != nil {
		return 1, err
	}
	return 0, c.start()
}

func cmdRun(args []string) (int, error) {
	var o createOpts
	fs := newFlags("run")
	createFlags(fs, &o)
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "do not wait for the process")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	return run(g.root, fs.Arg(0), o, *detach)
}

func cmdState(args []string) (int, error) {
	fs := newFlags("state")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	c, err := load(g.root, fs.Arg(0))
	if err != nil {
		return 1, err
	}
	return 0, printJSON(c.state())
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdKill(args []string) (int, error) {
	fs := newFlags("kill")
	all := fs.Bool("all", false, "signal every process of the container")
	fs.BoolVar(all, "a", false, "signal every process of the container")
	if err := parse(fs, args, -1); err != nil {
		return 1, err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return 1, fmt.Errorf("kill: usage: minidock runtime %s", commands["kill"].usage)
	}
	sigName := "SIGTERM"
	if fs.NArg() == 2 {
		sigName = fs.Arg(1)
	}
	sig, err := parseSignal(sigName)
	if err != nil {
		return 1, err
	}
	c, err := load(g.root, fs.Arg(0))
	if err != nil {
		return 1, err
	}
	return 0, c.signal(sig, *all)
}

func cmdDelete(args []string) (int, error) {
	fs := newFlags("delete")
	force := fs.Bool("force", false, "kill the container first if it runs")
	fs.BoolVar(force, "f", false, "kill the container first if it runs")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	c, err := load(g.root, fs.Arg(0))
	if errors.Is(err, errNotExist) && *force {
		return 0, nil // as runc: deleting what is gone is fine with --force
	}
	if err != nil {
		return 1, err
	}
	return 0, c.delete(*force)
}

func cmdList(args []string) (int, error) {
	fs := newFlags("list")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	quiet := fs.Bool("quiet", false, "ids only")
	fs.BoolVar(quiet, "q", false, "ids only")
	if err := parse(fs, args, 0); err != nil {
		return 1, err
	}
	entries, err := os.ReadDir(g.root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 1, err
	}
	var states []StateJSON
	for _, e := range entries {
		if c, err := load(g.root, e.Name()); err == nil {
			states = append(states, c.state())
		}
	}
	switch {
	case *quiet:
		for _, s := range states {
			fmt.Println(s.ID)
		}
	case *format == "json":
		if states == nil {
			states = []StateJSON{}
		}
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

func cmdPs(args []string) (int, error) {
	fs := newFlags("ps")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	if err := parse(fs, args, -1); err != nil {
		return 1, err
	}
	if fs.NArg() < 1 {
		return 1, errors.New("ps: container id missing")
	}
	c, err := load(g.root, fs.Arg(0))
	if err != nil {
		return 1, err
	}
	pids, err := c.pids()
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

func cmdSpec(args []string) (int, error) {
	fs := newFlags("spec")
	bundle := fs.String("bundle", ".", "where to write config.json")
	fs.StringVar(bundle, "b", ".", "where to write config.json")
	rootless := fs.Bool("rootless", false, "a config for a user namespace mapping uid 0 to the caller")
	if err := parse(fs, args, 0); err != nil {
		return 1, err
	}
	p := filepath.Join(*bundle, "config.json")
	if _, err := os.Stat(p); err == nil {
		return 1, fmt.Errorf("file %s exists. Remove it first", p)
	}
	spec := DefaultSpec()
	if *rootless {
		MakeRootless(spec, os.Getuid(), os.Getgid())
	}
	data, _ := json.MarshalIndent(spec, "", "\t")
	return 0, os.WriteFile(p, append(data, '\n'), 0o644)
}
