package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"minidock/api"
	"minidock/client"
)

func newVersionCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the minidock version information",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			v, err := c.Version(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cli.Out, "Client:\n API version:  %s\n\nServer: %s\n Engine:\n  Version:      %s\n  API version:  %s (minimum version %s)\n  Go version:   %s\n  OS/Arch:      %s/%s\n  Kernel:       %s\n",
				api.Version, v.Platform.Name, v.Version, v.APIVersion, v.MinAPIVersion, v.GoVersion, v.Os, v.Arch, v.KernelVersion)
			return nil
		},
	}
}

func newInfoCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Display system-wide information",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			info, err := c.Info(cmd.Context())
			if err != nil {
				return err
			}
			nets, err := c.NetworkList(cmd.Context(), nil)
			if err != nil {
				return err
			}
			printInfo(cli.Out, info, nets)
			return nil
		},
	}
}

// printInfo writes info in docker's layout and words; sizes as docker
// prints them (Total Memory: 23.54GiB).
func printInfo(w io.Writer, info api.Info, nets []api.Network) {
	names := make([]string, 0, len(nets))
	for _, n := range nets {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "Server:\n")
	fmt.Fprintf(w, " Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n",
		info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped)
	fmt.Fprintf(w, " Images: %d\n", info.Images)
	for _, kv := range [][2]string{
		{"Server Version", info.ServerVersion},
		{"Storage Driver", info.Driver},
		{"Cgroup Driver", info.CgroupDriver},
		{"Cgroup Version", info.CgroupVersion},
		{"Networks", strings.Join(names, " ")},
		{"Default Runtime", info.DefaultRuntime},
		{"Kernel Version", info.KernelVersion},
		{"Operating System", info.OperatingSystem},
		{"OSType", info.OSType},
		{"Architecture", info.Architecture},
		{"CPUs", fmt.Sprint(info.NCPU)},
		{"Total Memory", bytesSize(info.MemTotal)},
		{"Name", info.Name},
		{"ID", info.ID},
		{"Docker Root Dir", info.DockerRootDir},
		{"Cluster Store", info.ClusterStore},
		{"Cluster Advertise", info.ClusterAdvertise},
	} {
		if kv[1] != "" {
			fmt.Fprintf(w, " %s: %s\n", kv[0], kv[1])
		}
	}
	if info.ClusterStore != "" {
		fmt.Fprintf(w, " Cluster Peers: %d\n", len(info.ClusterPeers))
		for _, p := range info.ClusterPeers {
			fmt.Fprintf(w, "  %s: %s\n", p.Name, p.IP)
		}
	}
	// as docker's: each warning as the daemon wrote it ("WARNING: ...")
	for _, warning := range info.Warnings {
		fmt.Fprintln(w, warning)
	}
}

func newEventsCommand(cli *CLI) *cobra.Command {
	var (
		o       client.EventsOptions
		filters listValue
	)
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Filters, err = client.ParseFilters(filters); err != nil {
				return err
			}
			events, err := cli.client.Events(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer events.Close()
			for {
				m, err := events.Next()
				if err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				var attrs []string
				for k, v := range m.Actor.Attributes {
					attrs = append(attrs, k+"="+v)
				}
				sort.Strings(attrs)
				fmt.Fprintf(cli.Out, "%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00"),
					m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
			}
		},
	}
	cmd.Flags().StringVar(&o.Since, "since", "", "Show all events created since timestamp")
	cmd.Flags().StringVar(&o.Until, "until", "", "Stream events until this timestamp")
	cmd.Flags().VarP(&filters, "filter", "f", "Filter output based on conditions provided (type, event, container, image, label)")
	return cmd
}

// newInspectCommand is `inspect` (a container, else an image, as docker
// looks for both), or with kind "container" or "image" that object's own
// `container inspect`, `image inspect`.
func newInspectCommand(cli *CLI, kind string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on minidock objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			ctx := cmd.Context()
			return cli.inspect(format, args, func(name string) (json.RawMessage, error) {
				var err error
				if kind != "image" {
					raw, cerr := c.ContainerInspectRaw(ctx, name)
					if cerr == nil || kind == "container" || !client.IsNotFound(cerr) {
						return raw, cerr
					}
					err = cerr
				}
				raw, ierr := c.ImageInspectRaw(ctx, name)
				if ierr != nil && err != nil && client.IsNotFound(ierr) {
					return nil, err // neither: say so as for a container
				}
				return raw, ierr
			})
		},
	}
	switch kind {
	case "container":
		cmd.Short = "Display detailed information on one or more containers"
		cmd.Use = "inspect [OPTIONS] CONTAINER [CONTAINER...]"
		cmd.ValidArgsFunction = completeContainers(cli, true)
	case "image":
		cmd.Short = "Display detailed information on one or more images"
		cmd.Use = "inspect [OPTIONS] IMAGE [IMAGE...]"
		cmd.ValidArgsFunction = completeImages(cli)
	default:
		cmd.Flags().StringVar(&kind, "type", "", "Only inspect objects of the given type (container or image)")
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template (docker's functions: json, join, ...)")
	return cmd
}

// inspect prints the objects named, got by get, as a JSON array or
// through --format.
func (cli *CLI) inspect(format string, names []string, get func(string) (json.RawMessage, error)) error {
	out := []json.RawMessage{}
	var items []any
	failed := false
	for _, n := range names {
		raw, err := get(n)
		if err != nil {
			fmt.Fprintln(cli.Err, err)
			failed = true
			continue
		}
		out = append(out, raw)
		// numbers stay as written: no 1.7e+09 for a size
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		dec.Decode(&v)
		items = append(items, v)
	}
	var err error
	if format != "" {
		err = printFormatted(cli.Out, format, "", items, nil)
	} else {
		data, _ := json.MarshalIndent(out, "", "    ")
		fmt.Fprintln(cli.Out, string(data))
	}
	if err == nil && failed {
		err = statusError(1)
	}
	return err
}
