package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"minidock/api"
	"minidock/client"
)

// newVolumeCommand is `volume create|ls|inspect|rm|prune`.
func newVolumeCommand(cli *CLI) *cobra.Command {
	return newManagementCommand("volume", "Manage volumes",
		newVolumeCreateCommand(cli), newVolumeInspectCommand(cli), newVolumeLsCommand(cli),
		newVolumePruneCommand(cli), newVolumeRmCommand(cli),
	)
}

func newVolumeCreateCommand(cli *CLI) *cobra.Command {
	var (
		req          api.VolumeCreateOptions
		labels, opts listValue
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if req.Name != "" && req.Name != args[0] {
					return fmt.Errorf("conflicting options: either specify --name or provide positional arg, not both")
				}
				req.Name = args[0]
			}
			req.Labels, req.DriverOpts = keyValues(labels), keyValues(opts)
			v, err := cli.client.VolumeCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cli.Out, v.Name)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&req.Driver, "driver", "d", "local", "Specify volume driver name (local only)")
	fs.StringVar(&req.Name, "name", "", "Specify volume name")
	fs.Var(&labels, "label", "Set metadata for a volume")
	fs.VarP(&opts, "opt", "o", "Set driver specific options (type, device, o)")
	return cmd
}

// volumeItem is one line of docker volume ls --format.
type volumeItem struct {
	Name, Driver, Scope, Mountpoint, Labels, CreatedAt string

	labels map[string]string
}

// Label is the value of one label.
func (v volumeItem) Label(name string) string { return v.labels[name] }

var volumeHeaders = map[string]string{
	"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}

const volumesTable = "{{.Driver}}\t{{.Name}}"

func newVolumeLsCommand(cli *CLI) *cobra.Command {
	var (
		quiet   bool
		format  string
		filters listValue
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := client.ParseFilters(filters)
			if err != nil {
				return err
			}
			resp, err := cli.client.VolumeList(cmd.Context(), f)
			if err != nil {
				return err
			}
			for _, w := range resp.Warnings {
				fmt.Fprintln(cli.Err, w)
			}
			if quiet {
				for _, v := range resp.Volumes {
					fmt.Fprintln(cli.Out, v.Name)
				}
				return nil
			}
			items := make([]any, 0, len(resp.Volumes))
			for _, v := range resp.Volumes {
				items = append(items, volumeItem{Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint,
					Labels: labelsText(v.Labels), CreatedAt: v.CreatedAt, labels: v.Labels})
			}
			if format == "" {
				format = "table"
			}
			return printFormatted(cli.Out, format, volumesTable, items, volumeHeaders)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	cmd.Flags().StringVar(&format, "format", "", "Format output using a Go template, \"table\", \"table TEMPLATE\" or \"json\"")
	cmd.Flags().VarP(&filters, "filter", "f", "Provide filter values (dangling=true|false, name=, driver=, label=)")
	return cmd
}

func newVolumeInspectCommand(cli *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.inspect(format, args, func(n string) (json.RawMessage, error) {
				return cli.client.VolumeInspectRaw(cmd.Context(), n)
			})
		},
		ValidArgsFunction: completeVolumes(cli),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func newVolumeRmCommand(cli *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Long:    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.each(args, func(n string) error { return cli.client.VolumeRemove(cmd.Context(), n, force) })
		},
		ValidArgsFunction: completeVolumes(cli),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not fail when a volume does not exist")
	return cmd
}

func newVolumePruneCommand(cli *CLI) *cobra.Command {
	var (
		all, force bool
		filters    listValue
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := client.ParseFilters(filters)
			if err != nil {
				return err
			}
			what := "anonymous local volumes not used by at least one container"
			if all {
				f["all"] = []string{"true"}
				what = "all local volumes not used by at least one container"
			}
			if !cli.confirm(force, what) {
				return nil
			}
			rep, err := cli.client.VolumesPrune(cmd.Context(), f)
			if err != nil {
				return err
			}
			cli.printPruned("Volumes", rep.VolumesDeleted, int64(rep.SpaceReclaimed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", "Provide filter values (label=, label!=)")
	return cmd
}
