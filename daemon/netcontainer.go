package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/api"
	"minidock/bridge"
)

// A container's networking, in the order it happens:
//
//	create  planNetworks     the mode and, for bridges, one Endpoint per network
//	start   prepareNetwork   addresses from IPAM; /etc/hosts, hostname, resolv.conf
//	        (the runtime creates the container in a new network namespace)
//	        wireNetwork      veth pairs into /proc/<pid>/ns/net, published ports, firewall
//	        (the shim starts the process)
//	exit    releaseNetwork   ports, veths and addresses given back
//
// Wiring happens between `runtime create` and `runtime start`, so the
// process never runs without its network, and the namespace dies with the
// container: nothing has to be unpinned.

// netMode is the container's --network: "bridge" (default), a network's
// name, "host", "none" or "container:<id>".
func netMode(hc *api.HostConfig) string {
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		return "bridge"
	}
	return hc.NetworkMode
}

// parsePortKey reads "80/tcp" (the protocol defaults to tcp).
func parsePortKey(k string) (uint16, string, error) {
	port, proto, _ := strings.Cut(k, "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
		return 0, "", badRequest("invalid port %q: want PORT[/tcp|/udp] (no ranges)", k)
	}
	return uint16(n), proto, nil
}

// planNetworks checks a create request's networking and records the
// container's endpoints: one per bridge network named by --network and in
// NetworkingConfig. Callers hold netMu.
func (d *Daemon) planNetworks(c *Container, nc *api.NetworkingConfig, img ocispec.ImageConfig) (warnings []string, err error) {
	hc := &c.HostConfig
	asked := hc.NetworkMode
	mode := netMode(hc)
	hc.NetworkMode = mode
	for k := range img.ExposedPorts {
		if c.Config.ExposedPorts == nil {
			c.Config.ExposedPorts = map[string]struct{}{}
		}
		c.Config.ExposedPorts[k] = struct{}{}
	}
	for k := range c.Config.ExposedPorts {
		if _, _, err := parsePortKey(k); err != nil {
			return nil, err
		}
	}
	for k, bs := range hc.PortBindings {
		if _, _, err := parsePortKey(k); err != nil {
			return nil, err
		}
		for _, b := range bs {
			if b.HostIP != "" {
				if ip, err := netip.ParseAddr(b.HostIP); err != nil || !ip.Is4() {
					return nil, badRequest("invalid host address %q for port %s: IPv4 only", b.HostIP, k)
				}
			}
			if b.HostPort != "" {
				if n, err := strconv.ParseUint(b.HostPort, 10, 16); err != nil || (n == 0 && b.HostPort != "0") {
					return nil, badRequest("invalid host port %q for port %s (ranges are not supported)", b.HostPort, k)
				}
			}
		}
	}
	for _, e := range hc.ExtraHosts {
		if _, _, err := parseExtraHost(e); err != nil {
			return nil, err
		}
	}
	publishes := len(hc.PortBindings) > 0 || hc.PublishAllPorts
	eps := map[string]*api.EndpointSettings{}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if name == asked || name == "default" {
				name = mode // the docker CLI names the default network "default"
			}
			eps[name] = es
		}
	}

	switch {
	case mode == "host" || mode == "none":
		if len(eps) > 1 || (len(eps) == 1 && eps[mode] == nil) {
			return nil, badRequest("container cannot be connected to other networks with network mode %s", mode)
		}
		if publishes {
			warnings = append(warnings, fmt.Sprintf("Published ports are discarded when using %s network mode", mode))
			hc.PortBindings, hc.PublishAllPorts = nil, false
		}
		return warnings, nil
	case strings.HasPrefix(mode, "container:"):
		other, err := d.lookup(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return nil, err
		}
		if other.ID == c.ID {
			return nil, badRequest("cannot join own network namespace")
		}
		if publishes {
			return nil, badRequest("conflicting options: port publishing and the container type network mode")
		}
		if c.Config.Hostname != "" {
			return nil, badRequest("conflicting options: hostname and the network mode")
		}
		hc.NetworkMode = "container:" + other.ID
		return nil, nil
	}

	names := []string{mode}
	for name := range eps {
		if name != mode {
			names = append(names, name)
		}
	}
	sort.Strings(names[1:])
	c.Networks = map[string]*Endpoint{}
	for i, name := range names {
		n, err := d.findNetwork(name)
		if err != nil {
			return nil, err
		}
		if n.Driver != "bridge" {
			return nil, badRequest("container cannot be connected to network %s (driver %s) and others", n.Name, n.Driver)
		}
		if i == 0 {
			hc.NetworkMode = n.Name
		}
		ep, err := newEndpoint(n, eps[name], fmt.Sprintf("eth%d", i))
		if err != nil {
			return nil, err
		}
		c.Networks[n.Name] = ep
	}
	return nil, nil
}

// newEndpoint checks --ip and --network-alias for network n.
func newEndpoint(n *network, es *api.EndpointSettings, ifName string) (*Endpoint, error) {
	ep := &Endpoint{NetworkID: n.ID, IfName: ifName}
	if es == nil {
		return ep, nil
	}
	if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address != "" {
		if !n.userDefined() {
			return nil, badRequest("user specified IP address is supported on user defined networks only")
		}
		ip, err := netip.ParseAddr(es.IPAMConfig.IPv4Address)
		if err != nil || !ip.Is4() || !n.Subnet.Contains(ip) {
			return nil, badRequest("invalid IPv4 address %q: not in network %s's subnet %s", es.IPAMConfig.IPv4Address, n.Name, n.Subnet)
		}
		ep.WantIP = ip
	}
	if len(es.Aliases) > 0 && !n.userDefined() {
		return nil, badRequest("network-scoped aliases are only supported for user-defined networks")
	}
	ep.Aliases = append([]string{}, es.Aliases...)
	return ep, nil
}

// parseExtraHost reads --add-host NAME:IP.
func parseExtraHost(s string) (string, netip.Addr, error) {
	name, ip, ok := strings.Cut(s, ":")
	addr, err := netip.ParseAddr(ip)
	if !ok || name == "" || err != nil {
		return "", netip.Addr{}, badRequest("invalid extra host %q: want NAME:IP", s)
	}
	return name, addr, nil
}

// netPlan is what the OCI config needs of a container's networking.
type netPlan struct {
	hostNS   bool   // the host's network namespace (no namespace of its own)
	join     string // the path of a network namespace to join ("" = a new one)
	hostname string
	etcDir   string // holds hosts, hostname and resolv.conf, bound into the container
}

// endpoints lists a container's endpoints in interface order.
func (c *Container) endpoints() []*Endpoint {
	eps := make([]*Endpoint, 0, len(c.Networks))
	for _, ep := range c.Networks {
		eps = append(eps, ep)
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].IfName < eps[j].IfName })
	return eps
}

// prepareNetwork, at start: addresses from each network's IPAM, and the
// container's /etc/hosts, /etc/hostname and /etc/resolv.conf. On error
// nothing stays allocated.
func (d *Daemon) prepareNetwork(c *Container) (netPlan, error) {
	mode := netMode(&c.HostConfig)
	plan := netPlan{hostname: c.hostname(), etcDir: d.containerDir(c.ID)}
	if strings.HasPrefix(mode, "container:") {
		other, err := d.lookup(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return plan, fmt.Errorf("cannot join network of container: %w", err)
		}
		d.mu.Lock()
		pid, running := other.State.Pid, other.State.Status == "running"
		plan.hostname = other.hostname()
		d.mu.Unlock()
		if !running {
			return plan, conflict("cannot join network namespace of a non running container %s", other.Name)
		}
		plan.join, plan.etcDir = bridge.NetNSPath(pid), d.containerDir(other.ID)
		return plan, nil
	}

	var extra []bridge.HostEntry
	for _, e := range c.HostConfig.ExtraHosts {
		name, ip, _ := parseExtraHost(e)
		extra = append(extra, bridge.HostEntry{IP: ip, Names: []string{name}})
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	var hosts, resolv []byte
	switch mode {
	case "host":
		plan.hostNS = true
		if c.Config.Hostname == "" {
			plan.hostname, _ = os.Hostname()
		}
		hosts, _ = os.ReadFile("/etc/hosts")
		for _, e := range extra {
			hosts = fmt.Appendf(hosts, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
		}
		resolv = hostResolv // the host's resolvers, loopback ones too, are reachable
	case "none":
		hosts = bridge.HostsFile(plan.hostname, nil, extra)
		resolv, _ = bridge.ResolvConf(hostResolv, nil)
	default:
		d.netMu.Lock()
		own, dns, err := d.allocate(c)
		d.netMu.Unlock()
		if err != nil {
			return plan, err
		}
		hosts = bridge.HostsFile(plan.hostname, own, extra)
		resolv, _ = bridge.ResolvConf(hostResolv, dns)
	}
	files := map[string][]byte{"hosts": hosts, "hostname": []byte(plan.hostname + "\n"), "resolv.conf": resolv}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(plan.etcDir, name), data, 0o644); err != nil {
			d.releaseNetwork(c)
			return plan, fmt.Errorf("container %s: write %s: %w", c.ID, name, err)
		}
	}
	return plan, nil
}

// allocate gives each endpoint of c an address; it returns the addresses
// and, when eth0 is on a user-defined network, that network's DNS server.
// Callers hold netMu.
func (d *Daemon) allocate(c *Container) (own, dns []netip.Addr, err error) {
	d.mu.Lock()
	eps := c.endpoints()
	d.mu.Unlock()
	for i, ep := range eps {
		n := d.networks[ep.NetworkID]
		if n == nil {
			err = notFound("network %s of container %s not found (removed?): disconnect it or recreate the container", ep.NetworkID[:12], c.Name)
			break
		}
		if err = n.usable(); err != nil {
			break
		}
		var ip netip.Addr
		if ip, err = n.ipam.Allocate(c.ID, ep.WantIP); err != nil {
			err = fmt.Errorf("network %s: %w", n.Name, err)
			break
		}
		d.mu.Lock()
		ep.IP = netip.PrefixFrom(ip, n.Subnet.Bits())
		d.mu.Unlock()
		own = append(own, ip)
		if i == 0 && n.userDefined() {
			dns = []netip.Addr{n.Gateway}
		}
	}
	if err != nil {
		d.releaseAddresses(c)
	}
	return own, dns, err
}

// wireNetwork, between `runtime create` and `runtime start`: each endpoint's
// veth pair into the init's network namespace (eth0 with the default
// route), the published ports held and the firewall applied. --network
// none only gets lo up. On error the caller releases (releaseNetwork).
func (d *Daemon) wireNetwork(c *Container, pid int) error {
	mode := netMode(&c.HostConfig)
	nsPath := bridge.NetNSPath(pid)
	switch {
	case mode == "none":
		return bridge.LoopbackUp(nsPath)
	case mode == "host" || strings.HasPrefix(mode, "container:"):
		return nil
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	d.mu.Lock()
	eps := c.endpoints()
	d.mu.Unlock()
	for i, ep := range eps {
		if err := d.attach(c, ep, nsPath, i == 0); err != nil {
			return err
		}
		d.emitNetwork(d.networks[ep.NetworkID], "connect", c.ID)
	}
	ports, err := c.wantedPorts()
	if err != nil {
		return err
	}
	if len(ports) == 0 {
		return nil
	}
	var held []PublishedPort
	for _, p := range ports {
		r, err := bridge.ReservePort(p.Proto, p.HostIP, p.HostPort)
		if err != nil {
			return err
		}
		d.ports[c.ID] = append(d.ports[c.ID], r)
		p.HostPort = r.Port
		held = append(held, p)
	}
	d.mu.Lock()
	c.Ports = held
	d.mu.Unlock()
	return d.applyRules()
}

// attach plugs ep into the namespace at nsPath. Callers hold netMu.
func (d *Daemon) attach(c *Container, ep *Endpoint, nsPath string, withRoute bool) error {
	n := d.networks[ep.NetworkID]
	if n == nil {
		return notFound("network %s not found", ep.NetworkID)
	}
	bep := bridge.Endpoint{Bridge: n.Bridge, HostIf: vethName(c, n), NetNS: nsPath, IfName: ep.IfName,
		Address: ep.IP, MAC: bridge.MACFor(ep.IP.Addr())}
	if withRoute && !n.Internal {
		bep.Gateway = n.Gateway
	}
	return bridge.Attach(bep)
}

func vethName(c *Container, n *network) string { return bridge.VethName(c.ID + n.ID) }

// wantedPorts lists the ports to publish: -p bindings, and with -P every
// exposed port without one (on a free host port).
func (c *Container) wantedPorts() ([]PublishedPort, error) {
	var out []PublishedPort
	keys := make([]string, 0, len(c.HostConfig.PortBindings))
	for k := range c.HostConfig.PortBindings {
		keys = append(keys, k)
	}
	if c.HostConfig.PublishAllPorts {
		for k := range c.Config.ExposedPorts {
			if len(c.HostConfig.PortBindings[k]) == 0 {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		port, proto, err := parsePortKey(k)
		if err != nil {
			return nil, err
		}
		bs := c.HostConfig.PortBindings[k]
		if len(bs) == 0 {
			bs = []api.PortBinding{{}}
		}
		for _, b := range bs {
			p := PublishedPort{Proto: proto, ContainerPort: port}
			if b.HostIP != "" {
				p.HostIP, _ = netip.ParseAddr(b.HostIP)
			}
			if b.HostPort != "" {
				n, _ := strconv.ParseUint(b.HostPort, 10, 16)
				p.HostPort = uint16(n)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// releaseNetwork, when a container stops (or fails to start): its ports,
// veths and addresses are given back, and the firewall loses its rules.
// It is idempotent.
func (d *Daemon) releaseNetwork(c *Container) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	for _, r := range d.ports[c.ID] {
		r.Close()
	}
	delete(d.ports, c.ID)
	d.mu.Lock()
	hadPorts := len(c.Ports) > 0
	c.Ports = nil
	eps := c.endpoints()
	d.mu.Unlock()
	for _, ep := range eps {
		if n := d.networks[ep.NetworkID]; n != nil && n.Driver == "bridge" && ep.IP.IsValid() {
			d.emitNetwork(n, "disconnect", c.ID)
			// gone already when the namespace died; not when the start failed
			if err := bridge.Detach(vethName(c, n)); err != nil {
				fmt.Fprintln(os.Stderr, "minidock daemon:", err)
			}
		}
	}
	d.releaseAddresses(c)
	if hadPorts {
		if err := d.applyRules(); err != nil {
			fmt.Fprintln(os.Stderr, "minidock daemon:", err)
		}
	}
}

// releaseAddresses gives c's addresses back. Callers hold netMu.
func (d *Daemon) releaseAddresses(c *Container) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ep := range c.Networks {
		if n := d.networks[ep.NetworkID]; n != nil && n.ipam != nil && ep.IP.IsValid() {
			if err := n.ipam.Release(ep.IP.Addr()); err != nil {
				fmt.Fprintln(os.Stderr, "minidock daemon:", err)
			}
		}
		ep.IP = netip.Prefix{}
	}
}

// endpointID is a stable ID for c's endpoint on n.
func endpointID(c *Container, n *network) string {
	sum := sha256.Sum256([]byte(c.ID + "/" + n.ID))
	return hex.EncodeToString(sum[:])
}

// networkSettings is NetworkSettings of an inspect. Callers hold d.mu.
func (d *Daemon) networkSettings(c *Container) *api.NetworkSettings {
	ns := &api.NetworkSettings{Ports: map[string][]api.PortBinding{}, Networks: map[string]*api.EndpointSettings{}}
	running := c.State.Status == "running"
	if running {
		ns.SandboxKey = bridge.NetNSPath(c.State.Pid)
	}
	mode := netMode(&c.HostConfig)
	if mode == "host" || mode == "none" {
		for _, n := range d.networks {
			if n.Name == mode {
				ns.Networks[mode] = &api.EndpointSettings{NetworkID: n.ID, EndpointID: endpointID(c, n)}
			}
		}
	}
	for name, ep := range c.Networks {
		n := d.networks[ep.NetworkID]
		if n == nil {
			continue
		}
		es := &api.EndpointSettings{NetworkID: n.ID, Aliases: ep.Aliases}
		if ep.WantIP.IsValid() {
			es.IPAMConfig = &api.EndpointIPAMConfig{IPv4Address: ep.WantIP.String()}
		}
		if n.userDefined() {
			es.DNSNames = append([]string{c.Name, c.ID[:12]}, ep.Aliases...)
		}
		if ep.IP.IsValid() {
			es.EndpointID = endpointID(c, n)
			es.IPAddress, es.IPPrefixLen = ep.IP.Addr().String(), ep.IP.Bits()
			es.Gateway = n.Gateway.String()
			es.MacAddress = bridge.MACFor(ep.IP.Addr()).String()
		}
		ns.Networks[name] = es
		if name == "bridge" {
			ns.Bridge = n.Bridge
			ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress = es.IPAddress, es.IPPrefixLen, es.Gateway, es.MacAddress
		}
	}
	for k := range c.Config.ExposedPorts {
		ns.Ports[k] = nil
	}
	for _, p := range c.Ports {
		k := fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)
		ip := "0.0.0.0"
		if p.HostIP.IsValid() {
			ip = p.HostIP.String()
		}
		ns.Ports[k] = append(ns.Ports[k], api.PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(p.HostPort))})
	}
	return ns
}

// summaryPorts is Ports of a container list. Callers hold d.mu.
func summaryPorts(c *Container) []api.Port {
	out := []api.Port{}
	published := map[string]bool{}
	for _, p := range c.Ports {
		ip := "0.0.0.0"
		if p.HostIP.IsValid() {
			ip = p.HostIP.String()
		}
		out = append(out, api.Port{IP: ip, PrivatePort: p.ContainerPort, PublicPort: p.HostPort, Type: p.Proto})
		published[fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)] = true
	}
	for k := range c.Config.ExposedPorts {
		if port, proto, err := parsePortKey(k); err == nil && !published[fmt.Sprintf("%d/%s", port, proto)] {
			out = append(out, api.Port{PrivatePort: port, Type: proto})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PrivatePort < out[j].PrivatePort })
	return out
}
