package client

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"minidock/api"
)

// networkFlags are run's and create's networking flags.
type networkFlags struct {
	network, ip              *string
	publishAll               *bool
	aliases, publish, extras listFlag
}

func addNetworkFlags(fs *flag.FlagSet) *networkFlags {
	nf := &networkFlags{
		network:    fs.String("network", "", "network: bridge (default), a network's NAME, host, none or container:NAME"),
		ip:         fs.String("ip", "", "IPv4 address on the network (user-defined networks only)"),
		publishAll: fs.Bool("P", false, "publish every exposed port on a free host port"),
	}
	fs.Var(&nf.aliases, "network-alias", "another name of the container on the network (repeatable)")
	fs.Var(&nf.publish, "p", "publish [IP:][HOSTPORT:]PORT[/PROTO] (repeatable)")
	fs.Var(&nf.publish, "publish", "same as -p")
	fs.Var(&nf.extras, "add-host", "an /etc/hosts entry NAME:IP (repeatable)")
	return nf
}

// apply puts the flags into a create request, as the docker CLI does: -p
// ports are also exposed; --ip and --network-alias go to the endpoint of
// the --network.
func (nf *networkFlags) apply(req *api.ContainerCreateRequest) error {
	hc := req.HostConfig
	hc.NetworkMode, hc.PublishAllPorts, hc.ExtraHosts = *nf.network, *nf.publishAll, nf.extras
	for _, p := range nf.publish {
		specs, err := api.ParsePortSpec(p)
		if err != nil {
			return err
		}
		for _, spec := range specs {
			if hc.PortBindings == nil {
				hc.PortBindings = map[string][]api.PortBinding{}
			}
			hc.PortBindings[spec.Port()] = append(hc.PortBindings[spec.Port()], spec.Binding())
			if req.ExposedPorts == nil {
				req.ExposedPorts = map[string]struct{}{}
			}
			req.ExposedPorts[spec.Port()] = struct{}{}
		}
	}
	if *nf.ip != "" || len(nf.aliases) > 0 {
		name := *nf.network
		if name == "" {
			name = "bridge"
		}
		es := &api.EndpointSettings{Aliases: nf.aliases}
		if *nf.ip != "" {
			es.IPAMConfig = &api.EndpointIPAMConfig{IPv4Address: *nf.ip}
		}
		req.NetworkingConfig = &api.NetworkingConfig{EndpointsConfig: map[string]*api.EndpointSettings{name: es}}
	}
	return nil
}

// cmdNetwork is `minidock network SUBCOMMAND`.
func cmdNetwork(c *Client, args []string) error {
	subs := map[string]func(*Client, []string) error{
		"create": networkCreate, "ls": networkLs, "list": networkLs, "inspect": networkInspect,
		"rm": networkRm, "remove": networkRm, "prune": networkPrune,
		"connect": networkConnect, "disconnect": networkDisconnect,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprintln(os.Stderr, "usage: minidock network create|ls|inspect|rm|prune|connect|disconnect ...")
		return exitError(2)
	}
	return subs[args[0]](c, args[1:])
}

func networkCreate(c *Client, args []string) error {
	fs := flag.NewFlagSet("minidock network create", flag.ContinueOnError)
	subnet := fs.String("subnet", "", "IPv4 subnet, such as 10.10.0.0/24 (default: a free one)")
	gateway := fs.String("gateway", "", "gateway address (default: the subnet's first)")
	driver := fs.String("d", "bridge", "driver (bridge only)")
	internal := fs.Bool("internal", false, "no traffic in or out of the network, only between its containers")
	var labels, opts listFlag
	fs.Var(&labels, "label", "label KEY=VALUE (repeatable)")
	fs.Var(&opts, "o", "driver option KEY=VALUE (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return exitError(2)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: minidock network create [--subnet CIDR] [--gateway IP] [--internal] NAME")
		return exitError(2)
	}
	req := api.NetworkCreateRequest{Name: fs.Arg(0), Driver: *driver, Internal: *internal,
		Labels: keyValues(labels), Options: keyValues(opts)}
	if *subnet != "" || *gateway != "" {
		req.IPAM = &api.IPAM{Driver: "default", Config: []api.IPAMConfig{{Subnet: *subnet, Gateway: *gateway}}}
	}
	var resp api.NetworkCreateResponse
	if err := c.JSON(context.Background(), "POST", "/networks/create", nil, req, &resp); err != nil {
		return err
	}
	fmt.Println(resp.ID)
	return nil
}

func keyValues(l []string) map[string]string {
	m := map[string]string{}
	for _, kv := range l {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func networkLs(c *Client, args []string) error {
	fs := flag.NewFlagSet("minidock network ls", flag.ContinueOnError)
	quiet := fs.Bool("q", false, "only IDs")
	var filters listFlag
	fs.Var(&filters, "f", "filter KEY=VALUE: name, id, driver, type (builtin|custom), label")
	fs.Var(&filters, "filter", "same as -f")
	if err := parseFlags(fs, args); err != nil {
		return exitError(2)
	}
	q := url.Values{}
	if len(filters) > 0 {
		q.Set("filters", encodeFilters(filters))
	}
	var list []api.Network
	if err := c.JSON(context.Background(), "GET", "/networks", q, nil, &list); err != nil {
		return err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	if *quiet {
		for _, n := range list {
			fmt.Println(n.ID[:12])
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE\tSUBNET")
	for _, n := range list {
		subnet := ""
		if len(n.IPAM.Config) > 0 {
			subnet = n.IPAM.Config[0].Subnet
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.ID[:12], n.Name, n.Driver, n.Scope, subnet)
	}
	return tw.Flush()
}

func networkInspect(c *Client, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: minidock network inspect NETWORK...")
		return exitError(2)
	}
	var out []json.RawMessage
	var firstErr error
	for _, n := range args {
		var raw json.RawMessage
		if err := c.JSON(context.Background(), "GET", "/networks/"+url.PathEscape(n), nil, nil, &raw); err != nil {
			fmt.Fprintln(os.Stderr, err)
			firstErr = exitError(1)
			continue
		}
		out = append(out, raw)
	}
	data, _ := json.MarshalIndent(out, "", "    ")
	fmt.Println(string(data))
	return firstErr
}

func networkRm(c *Client, args []string) error {
	return each(args, func(n string) error {
		return c.JSON(context.Background(), "DELETE", "/networks/"+url.PathEscape(n), nil, nil, nil)
	})
}

func networkPrune(c *Client, args []string) error {
	var report api.NetworksPruneReport
	if err := c.JSON(context.Background(), "POST", "/networks/prune", nil, nil, &report); err != nil {
		return err
	}
	if len(report.NetworksDeleted) > 0 {
		fmt.Println("Deleted Networks:")
		for _, n := range report.NetworksDeleted {
			fmt.Println(n)
		}
	}
	return nil
}

func networkConnect(c *Client, args []string) error {
	fs := flag.NewFlagSet("minidock network connect", flag.ContinueOnError)
	ip := fs.String("ip", "", "IPv4 address on the network")
	var aliases listFlag
	fs.Var(&aliases, "alias", "another name of the container on the network (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return exitError(2)
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: minidock network connect [--ip IP] [--alias NAME] NETWORK CONTAINER")
		return exitError(2)
	}
	req := api.NetworkConnectRequest{Container: fs.Arg(1), EndpointConfig: &api.EndpointSettings{Aliases: aliases}}
	if *ip != "" {
		req.EndpointConfig.IPAMConfig = &api.EndpointIPAMConfig{IPv4Address: *ip}
	}
	return c.JSON(context.Background(), "POST", "/networks/"+url.PathEscape(fs.Arg(0))+"/connect", nil, req, nil)
}

func networkDisconnect(c *Client, args []string) error {
	fs := flag.NewFlagSet("minidock network disconnect", flag.ContinueOnError)
	force := fs.Bool("f", false, "force")
	if err := parseFlags(fs, args); err != nil {
		return exitError(2)
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: minidock network disconnect NETWORK CONTAINER")
		return exitError(2)
	}
	req := api.NetworkDisconnectRequest{Container: fs.Arg(1), Force: *force}
	return c.JSON(context.Background(), "POST", "/networks/"+url.PathEscape(fs.Arg(0))+"/disconnect", nil, req, nil)
}

// cmdPort is `minidock port CONTAINER [PORT[/PROTO]]`: the published
// ports, from the container's inspect, as docker prints them.
func cmdPort(c *Client, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: minidock port CONTAINER [PORT[/PROTO]]")
		return exitError(2)
	}
	var info api.ContainerJSON
	if err := c.JSON(context.Background(), "GET", "/containers/"+url.PathEscape(args[0])+"/json", nil, nil, &info); err != nil {
		return err
	}
	var keys []string
	for k, bs := range info.NetworkSettings.Ports {
		if len(bs) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(args) == 2 {
		want := args[1]
		if !strings.Contains(want, "/") {
			want += "/tcp"
		}
		bs := info.NetworkSettings.Ports[want]
		if len(bs) == 0 {
			return fmt.Errorf("no public port '%s' published for %s", want, args[0])
		}
		for _, b := range bs {
			fmt.Printf("%s:%s\n", b.HostIP, b.HostPort)
		}
		return nil
	}
	for _, k := range keys {
		for _, b := range info.NetworkSettings.Ports[k] {
			fmt.Printf("%s -> %s:%s\n", k, b.HostIP, b.HostPort)
		}
	}
	return nil
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
