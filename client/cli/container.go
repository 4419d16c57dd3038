package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"minidock/api"
	"minidock/client"
)

// newContainerCommand is `container ...`: every container verb under its
// long name (container ls, container rm, ...), and prune.
func newContainerCommand(cli *CLI) *cobra.Command {
	ls := twin(newPsCommand(cli), "ps")
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"ps", "list"}
	return newManagementCommand("container", "Manage containers",
		twin(newCommitCommand(cli), "commit"), twin(newCpCommand(cli), "cp"), twin(newCreateCommand(cli), "create"),
		twin(newDiffCommand(cli), "diff"), twin(newExecCommand(cli), "exec"), twin(newExportCommand(cli), "export"),
		newInspectCommand(cli, "container"), twin(newKillCommand(cli), "kill"), twin(newLogsCommand(cli), "logs"), ls,
		twin(newPauseCommand(cli), "pause"), twin(newPortCommand(cli), "port"), newContainerPruneCommand(cli),
		twin(newRenameCommand(cli), "rename"), twin(newRestartCommand(cli), "restart"), twin(newRmCommand(cli), "rm"),
		twin(newRunCommand(cli), "run"), twin(newStartCommand(cli), "start"), twin(newStatsCommand(cli), "stats"),
		twin(newStopCommand(cli), "stop"), twin(newTopCommand(cli), "top"), twin(newUnpauseCommand(cli), "unpause"),
		twin(newWaitCommand(cli), "wait"),
	)
}

func newPsCommand(cli *CLI) *cobra.Command {
	var (
		all, quiet, latest bool
		last               int
		format             string
		filters            listValue
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			f, err := client.ParseFilters(filters)
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			list, err := c.ContainerList(cmd.Context(), client.ContainerListOptions{All: all, Limit: last, Filters: f})
			if err != nil {
				return err
			}
			switch {
			case quiet:
				for _, s := range list {
					fmt.Fprintln(cli.Out, shortID(s.ID))
				}
				return nil
			case format != "":
				return printFormatted(cli.Out, format, psTable, psItems(list), psHeaders)
			}
			return printFormatted(cli.Out, "table", psTable, psItems(list), psHeaders)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fs.StringVar(&format, "format", "", "Format output using a Go template, \"table\", \"table TEMPLATE\" or \"json\"")
	fs.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fs.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fs.VarP(&filters, "filter", "f", "Filter output based on conditions provided (id, name, status, label)")
	return cmd
}

// stopFlags are stop's and restart's: -t, --timeout (and docker's older
// --time).
func stopFlags(cmd *cobra.Command, timeout *int) {
	cmd.Flags().IntVarP(timeout, "timeout", "t", -1, "Seconds to wait before killing the container (default: the daemon's 10)")
	cmd.Flags().IntVar(timeout, "time", -1, "Seconds to wait before killing the container")
	cmd.Flags().MarkHidden("time")
}

func timeoutArg(t int) *int {
	if t < 0 {
		return nil
	}
	return &t
}

func newStopCommand(cli *CLI) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return cli.each(args, func(n string) error { return c.ContainerStop(cmd.Context(), n, timeoutArg(timeout)) })
		},
		ValidArgsFunction: completeContainers(cli, false),
	}
	stopFlags(cmd, &timeout)
	return cmd
}

func newRestartCommand(cli *CLI) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return cli.each(args, func(n string) error { return c.ContainerRestart(cmd.Context(), n, timeoutArg(timeout)) })
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
	stopFlags(cmd, &timeout)
	return cmd
}

func newKillCommand(cli *CLI) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return cli.each(args, func(n string) error { return c.ContainerKill(cmd.Context(), n, sig) })
		},
		ValidArgsFunction: completeContainers(cli, false),
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container (default KILL)")
	return cmd
}

func newRmCommand(cli *CLI) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return cli.each(args, func(n string) error { return c.ContainerRemove(cmd.Context(), n, force, volumes) })
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

// newEachCommand is a command that does one call per container named
// and prints the name: pause, unpause.
func newEachCommand(cli *CLI, use, short string, call func(c *client.Client, cmd *cobra.Command, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return cli.each(args, func(n string) error { return call(c, cmd, n) })
		},
		ValidArgsFunction: completeContainers(cli, false),
	}
}

func newPauseCommand(cli *CLI) *cobra.Command {
	return newEachCommand(cli, "pause", "Pause all processes within one or more containers",
		func(c *client.Client, cmd *cobra.Command, n string) error { return c.ContainerPause(cmd.Context(), n) })
}

func newUnpauseCommand(cli *CLI) *cobra.Command {
	return newEachCommand(cli, "unpause", "Unpause all processes within one or more containers",
		func(c *client.Client, cmd *cobra.Command, n string) error {
			return c.ContainerUnpause(cmd.Context(), n)
		})
}

func newWaitCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			failed := false
			for _, n := range args {
				w, err := c.ContainerWait(cmd.Context(), n, "")
				var st api.WaitResponse
				if err == nil {
					st, err = w.Result()
				}
				if err != nil {
					fmt.Fprintln(cli.Err, err)
					failed = true
					continue
				}
				fmt.Fprintln(cli.Out, st.StatusCode)
			}
			if failed {
				return statusError(1)
			}
			return nil
		},
		ValidArgsFunction: completeContainers(cli, false),
	}
}

func newRenameCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return c.ContainerRename(cmd.Context(), args[0], args[1])
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
}

func newTopCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER",
		Short: "Display the running processes of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			top, err := c.ContainerTop(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cli.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
			for _, p := range top.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
		ValidArgsFunction: completeContainers(cli, false),
	}
}

func newLogsCommand(cli *CLI) *cobra.Command {
	var o client.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := cli.client
			info, err := c.ContainerInspect(ctx, args[0])
			if err != nil {
				return err
			}
			logs, err := c.ContainerLogs(ctx, info.ID, o)
			if err != nil {
				return err
			}
			defer logs.Close()
			if info.Config != nil && info.Config.Tty {
				_, err = io.Copy(cli.Out, logs)
				return err
			}
			return api.Demux(logs, cli.Out, cli.Err)
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	cmd.Flags().StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	cmd.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	return cmd
}

// statsRow is one row of docker stats.
func statsRow(s api.StatsJSON) string {
	cpu := 0.0
	dc := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	ds := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	if s.PreCPUStats.SystemUsage != 0 && dc > 0 && ds > 0 {
		cpu = dc / ds * float64(s.CPUStats.OnlineCPUs) * 100
	}
	mem := 0.0
	if s.MemoryStats.Limit > 0 {
		mem = float64(s.MemoryStats.Usage) / float64(s.MemoryStats.Limit) * 100
	}
	return fmt.Sprintf("%.12s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%d", s.ID, strings.TrimPrefix(s.Name, "/"), cpu,
		bytesSize(int64(s.MemoryStats.Usage)), bytesSize(int64(s.MemoryStats.Limit)), mem, s.PidsStats.Current)
}

const statsHeader = "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tPIDS"

func newStatsCommand(cli *CLI) *cobra.Command {
	var noStream bool
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := cli.client
			if noStream || len(args) > 1 {
				tw := tabwriter.NewWriter(cli.Out, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, statsHeader)
				failed := false
				for _, n := range args {
					s, err := c.ContainerStats(ctx, n)
					if err != nil {
						fmt.Fprintln(cli.Err, err)
						failed = true
						continue
					}
					fmt.Fprintln(tw, statsRow(s))
				}
				tw.Flush()
				if failed {
					return statusError(1)
				}
				return nil
			}
			stream, err := c.ContainerStatsStream(ctx, args[0])
			if err != nil {
				return err
			}
			defer stream.Close()
			for {
				s, err := stream.Next()
				if err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				fmt.Fprint(cli.Out, "\033[2J\033[H")
				tw := tabwriter.NewWriter(cli.Out, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, statsHeader)
				fmt.Fprintln(tw, statsRow(s))
				tw.Flush()
			}
		},
		ValidArgsFunction: completeContainers(cli, false),
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	return cmd
}

// newPortCommand is `port CONTAINER [PORT[/PROTO]]`: the published
// ports, from the container's inspect, as docker prints them.
func newPortCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			info, err := c.ContainerInspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ports := map[string][]api.PortBinding{}
			if info.NetworkSettings != nil {
				ports = info.NetworkSettings.Ports
			}
			if len(args) == 2 {
				want := args[1]
				if !strings.Contains(want, "/") {
					want += "/tcp"
				}
				if len(ports[want]) == 0 {
					return fmt.Errorf("no public port '%s' published for %s", want, args[0])
				}
				for _, b := range ports[want] {
					fmt.Fprintf(cli.Out, "%s:%s\n", b.HostIP, b.HostPort)
				}
				return nil
			}
			var keys []string
			for k, bs := range ports {
				if len(bs) > 0 {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				for _, b := range ports[k] {
					fmt.Fprintf(cli.Out, "%s -> %s:%s\n", k, b.HostIP, b.HostPort)
				}
			}
			return nil
		},
		ValidArgsFunction: completeContainers(cli, false),
	}
}

func newDiffCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			changes, err := c.ContainerChanges(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Fprintf(cli.Out, "%s %s\n", [...]string{"C", "A", "D"}[ch.Kind%3], ch.Path)
			}
			return nil
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
}

func newExportCommand(cli *CLI) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(os.Stdout) {
				return fmt.Errorf("cowardly refusing to write a tar to a terminal: give -o FILE or redirect stdout")
			}
			c := cli.client
			tar, err := c.ContainerExport(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer tar.Close()
			return cli.writeOutput(output, tar)
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func newCommitCommand(cli *CLI) *cobra.Command {
	var (
		o       client.CommitOptions
		changes listValue
	)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			o.Container, o.Changes = args[0], changes
			if len(args) == 2 {
				o.Repo, o.Tag = splitRepoTag(args[1])
			}
			id, err := c.ContainerCommit(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cli.Out, id.ID)
			return nil
		},
		ValidArgsFunction: completeContainers(cli, true),
	}
	cmd.Flags().StringVarP(&o.Comment, "message", "m", "", "Commit message")
	cmd.Flags().StringVarP(&o.Author, "author", "a", "", "Author, as \"Name <email>\"")
	cmd.Flags().VarP(&changes, "change", "c", "Apply Dockerfile instruction to the created image")
	return cmd
}

func newContainerPruneCommand(cli *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			if !cli.confirm(force, "all stopped containers") {
				return nil
			}
			rep, err := c.ContainersPrune(cmd.Context())
			if err != nil {
				return err
			}
			cli.printPruned("Containers", rep.ContainersDeleted, rep.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// printPruned is a prune's report as docker prints it: "Deleted
// Volumes:", one name a line, then the space reclaimed.
func (cli *CLI) printPruned(what string, deleted []string, reclaimed int64) {
	if len(deleted) > 0 {
		fmt.Fprintf(cli.Out, "Deleted %s:\n", what)
		for _, d := range deleted {
			fmt.Fprintln(cli.Out, d)
		}
		fmt.Fprintln(cli.Out)
	}
	fmt.Fprintln(cli.Out, "Total reclaimed space: "+humanSize(reclaimed))
}

// confirm asks on the terminal, unless force.
func (cli *CLI) confirm(force bool, what string) bool {
	if force {
		return true
	}
	fmt.Fprintf(cli.Out, "WARNING! This will remove %s.\nAre you sure you want to continue? [y/N] ", what)
	var answer string
	fmt.Fscanln(cli.In, &answer)
	return strings.EqualFold(answer, "y") || strings.EqualFold(answer, "yes")
}

// writeOutput copies r to the file name (through a temporary file, so a
// failed copy leaves no half file), or to stdout when name is "".
func (cli *CLI) writeOutput(name string, r io.Reader) error {
	if name == "" {
		_, err := io.Copy(cli.Out, r)
		return err
	}
	dir := "."
	if i := strings.LastIndex(name, "/"); i >= 0 {
		dir = name[:i+1]
	}
	f, err := os.CreateTemp(dir, ".minidock-")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// formatPorts is the PORTS column of ps, as docker prints it:
// "127.0.0.1:32768->80/tcp, 443/tcp".
func formatPorts(ports []api.Port) string {
	var out []string
	for _, p := range ports {
		if p.PublicPort != 0 {
			out = append(out, fmt.Sprintf("%s:%d->%d/%s", p.IP, p.PublicPort, p.PrivatePort, p.Type))
		} else {
			out = append(out, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
		}
	}
	return strings.Join(out, ", ")
}
