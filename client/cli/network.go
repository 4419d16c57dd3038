package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"minidock/api"
	"minidock/client"
)

// newNetworkCommand is `network create|ls|inspect|rm|prune|connect|disconnect`.
func newNetworkCommand(cli *CLI) *cobra.Command {
	return newManagementCommand("network", "Manage networks",
		newNetworkConnectCommand(cli), newNetworkCreateCommand(cli), newNetworkDisconnectCommand(cli),
		newNetworkInspectCommand(cli), newNetworkLsCommand(cli), newNetworkPruneCommand(cli), newNetworkRmCommand(cli),
	)
}

func newNetworkCreateCommand(cli *CLI) *cobra.Command {
	var (
		req             api.NetworkCreateRequest
		subnet, gateway string
		labels, opts    listValue
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			req.Name, req.Labels, req.Options = args[0], keyValues(labels), keyValues(opts)
			if subnet != "" || gateway != "" {
				req.IPAM = &api.IPAM{Driver: "default", Config: []api.IPAMConfig{{Subnet: subnet, Gateway: gateway}}}
			}
			resp, err := c.NetworkCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cli.Out, resp.ID)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&req.Driver, "driver", "d", "bridge", "Driver to manage the Network: bridge, or overlay (a daemon in a cluster)")
	fs.StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment (default: a free one)")
	fs.StringVar(&gateway, "gateway", "", "IPv4 Gateway for the master subnet (default: the subnet's first)")
	fs.BoolVar(&req.Internal, "internal", false, "Restrict external access to the network")
	fs.Var(&labels, "label", "Set metadata on a network")
	fs.VarP(&opts, "opt", "o", "Set driver specific options")
	return cmd
}

func newNetworkLsCommand(cli *CLI) *cobra.Command {
	var (
		quiet   bool
		filters listValue
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			f, err := client.ParseFilters(filters)
			if err != nil {
				return err
			}
			list, err := c.NetworkList(cmd.Context(), f)
			if err != nil {
				return err
			}
			sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
			if quiet {
				for _, n := range list {
					fmt.Fprintln(cli.Out, shortID(n.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(cli.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE\tSUBNET")
			for _, n := range list {
				subnet := ""
				if len(n.IPAM.Config) > 0 {
					subnet = n.IPAM.Config[0].Subnet
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortID(n.ID), n.Name, n.Driver, n.Scope, subnet)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	cmd.Flags().VarP(&filters, "filter", "f", "Provide filter values (name, id, driver, type=builtin|custom, label)")
	return cmd
}

func newNetworkInspectCommand(cli *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return cli.inspect(format, args, func(n string) (json.RawMessage, error) {
				return c.NetworkInspectRaw(cmd.Context(), n)
			})
		},
		ValidArgsFunction: completeNetworks(cli),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func newNetworkRmCommand(cli *CLI) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return cli.each(args, func(n string) error { return c.NetworkRemove(cmd.Context(), n) })
		},
		ValidArgsFunction: completeNetworks(cli),
	}
}

func newNetworkPruneCommand(cli *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			rep, err := c.NetworksPrune(cmd.Context())
			if err != nil {
				return err
			}
			if len(rep.NetworksDeleted) > 0 {
				fmt.Fprintln(cli.Out, "Deleted Networks:")
				for _, n := range rep.NetworksDeleted {
					fmt.Fprintln(cli.Out, n)
				}
			}
			return nil
		},
	}
	// accepted for docker's sake; minidock's network prune never asks
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

func newNetworkConnectCommand(cli *CLI) *cobra.Command {
	var (
		ip      string
		aliases listValue
	)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			req := api.NetworkConnectRequest{Container: args[1], EndpointConfig: &api.EndpointSettings{Aliases: aliases}}
			if ip != "" {
				req.EndpointConfig.IPAMConfig = &api.EndpointIPAMConfig{IPv4Address: ip}
			}
			return c.NetworkConnect(cmd.Context(), args[0], req)
		},
		ValidArgsFunction: completeNetworks(cli),
	}
	cmd.Flags().StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	cmd.Flags().Var(&aliases, "alias", "Add network-scoped alias for the container")
	return cmd
}

func newNetworkDisconnectCommand(cli *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.client
			return c.NetworkDisconnect(cmd.Context(), args[0], api.NetworkDisconnectRequest{Container: args[1], Force: force})
		},
		ValidArgsFunction: completeNetworks(cli),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
