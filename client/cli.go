package client

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"minidock/api"
)

type command struct {
	usage string
	run   func(c *Client, args []string) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"version":   {"version: client and daemon versions", cmdVersion},
		"ps":        {"ps [-a] [-q] [--format TEMPLATE]: list containers", cmdPs},
		"images":    {"images [-q] [--format TEMPLATE]: list images", cmdImages},
		"import":    {"import FILE|- [REPOSITORY[:TAG]]: make an image of a rootfs tarball", cmdImport},
		"load":      {"load [-i FILE]: load images from a docker save archive (stdin by default)", cmdLoad},
		"run":       {"run [OPTIONS] IMAGE [COMMAND...]: create and start a container", cmdRun},
		"create":    {"create [OPTIONS] IMAGE [COMMAND...]: create a container, print its ID", cmdCreate},
		"start":     {"start [-a] [-i] CONTAINER...: start created or stopped containers", cmdStart},
		"restart":   {"restart [-t SECONDS] CONTAINER...: stop, then start", cmdRestart},
		"exec":      {"exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND...: run a command in a running container", cmdExec},
		"logs":      {"logs [-f] [--tail N] [-t] CONTAINER: print a container's output", cmdLogs},
		"stop":      {"stop [-t SECONDS] CONTAINER...: SIGTERM, then SIGKILL", cmdStop},
		"kill":      {"kill [-s SIGNAL] CONTAINER...: send a signal", cmdKill},
		"rm":        {"rm [-f] CONTAINER...: remove containers", cmdRm},
		"inspect":   {"inspect [-f TEMPLATE] [--type container|image] NAME...: details as JSON", cmdInspect},
		"wait":      {"wait CONTAINER...: wait for containers to stop, print their exit codes", cmdWait},
		"pause":     {"pause CONTAINER...: freeze every process of containers", cmdPause},
		"unpause":   {"unpause CONTAINER...: thaw paused containers", cmdUnpause},
		"rename":    {"rename CONTAINER NEW_NAME: rename a container", cmdRename},
		"top":       {"top CONTAINER: list a container's processes", cmdTop},
		"stats":     {"stats [--no-stream] CONTAINER...: CPU, memory and pids use", cmdStats},
		"network":   {"network create|ls|inspect|rm|prune|connect|disconnect: manage networks", cmdNetwork},
		"port":      {"port CONTAINER [PORT[/PROTO]]: list a container's published ports", cmdPort},
		"cp":        {"cp [-L] [-a] CONTAINER:PATH HOSTPATH|-, or cp HOSTPATH|- CONTAINER:PATH: copy files", cmdCp},
		"export":    {"export [-o FILE] CONTAINER: the container's filesystem as a tar", cmdExport},
		"diff":      {"diff CONTAINER: files changed, added (A), deleted (D) over the image", cmdDiff},
		"commit":    {"commit [-m MSG] [-a AUTHOR] [-c INSTRUCTION] CONTAINER [REPOSITORY[:TAG]]: make an image of a container", cmdCommit},
		"history":   {"history [-q] [--no-trunc] IMAGE: an image's layers", cmdHistory},
		"rmi":       {"rmi [-f] IMAGE...: remove images", cmdRmi},
		"image":     {"image inspect|history|rm|prune [-a] [-f]|ls|import|load: manage images", cmdImage},
		"container": {"container prune [-f]|ls|inspect|cp|export|diff|commit|rm: manage containers", cmdContainer},
		"tag":       {"tag SOURCE_IMAGE TARGET_IMAGE[:TAG]: name an image", cmdTag},
		"save":      {"save [-o FILE] IMAGE...: images as a docker-save tar archive", cmdSave},
		"info":      {"info: what the daemon says of itself", cmdInfo},
		"events":    {"events [--since T] [--until T] [-f KEY=VALUE]: stream the daemon's container events", cmdEvents},
	}
}

// Main runs the client: `minidock [-H unix:///path] COMMAND ARGS...`.
func Main(args []string) int {
	fs := flag.NewFlagSet("minidock", flag.ContinueOnError)
	host := os.Getenv("MINIDOCK_HOST")
	if host == "" {
		host = DefaultHost
	}
	fs.StringVar(&host, "H", host, "daemon socket (also MINIDOCK_HOST)")
	fs.StringVar(&host, "host", host, "daemon socket (also MINIDOCK_HOST)")
	fs.Usage = func() { usage(os.Stderr) }
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		usage(os.Stderr)
		return 2
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "minidock: unknown command %q\n", name)
		usage(os.Stderr)
		return 2
	}
	c, err := New(host)
	if err == nil {
		err = cmd.run(c, rest)
	}
	var ex exitError
	switch {
	case errors.As(err, &ex):
		return int(ex)
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		var apiErr *Error
		if errors.As(err, &apiErr) {
			return 1
		}
		return 1
	}
	return 0
}

// exitError carries a container's exit code out of run and wait.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: minidock [-H unix:///path] COMMAND ARGS...\n\nroles: daemon, runtime (OCI runtime); client commands:")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %s\n", commands[n].usage)
	}
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("minidock "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: minidock %s\n", commands[name].usage)
		fs.PrintDefaults()
	}
	return fs
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdVersion(c *Client, args []string) error {
	var v api.VersionResponse
	if err := c.JSON(context.Background(), "GET", "/version", nil, nil, &v); err != nil {
		return err
	}
	fmt.Printf("Client:\n API version:  %s\nServer: %s\n Engine version: %s\n API version:  %s (minimum version %s)\n Go version:   %s\n OS/Arch:      %s/%s\n Kernel:       %s\n",
		api.Version, v.Platform.Name, v.Version, v.APIVersion, v.MinAPIVersion, v.GoVersion, v.Os, v.Arch, v.KernelVersion)
	return nil
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func cmdPs(c *Client, args []string) error {
	fs := newFlags("ps")
	all := fs.Bool("a", false, "show all containers, not only running ones")
	quiet := fs.Bool("q", false, "only IDs")
	format := fs.String("format", "", "Go template per container, \"table ...\" for columns, or json")
	last := fs.Int("n", -1, "show the N last created containers (all states)")
	latest := fs.Bool("l", false, "show the last created container (all states)")
	var filters listFlag
	fs.Var(&filters, "f", "filter KEY=VALUE: id, name, status, label")
	fs.Var(&filters, "filter", "same as -f")
	longNames(fs, "all", "a", "quiet", "q", "last", "n", "latest", "l")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *all {
		q.Set("all", "1")
	}
	if *latest {
		*last = 1
	}
	if *last >= 0 {
		q.Set("limit", strconv.Itoa(*last))
	}
	if len(filters) > 0 {
		q.Set("filters", encodeFilters(filters))
	}
	var list []api.ContainerSummary
	if err := c.JSON(context.Background(), "GET", "/containers/json", q, nil, &list); err != nil {
		return err
	}
	if *quiet {
		for _, s := range list {
			fmt.Println(s.ID[:12])
		}
		return nil
	}
	if *format != "" {
		return printFormatted(os.Stdout, *format, psTable, psItems(list), psHeaders)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, s := range list {
		cmd := s.Command
		if len(cmd) > 20 {
			cmd = cmd[:19] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", s.ID[:12], s.Image, cmd, ago(time.Unix(s.Created, 0)), s.Status, formatPorts(s.Ports), strings.TrimPrefix(strings.Join(s.Names, ","), "/"))
	}
	return tw.Flush()
}

func humanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB"} {
		if f < 1000 {
			return strconv.FormatFloat(f, 'g', 3, 64) + u
		}
		f /= 1000
	}
	return strconv.FormatFloat(f, 'g', 3, 64) + "TB"
}

func cmdImages(c *Client, args []string) error {
	fs := newFlags("images")
	quiet := fs.Bool("q", false, "only IDs")
	format := fs.String("format", "", "Go template per image, \"table ...\" for columns, or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var list []api.ImageSummary
	if err := c.JSON(context.Background(), "GET", "/images/json", nil, nil, &list); err != nil {
		return err
	}
	if *format != "" && !*quiet {
		return printFormatted(os.Stdout, *format, imagesTable, imageItems(list), imageHeaders)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	if !*quiet {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	for _, im := range list {
		id := strings.TrimPrefix(im.ID, "sha256:")[:12]
		if *quiet {
			fmt.Fprintln(tw, id)
			continue
		}
		tags := im.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		for _, t := range tags {
			i := strings.LastIndex(t, ":")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t[:i], t[i+1:], id, ago(time.Unix(im.Created, 0)), humanSize(im.Size))
		}
	}
	return tw.Flush()
}

func openInput(name string) (io.ReadCloser, error) {
	if name == "" || name == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(name)
}

// printStream prints a JSON message stream (load, import), failing on
// an error message in it.
func printStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m api.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read reply: %w", err)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if m.Stream != "" {
			fmt.Print(m.Stream)
		} else if m.Status != "" {
			fmt.Println(m.Status)
		}
	}
}

func cmdImport(c *Client, args []string) error {
	fs := newFlags("import")
	var changes listFlag
	fs.Var(&changes, "c", "Dockerfile instruction to apply (repeatable)")
	fs.Var(&changes, "change", "same as -c")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return exitError(2)
	}
	in, err := openInput(fs.Arg(0))
	if err != nil {
		return err
	}
	defer in.Close()
	q := url.Values{"fromSrc": {"-"}, "changes": changes}
	setRepoTag(q, fs.Arg(1))
	resp, err := c.Do(context.Background(), "POST", "/images/create", q, in, "application/x-tar")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return printStream(resp.Body)
}

func cmdLoad(c *Client, args []string) error {
	fs := newFlags("load")
	input := fs.String("i", "", "archive to read instead of stdin")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in, err := openInput(*input)
	if err != nil {
		return err
	}
	defer in.Close()
	resp, err := c.Do(context.Background(), "POST", "/images/load", nil, in, "application/x-tar")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return printStream(resp.Body)
}

func cmdLogs(c *Client, args []string) error {
	fs := newFlags("logs")
	follow := fs.Bool("f", false, "follow the output")
	tail := fs.String("tail", "all", "number of lines from the end")
	ts := fs.Bool("t", false, "show timestamps")
	longNames(fs, "follow", "f", "timestamps", "t")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	ctx := context.Background()
	var info api.ContainerJSON
	if err := c.JSON(ctx, "GET", "/containers/"+url.PathEscape(fs.Arg(0))+"/json", nil, nil, &info); err != nil {
		return err
	}
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {*tail}}
	if *follow {
		q.Set("follow", "1")
	}
	if *ts {
		q.Set("timestamps", "1")
	}
	resp, err := c.Do(ctx, "GET", "/containers/"+info.ID+"/logs", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if info.Config != nil && info.Config.Tty {
		_, err = io.Copy(os.Stdout, resp.Body)
		return err
	}
	return api.Demux(resp.Body, os.Stdout, os.Stderr)
}

// each runs f for every container named, printing each name on success
// as docker does, and fails if any failed.
func each(names []string, f func(string) error) error {
	failed := false
	for _, n := range names {
		if err := f(n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
			continue
		}
		fmt.Println(n)
	}
	if failed {
		return exitError(1)
	}
	return nil
}

func cmdStop(c *Client, args []string) error { return stopOrRestart(c, "stop", args) }

func cmdRestart(c *Client, args []string) error { return stopOrRestart(c, "restart", args) }

// stopOrRestart is `stop` and `restart`: POST /containers/{name}/{action}?t=
// for each name.
func stopOrRestart(c *Client, action string, args []string) error {
	fs := newFlags(action)
	t := fs.Int("t", -1, "seconds to wait before SIGKILL (default: the daemon's 10)")
	longNames(fs, "time", "t", "timeout", "t")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *t >= 0 {
		q.Set("t", strconv.Itoa(*t))
	}
	return each(fs.Args(), func(n string) error {
		return c.JSON(context.Background(), "POST", "/containers/"+url.PathEscape(n)+"/"+action, q, nil, nil)
	})
}

func cmdKill(c *Client, args []string) error {
	fs := newFlags("kill")
	sig := fs.String("s", "KILL", "signal to send")
	longNames(fs, "signal", "s")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return each(fs.Args(), func(n string) error {
		return c.JSON(context.Background(), "POST", "/containers/"+url.PathEscape(n)+"/kill", url.Values{"signal": {*sig}}, nil, nil)
	})
}

func cmdRm(c *Client, args []string) error {
	fs := newFlags("rm")
	force := fs.Bool("f", false, "kill a running container first")
	longNames(fs, "force", "f")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *force {
		q.Set("force", "1")
	}
	return each(fs.Args(), func(n string) error {
		return c.JSON(context.Background(), "DELETE", "/containers/"+url.PathEscape(n), q, nil, nil)
	})
}

func cmdWait(c *Client, args []string) error {
	failed := false
	for _, n := range args {
		var w api.WaitResponse
		if err := c.JSON(context.Background(), "POST", "/containers/"+url.PathEscape(n)+"/wait", nil, nil, &w); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
			continue
		}
		fmt.Println(w.StatusCode)
	}
	if failed {
		return exitError(1)
	}
	return nil
}

// parseBytes reads docker's memory sizes: 64m, 1g, 512k, 1048576.
func parseBytes(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch strings.ToLower(s[len(s)-1:]) {
	case "b":
		s = s[:len(s)-1]
	case "k":
		mult, s = 1<<10, s[:len(s)-1]
	case "m":
		mult, s = 1<<20, s[:len(s)-1]
	case "g":
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: a number with an optional b, k, m or g", s)
	}
	return n * mult, nil
}

// runOptions are the flags of run that act after the create.
type runOptions struct {
	detach, interactive, tty, rm bool
}

// createFromFlags parses the flags run and create share, creates the
// container and returns its ID.
func createFromFlags(c *Client, cmdName string, args []string) (string, runOptions, error) {
	var o runOptions
	fs := newFlags(cmdName)
	if cmdName == "run" {
		fs.BoolVar(&o.detach, "d", false, "run in the background, print the ID")
	}
	fs.BoolVar(&o.interactive, "i", false, "keep stdin open (and attach it with run)")
	fs.BoolVar(&o.tty, "t", false, "give the container a terminal")
	fs.BoolVar(&o.rm, "rm", false, "remove the container when it exits")
	name := fs.String("name", "", "container name")
	workdir := fs.String("w", "", "working directory")
	user := fs.String("u", "", "user[:group]")
	hostname := fs.String("h", "", "hostname")
	entrypoint := fs.String("entrypoint", "", "override the image's entrypoint")
	memory := fs.String("m", "", "memory limit (e.g. 64m)")
	cpus := fs.Float64("cpus", 0, "number of CPUs")
	shares := fs.Int64("cpu-shares", 0, "CPU shares (relative weight)")
	pids := fs.Int64("pids-limit", 0, "maximum number of processes")
	readOnly := fs.Bool("read-only", false, "read-only root filesystem")
	restart := fs.String("restart", "no", "restart policy: no, on-failure[:MAX-RETRIES], always, unless-stopped")
	var env, labels listFlag
	fs.Var(&env, "e", "environment variable KEY=VALUE (repeatable)")
	fs.Var(&labels, "l", "label KEY=VALUE (repeatable)")
	var envFiles listFlag
	fs.Var(&envFiles, "env-file", "read environment variables from a file (repeatable)")
	nf := addNetworkFlags(fs)
	longNames(fs, "detach", "d", "interactive", "i", "tty", "t", "env", "e", "workdir", "w", "user", "u",
		"hostname", "h", "memory", "m", "label", "l", "publish-all", "P")
	if err := parseFlags(fs, args); err != nil {
		return "", o, err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return "", o, exitError(125)
	}
	for _, f := range envFiles {
		vars, err := readEnvFile(f)
		if err != nil {
			return "", o, err
		}
		env = append(vars, env...) // -e wins over the file
	}
	mem, err := parseBytes(*memory)
	if err != nil {
		return "", o, err
	}
	attach := cmdName == "run" && !o.detach
	req := api.ContainerCreateRequest{
		ContainerConfig: api.ContainerConfig{
			Image: fs.Arg(0), Env: env, Tty: o.tty, WorkingDir: *workdir, User: *user, Hostname: *hostname,
			OpenStdin: o.interactive, StdinOnce: o.interactive && attach, AttachStdin: o.interactive && attach,
			AttachStdout: attach, AttachStderr: attach, Labels: map[string]string{},
		},
		HostConfig: &api.HostConfig{AutoRemove: o.rm, Memory: mem, NanoCPUs: int64(*cpus * 1e9), CPUShares: *shares, ReadonlyRootfs: *readOnly},
	}
	if fs.NArg() > 1 {
		req.Cmd = fs.Args()[1:]
	}
	if *entrypoint != "" {
		req.Entrypoint = []string{*entrypoint}
	}
	if *pids != 0 {
		req.HostConfig.PidsLimit = pids
	}
	if req.HostConfig.RestartPolicy, err = parseRestartPolicy(*restart); err != nil {
		return "", o, err
	}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		req.Labels[k] = v
	}
	if err := nf.apply(&req); err != nil {
		return "", o, err
	}
	q := url.Values{}
	if *name != "" {
		q.Set("name", *name)
	}
	var created api.CreateResponse
	if err := c.JSON(context.Background(), "POST", "/containers/create", q, req, &created); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return "", o, exitError(125)
	}
	return created.ID, o, nil
}

func cmdCreate(c *Client, args []string) error {
	id, _, err := createFromFlags(c, "create", args)
	if err == nil {
		fmt.Println(id)
	}
	return err
}

func cmdStart(c *Client, args []string) error {
	fs := newFlags("start")
	attach := fs.Bool("a", false, "attach stdout and stderr, wait for the exit, exit with its code")
	interactive := fs.Bool("i", false, "attach stdin too")
	longNames(fs, "attach", "a", "interactive", "i")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !*attach && !*interactive {
		return each(fs.Args(), func(n string) error {
			return c.JSON(context.Background(), "POST", "/containers/"+url.PathEscape(n)+"/start", nil, nil, nil)
		})
	}
	if fs.NArg() != 1 {
		return errors.New("you cannot start and attach multiple containers at once")
	}
	var info api.ContainerJSON
	if err := c.JSON(context.Background(), "GET", "/containers/"+url.PathEscape(fs.Arg(0))+"/json", nil, nil, &info); err != nil {
		return err
	}
	return runAttached(c, info.ID, runOptions{interactive: *interactive, tty: info.Config.Tty, rm: info.HostConfig.AutoRemove})
}

func cmdRun(c *Client, args []string) error {
	id, o, err := createFromFlags(c, "run", args)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if o.detach {
		if err := c.JSON(ctx, "POST", "/containers/"+id+"/start", nil, nil, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitError(startCode(err))
		}
		fmt.Println(id)
		return nil
	}
	return runAttached(c, id, o)
}

// runAttached attaches to a created container, waits for it and starts it
// (run, start -a): the order docker uses, so that no output is missed and
// the exit is seen. It returns the container's exit code as an exitError.
func runAttached(c *Client, id string, o runOptions) error {
	ctx := context.Background()
	aq := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
	if o.interactive {
		aq.Set("stdin", "1")
	}
	conn, br, err := c.Hijack(ctx, "/containers/"+id+"/attach", aq)
	if err != nil {
		return err
	}
	defer conn.Close()
	cond := "next-exit"
	if o.rm {
		cond = "removed"
	}
	waitResp, err := c.Do(ctx, "POST", "/containers/"+id+"/wait", url.Values{"condition": {cond}}, nil, "")
	if err != nil {
		return err
	}
	defer waitResp.Body.Close()
	// forward the signals we get to the container
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			c.JSON(ctx, "POST", "/containers/"+id+"/kill", url.Values{"signal": {strconv.Itoa(int(s.(unix.Signal)))}}, nil, nil)
		}
	}()
	if err := c.JSON(ctx, "POST", "/containers/"+id+"/start", nil, nil, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		var w api.WaitResponse
		json.NewDecoder(waitResp.Body).Decode(&w) // --rm: the daemon removes it
		return exitError(startCode(err))
	}
	if o.tty {
		// our terminal in raw mode: keys, Ctrl-C included, go to the
		// container's terminal; its size follows ours
		if o.interactive && term.IsTerminal(int(os.Stdin.Fd())) {
			old, err := term.MakeRaw(int(os.Stdin.Fd()))
			if err == nil {
				defer term.Restore(int(os.Stdin.Fd()), old)
			}
		}
		resize := func() {
			if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
				c.JSON(ctx, "POST", "/containers/"+id+"/resize", url.Values{"h": {strconv.Itoa(h)}, "w": {strconv.Itoa(w)}}, nil, nil)
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	if o.interactive {
		go func() {
			io.Copy(conn, os.Stdin)
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	outDone := make(chan struct{})
	go func() {
		if o.tty {
			io.Copy(os.Stdout, br)
		} else {
			api.Demux(br, os.Stdout, os.Stderr)
		}
		close(outDone)
	}()
	var w api.WaitResponse
	if err := json.NewDecoder(waitResp.Body).Decode(&w); err != nil {
		return fmt.Errorf("wait for %s: %w", id[:12], err)
	}
	select {
	case <-outDone:
	case <-time.After(2 * time.Second):
	}
	if w.StatusCode != 0 {
		return exitError(w.StatusCode)
	}
	return nil
}

func cmdExec(c *Client, args []string) error {
	fs := newFlags("exec")
	detach := fs.Bool("d", false, "run in the background")
	interactive := fs.Bool("i", false, "attach stdin")
	tty := fs.Bool("t", false, "give the process a terminal")
	workdir := fs.String("w", "", "working directory")
	user := fs.String("u", "", "user[:group]")
	var env listFlag
	fs.Var(&env, "e", "environment variable KEY=VALUE (repeatable)")
	longNames(fs, "detach", "d", "interactive", "i", "tty", "t", "workdir", "w", "user", "u", "env", "e")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return exitError(2)
	}
	ctx := context.Background()
	cfg := api.ExecConfig{Cmd: fs.Args()[1:], Env: env, WorkingDir: *workdir, User: *user, Tty: *tty, Detach: *detach,
		AttachStdin: *interactive && !*detach, AttachStdout: !*detach, AttachStderr: !*detach}
	var created api.CreateResponse
	if err := c.JSON(ctx, "POST", "/containers/"+url.PathEscape(fs.Arg(0))+"/exec", nil, cfg, &created); err != nil {
		return err
	}
	id := created.ID
	if *detach {
		return c.JSON(ctx, "POST", "/exec/"+id+"/start", nil, map[string]bool{"Detach": true}, nil)
	}
	conn, br, err := c.Hijack(ctx, "/exec/"+id+"/start", url.Values{})
	if err != nil {
		return err
	}
	defer conn.Close()
	if *tty {
		if *interactive && term.IsTerminal(int(os.Stdin.Fd())) {
			if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
				defer term.Restore(int(os.Stdin.Fd()), old)
			}
		}
		resize := func() {
			if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
				c.JSON(ctx, "POST", "/exec/"+id+"/resize", url.Values{"h": {strconv.Itoa(h)}, "w": {strconv.Itoa(w)}}, nil, nil)
			}
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			resize()
			for range winch {
				resize()
			}
		}()
	}
	if *interactive {
		go func() {
			io.Copy(conn, os.Stdin)
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	if *tty {
		io.Copy(os.Stdout, br)
	} else {
		api.Demux(br, os.Stdout, os.Stderr)
	}
	var ins api.ExecInspect
	if err := c.JSON(ctx, "GET", "/exec/"+id+"/json", nil, nil, &ins); err != nil {
		return err
	}
	if ins.ExitCode != nil && *ins.ExitCode != 0 {
		return exitError(*ins.ExitCode)
	}
	return nil
}

// startCode is docker's exit code for a container that did not start.
func startCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 125
}

// parseFlags parses args as docker does: besides the flag package's
// syntax, boolean short flags may be combined (-it, -aq, -fq). Expansion
// stops where parsing stops, at the first argument that is not a flag.
func parseFlags(fs *flag.FlagSet, args []string) error {
	isBool := func(name string) bool {
		f := fs.Lookup(name)
		if f == nil {
			return false
		}
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		return ok && b.IsBoolFlag()
	}
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			out = append(out, args[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) != nil {
			out = append(out, a)
			if !hasValue && !isBool(name) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		combined := !strings.HasPrefix(a, "--") && len(a) > 2
		for _, r := range a[1:] {
			combined = combined && isBool(string(r))
		}
		if !combined {
			out = append(out, a) // the flag package reports it
			continue
		}
		for _, r := range a[1:] {
			out = append(out, "-"+string(r))
		}
	}
	return fs.Parse(out)
}
