package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"minidock/api"
	"minidock/internal/trace"
)

// containerOptions are the flags run and create share, docker's names.
type containerOptions struct {
	name, workdir, user, hostname, entrypoint, restart string
	interactive, tty, rm, readOnly                     bool
	memory                                             bytesValue
	cpus                                               float64
	cpuShares, pidsLimit                               int64
	env, envFiles, labels                              listValue

	network, ip                          string
	publishAll                           bool
	aliases, publish, expose, extraHosts listValue

	volumes, mounts, tmpfs, volumesFrom listValue

	security securityOptions // security.go
	pull     string          // --pull: missing, always, never (pull.go)
}

func (o *containerOptions) addFlags(fs *pflag.FlagSet) {
	// everything after the image is the container's command
	fs.SetInterspersed(false)
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.rm, "rm", false, "Automatically remove the container when it exits")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Float64Var(&o.cpus, "cpus", 0, "Number of CPUs")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits (no, on-failure[:max-retries], always, unless-stopped)")
	fs.VarP(&o.env, "env", "e", "Set environment variables")
	fs.Var(&o.envFiles, "env-file", "Read in a file of environment variables")
	fs.VarP(&o.labels, "label", "l", "Set meta data on a container")
	fs.StringVar(&o.network, "network", "", "Connect a container to a network (bridge, NAME, host, none, container:NAME)")
	fs.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104), on a user-defined network")
	fs.Var(&o.aliases, "network-alias", "Add network-scoped alias for the container")
	fs.VarP(&o.publish, "publish", "p", "Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto]; hostPort 0 or empty: an ephemeral port)")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(&o.expose, "expose", "Expose a port or a range of ports")
	fs.Var(&o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.VarP(&o.volumes, "volume", "v", "Bind mount a volume ([NAME|/HOST/PATH:]/PATH[:ro|rw][,nocopy][,z|Z][,rshared|rslave|rprivate])")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container (type=volume|bind|tmpfs,source=,target=,readonly,...)")
	fs.Var(&o.tmpfs, "tmpfs", "Mount a tmpfs directory (/PATH[:OPTIONS])")
	fs.Var(&o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s) (CONTAINER[:ro|rw])")
	o.security.addFlags(fs)
	fs.StringVar(&o.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
}

// request makes the create request for image and its command: attach
// says whether the client will attach (run without -d).
func (o *containerOptions) request(image string, cmd []string, attach bool) (*api.ContainerCreateRequest, error) {
	env := []string(o.env)
	for i := len(o.envFiles) - 1; i >= 0; i-- {
		vars, err := readEnvFile(o.envFiles[i])
		if err != nil {
			return nil, err
		}
		env = append(vars, env...) // -e wins over the files
	}
	req := &api.ContainerCreateRequest{
		ContainerConfig: api.ContainerConfig{
			Image: image, Cmd: cmd, Env: env, Tty: o.tty, WorkingDir: o.workdir, User: o.user, Hostname: o.hostname,
			OpenStdin: o.interactive, StdinOnce: o.interactive && attach, AttachStdin: o.interactive && attach,
			AttachStdout: attach, AttachStderr: attach, Labels: keyValues(o.labels),
		},
		HostConfig: &api.HostConfig{
			AutoRemove: o.rm, Memory: int64(o.memory), NanoCPUs: int64(o.cpus * 1e9), CPUShares: o.cpuShares,
			ReadonlyRootfs: o.readOnly, NetworkMode: o.network, PublishAllPorts: o.publishAll, ExtraHosts: o.extraHosts,
		},
	}
	if o.entrypoint != "" {
		req.Entrypoint = []string{o.entrypoint}
	}
	if o.pidsLimit != 0 {
		req.HostConfig.PidsLimit = &o.pidsLimit
	}
	var err error
	if req.HostConfig.RestartPolicy, err = parseRestartPolicy(o.restart); err != nil {
		return nil, err
	}
	if err := o.ports(req); err != nil {
		return nil, err
	}
	if err := o.storage(req); err != nil {
		return nil, err
	}
	if err := o.security.apply(req.HostConfig); err != nil {
		return nil, err
	}
	if o.ip != "" || len(o.aliases) > 0 {
		name := o.network
		if name == "" {
			name = "bridge"
		}
		es := &api.EndpointSettings{Aliases: o.aliases}
		if o.ip != "" {
			es.IPAMConfig = &api.EndpointIPAMConfig{IPv4Address: o.ip}
		}
		req.NetworkingConfig = &api.NetworkingConfig{EndpointsConfig: map[string]*api.EndpointSettings{name: es}}
	}
	return req, nil
}

// ports puts --publish and --expose into the request, as the docker CLI
// does: a published port is exposed too.
func (o *containerOptions) ports(req *api.ContainerCreateRequest) error {
	expose := func(key string) {
		if req.ExposedPorts == nil {
			req.ExposedPorts = map[string]struct{}{}
		}
		req.ExposedPorts[key] = struct{}{}
	}
	for _, p := range o.publish {
		specs, err := api.ParsePortSpec(p)
		if err != nil {
			return err
		}
		for _, spec := range specs {
			if req.HostConfig.PortBindings == nil {
				req.HostConfig.PortBindings = map[string][]api.PortBinding{}
			}
			req.HostConfig.PortBindings[spec.Port()] = append(req.HostConfig.PortBindings[spec.Port()], spec.Binding())
			expose(spec.Port())
		}
	}
	for _, e := range o.expose {
		keys, err := api.ParseExposedPort(e)
		if err != nil {
			return err
		}
		for _, k := range keys {
			expose(k)
		}
	}
	return nil
}

// storage puts -v, --mount, --tmpfs and --volumes-from into the request,
// as the docker CLI does: a -v with a source is a bind (HostConfig.Binds,
// a relative host path starting with "." made absolute), one without is
// an anonymous volume (Config.Volumes); --mount is parsed here
// (HostConfig.Mounts), --tmpfs split at its first colon (HostConfig.Tmpfs).
func (o *containerOptions) storage(req *api.ContainerCreateRequest) error {
	hc := req.HostConfig
	for _, v := range o.volumes {
		if src, rest, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(src, ".") {
			if abs, err := filepath.Abs(src); err == nil {
				v = abs + ":" + rest
			}
		}
		m, _, err := api.ParseBind(v)
		if err != nil {
			return err
		}
		if m.Source == "" {
			if req.Volumes == nil {
				req.Volumes = map[string]struct{}{}
			}
			req.Volumes[m.Target] = struct{}{}
			continue
		}
		hc.Binds = append(hc.Binds, v)
	}
	for _, f := range o.mounts {
		m, err := api.ParseMountFlag(f)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--mount\" flag: %w", f, err)
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	for _, t := range o.tmpfs {
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		dest, opts, _ := strings.Cut(t, ":")
		hc.Tmpfs[dest] = opts
	}
	hc.VolumesFrom = o.volumesFrom
	return nil
}

// create makes the container: any failure here is docker's exit 125,
// the container never ran.
func (cli *CLI) create(ctx context.Context, o *containerOptions, args []string, attach bool) (string, error) {
	fail := func(err error) (string, error) {
		fmt.Fprintf(cli.Err, "%s\n", err)
		return "", statusError(125)
	}
	req, err := o.request(args[0], args[1:], attach)
	if err != nil {
		return fail(err)
	}
	created, err := cli.createPulling(ctx, o, req)
	if err != nil {
		return fail(err)
	}
	for _, w := range created.Warnings {
		fmt.Fprintf(cli.Err, "WARNING: %s\n", w)
	}
	return created.ID, nil
}

func newCreateCommand(cli *CLI) *cobra.Command {
	var o containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cli.create(cmd.Context(), &o, args, false)
			if err == nil {
				fmt.Fprintln(cli.Out, id)
			}
			return err
		},
		ValidArgsFunction: firstArg(completeImages(cli)),
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func newRunCommand(cli *CLI) *cobra.Command {
	var (
		o       containerOptions
		detach  bool
		step    bool
		traceOn bool
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var tty *os.File
			if step {
				var err error
				if tty, err = stepTerminal(); err != nil {
					fmt.Fprintln(cli.Err, err)
					return statusError(125)
				}
				defer tty.Close()
			}
			if traceOn {
				tr := trace.NewMemory("client")
				cli.client.SetTrace(tr)
				var id string
				defer func() { cli.printTimeline(ctx, id, tr) }()
				return cli.run(ctx, &o, args, detach, tty, &id)
			}
			return cli.run(ctx, &o, args, detach, tty, nil)
		},
		ValidArgsFunction: firstArg(completeImages(cli)),
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	cmd.Flags().BoolVar(&traceOn, "trace", false, "print, on stderr, the timeline of everything done for the container by the client, daemon, shim, runtime and init (docs/trace.md)")
	cmd.Flags().BoolVar(&step, "step", false, "Pause before each kernel call of the container's creation and start, asking on this terminal (minidock's; docs/step.md)")
	o.addFlags(cmd.Flags())
	return cmd
}

// run is `run`: create, then (with --step, tty: the terminal the step
// prompts go to) relay the steps of its creation and start, then attach,
// start and wait, or start detached. The container's id is left in
// *created, if given.
func (cli *CLI) run(ctx context.Context, o *containerOptions, args []string, detach bool, tty *os.File, created *string) error {
	id, err := cli.create(ctx, o, args, !detach)
	if created != nil {
		*created = id
	}
	if err != nil {
		return err
	}
	var stepsEnded <-chan struct{}
	if tty != nil {
		if stepsEnded, err = cli.relaySteps(ctx, id, tty); err != nil {
			fmt.Fprintln(cli.Err, err)
			if o.rm { // it never ran: as a failed start, --rm removes it
				cli.client.ContainerRemove(ctx, id, true, true)
			}
			return statusError(125)
		}
	}
	if !detach {
		return cli.runAttached(ctx, id, attachOptions{interactive: o.interactive, tty: o.tty, rm: o.rm, steps: stepsEnded})
	}
	if err := cli.client.ContainerStart(ctx, id); err != nil {
		fmt.Fprintln(cli.Err, err)
		return statusError(startFailureCode(err))
	}
	fmt.Fprintln(cli.Out, id)
	return nil
}

// printTimeline prints, on stderr, the client's events merged with the
// container's trace (GET /containers/{id}/trace) as one timeline, in
// order of time, milliseconds since the client's first request.
func (cli *CLI) printTimeline(ctx context.Context, id string, tr *trace.Tracer) {
	cli.client.SetTrace(nil)
	events := tr.Events()
	if id != "" {
		theirs, err := cli.client.ContainerTrace(ctx, id)
		if err != nil {
			fmt.Fprintf(cli.Err, "trace: %v\n", err)
		}
		events = append(events, theirs...)
	}
	trace.Timeline(cli.Err, events, 0)
}

// stepTerminal opens the controlling terminal for run --step: the
// prompts go there, apart from the container's output.
func stepTerminal() (*os.File, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		return nil, fmt.Errorf("run --step prompts on the controlling terminal, and the client has none (open /dev/tty: %w): run it from an interactive shell, or leave --step out", err)
	}
	return tty, nil
}

// relaySteps opens the container's step stream (before its start) and
// copies it to and from tty: the runtime's prompts out, the answers in.
// The daemon ends the stream once the start is over (the container's
// process has called execve, or the start failed); tty is closed then,
// and ended closed, so that its reader stops before anything else reads
// the terminal.
func (cli *CLI) relaySteps(ctx context.Context, id string, tty *os.File) (ended <-chan struct{}, err error) {
	conn, err := cli.client.ContainerStep(ctx, id)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go io.Copy(conn, tty)
	go func() {
		io.Copy(tty, conn)
		conn.Close()
		tty.Close()
		close(done)
	}()
	return done, nil
}

func newStartCommand(cli *CLI) *cobra.Command {
	var attach, interactive bool
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := cli.client
			if !attach && !interactive {
				return cli.each(args, func(n string) error { return c.ContainerStart(ctx, n) })
			}
			if len(args) != 1 {
				return fmt.Errorf("you cannot start and attach multiple containers at once")
			}
			info, err := c.ContainerInspect(ctx, args[0])
			if err != nil {
				return err
			}
			return cli.runAttached(ctx, info.ID, attachOptions{interactive: interactive, tty: info.Config.Tty, rm: info.HostConfig.AutoRemove})
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	return cmd
}

// startFailureCode is docker's exit code for a container that did not
// start: 127 when its program is missing, 126 when it cannot be run,
// else 125.
func startFailureCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 125
}
