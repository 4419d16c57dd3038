package network

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"minidock/api"
	"minidock/bridge"
	"minidock/cluster"
	"minidock/internal/errdefs"
	"minidock/internal/trace"
)

// Endpoint is a container's place on one bridge network, saved with the
// container. IP is set while the container runs.
type Endpoint struct {
	NetworkID string
	IfName    string // eth0, eth1, ... inside the container
	Aliases   []string
	WantIP    netip.Addr   `json:",omitzero"` // --ip
	IP        netip.Prefix `json:",omitzero"`
}

// PublishedPort is a published port while its container runs.
type PublishedPort struct {
	Proto         string
	HostIP        netip.Addr `json:",omitzero"`
	HostPort      uint16
	ContainerPort uint16
}

// Sandbox is a container's networking as the daemon hands it over: its
// record's fields, copied. The controller fills in what it gives (the
// endpoints' addresses, the held ports) and keeps a copy of its own for
// the containers that hold addresses; it never keeps the caller's.
type Sandbox struct {
	ContainerID string
	Name        string
	Hostname    string // -h; "": the short ID, or with the host's network the host's name
	// Mode is HostConfig.NetworkMode as Plan leaves it: a bridge
	// network's name, "host", "none" or "container:<id>".
	Mode      string
	Endpoints map[string]*Endpoint // bridge networks, by network name
	Ports     []PublishedPort      // held while it runs
	// GatewayIf is the container's interface on the overlay networks'
	// gateway bridge (connectGateway), "" if it has none.
	GatewayIf string

	// what a start needs of the container's config
	PortBindings map[string][]api.PortBinding
	PublishAll   bool
	ExposedPorts map[string]struct{}
	ExtraHosts   []string
	// --dns, --dns-search, --dns-option (checked by Plan)
	DNS, DNSSearch, DNSOptions []string
	// EtcDir is where Join writes the container's hosts, hostname and
	// resolv.conf.
	EtcDir string
	// Trace is the container's trace (docs/trace.md): addresses
	// allocated, veth pairs made, the firewall applied. nil: none.
	Trace *trace.Tracer `json:"-"`
}

// clone copies sb deeply enough that the copy's endpoints and ports can
// change without the original seeing it.
func (sb *Sandbox) clone() *Sandbox {
	out := *sb
	out.Endpoints = map[string]*Endpoint{}
	for k, ep := range sb.Endpoints {
		cp := *ep
		out.Endpoints[k] = &cp
	}
	out.Ports = slices.Clone(sb.Ports)
	return &out
}

// endpoints lists the sandbox's endpoints in interface order.
func (sb *Sandbox) endpoints() []*Endpoint {
	eps := slices.Collect(maps.Values(sb.Endpoints))
	sort.Slice(eps, func(i, j int) bool { return eps[i].IfName < eps[j].IfName })
	return eps
}

// Mode is the container's --network: "bridge" (default), a network's
// name, "host", "none" or "container:<id>".
func Mode(hc *api.HostConfig) string {
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		return "bridge"
	}
	return hc.NetworkMode
}

// ParsePortKey reads "80/tcp" (the protocol defaults to tcp).
func ParsePortKey(k string) (uint16, string, error) {
	port, proto, _ := strings.Cut(k, "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
		return 0, "", errdefs.Invalidf("invalid port %q: want PORT[/tcp|/udp] (no ranges)", k)
	}
	return uint16(n), proto, nil
}

// Plan checks the networking of a container being created: its ports,
// extra hosts, mode and NetworkingConfig. It sets hc.NetworkMode to what
// the container will use (a network's name, host, none, or
// container:<id>, the other container's ID found by otherID) and returns
// the container's endpoints, one per bridge network, eth0 on the mode's.
func (c *Controller) Plan(id string, cfg *api.ContainerConfig, hc *api.HostConfig, nc *api.NetworkingConfig,
	otherID func(ref string) (string, error)) (eps map[string]*Endpoint, warnings []string, err error) {
	asked := hc.NetworkMode
	mode := Mode(hc)
	hc.NetworkMode = mode
	for k := range cfg.ExposedPorts {
		if _, _, err := ParsePortKey(k); err != nil {
			return nil, nil, err
		}
	}
	for k, bs := range hc.PortBindings {
		if _, _, err := ParsePortKey(k); err != nil {
			return nil, nil, err
		}
		for _, b := range bs {
			if b.HostIP != "" {
				if ip, err := netip.ParseAddr(b.HostIP); err != nil || !ip.Is4() {
					return nil, nil, errdefs.Invalidf("invalid host address %q for port %s: IPv4 only", b.HostIP, k)
				}
			}
			if b.HostPort != "" {
				if _, err := strconv.ParseUint(b.HostPort, 10, 16); err != nil {
					return nil, nil, errdefs.Invalidf("invalid host port %q for port %s (ranges are not supported)", b.HostPort, k)
				}
			}
		}
	}
	if err := checkNames(cfg, hc); err != nil {
		return nil, nil, err
	}
	publishes := len(hc.PortBindings) > 0 || hc.PublishAllPorts
	asks := map[string]*api.EndpointSettings{}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if name == asked || name == "default" {
				name = mode // the docker CLI names the default network "default"
			}
			asks[name] = es
		}
	}

	switch {
	case mode == "host" || mode == "none":
		if len(asks) > 1 || (len(asks) == 1 && asks[mode] == nil) {
			return nil, nil, errdefs.Invalidf("container cannot be connected to other networks with network mode %s", mode)
		}
		if publishes {
			warnings = append(warnings, fmt.Sprintf("Published ports are discarded when using %s network mode", mode))
			hc.PortBindings, hc.PublishAllPorts = nil, false
		}
		return nil, warnings, nil
	case strings.HasPrefix(mode, "container:"):
		other, err := otherID(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return nil, nil, err
		}
		if other == id {
			return nil, nil, errdefs.Invalidf("cannot join own network namespace")
		}
		if publishes {
			return nil, nil, errdefs.Invalidf("conflicting options: port publishing and the container type network mode")
		}
		if cfg.Hostname != "" {
			return nil, nil, errdefs.Invalidf("conflicting options: hostname and the network mode")
		}
		hc.NetworkMode = "container:" + other
		return nil, nil, nil
	}

	names := []string{mode}
	for name := range asks {
		if name != mode {
			names = append(names, name)
		}
	}
	sort.Strings(names[1:])
	for _, name := range names {
		c.lookup(name) // an overlay network made elsewhere a moment ago is known from here on
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	eps = map[string]*Endpoint{}
	for i, name := range names {
		n, err := c.find(name)
		if err != nil {
			return nil, nil, err
		}
		if n.Driver != "bridge" && n.Driver != "overlay" {
			return nil, nil, errdefs.Invalidf("container cannot be connected to network %s (driver %s) and others", n.Name, n.Driver)
		}
		if i == 0 {
			hc.NetworkMode = n.Name
			if len(hc.DNS) > 0 && n.userDefined() {
				return nil, nil, errdefs.Invalidf("--dns on user-defined network %s is not supported: its embedded DNS server answers the container and forwards to the daemon's --dns", n.Name)
			}
		}
		ep, err := newEndpoint(n, asks[name], fmt.Sprintf("eth%d", i))
		if err != nil {
			return nil, nil, err
		}
		eps[n.Name] = ep
	}
	return eps, nil, nil
}

// newEndpoint checks --ip and --network-alias for network n.
func newEndpoint(n *Network, es *api.EndpointSettings, ifName string) (*Endpoint, error) {
	ep := &Endpoint{NetworkID: n.ID, IfName: ifName}
	if es == nil {
		return ep, nil
	}
	if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address != "" {
		if !n.userDefined() {
			return nil, errdefs.Invalidf("user specified IP address is supported on user defined networks only")
		}
		ip, err := netip.ParseAddr(es.IPAMConfig.IPv4Address)
		if err != nil || !ip.Is4() || !n.Subnet.Contains(ip) {
			return nil, errdefs.Invalidf("invalid IPv4 address %q: not in network %s's subnet %s", es.IPAMConfig.IPv4Address, n.Name, n.Subnet)
		}
		ep.WantIP = ip
	}
	if len(es.Aliases) > 0 && !n.userDefined() {
		return nil, errdefs.Invalidf("network-scoped aliases are only supported for user-defined networks")
	}
	ep.Aliases = append([]string{}, es.Aliases...)
	return ep, nil
}

// parseExtraHost reads --add-host NAME:IP.
func parseExtraHost(s string) (string, netip.Addr, error) {
	name, ip, ok := strings.Cut(s, ":")
	addr, err := netip.ParseAddr(ip)
	if !ok || name == "" || err != nil {
		return "", netip.Addr{}, errdefs.Invalidf("invalid extra host %q: want NAME:IP", s)
	}
	return name, addr, nil
}

// Spec is what a container's OCI config needs of its networking.
type Spec struct {
	HostNS   bool   // the host's network namespace: none of its own
	Join     string // the path of a namespace to join ("" = a new one)
	Hostname string
	EtcDir   string // holds hosts, hostname and resolv.conf, bound over /etc's
}

// Join, at start, before the runtime creates the container: an address
// on each of the sandbox's networks (set in sb.Endpoints) and the
// container's hosts, hostname and resolv.conf in sb.EtcDir. A container
// in another's namespace (container:) does not join: the daemon gives
// it the other's Spec. On error nothing stays allocated.
func (c *Controller) Join(sb *Sandbox) (Spec, error) {
	spec := Spec{Hostname: sb.Hostname, EtcDir: sb.EtcDir}
	if spec.Hostname == "" && sb.Mode != "host" {
		spec.Hostname = sb.ContainerID[:12]
	}
	var extra []bridge.HostEntry
	for _, e := range sb.ExtraHosts {
		name, ip, _ := parseExtraHost(e)
		extra = append(extra, bridge.HostEntry{IP: ip, Names: []string{name}})
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	var hosts, resolv []byte
	switch sb.Mode {
	case "host":
		spec.HostNS = true
		if spec.Hostname == "" {
			spec.Hostname, _ = os.Hostname()
		}
		hosts, _ = os.ReadFile("/etc/hosts")
		for _, e := range extra {
			hosts = fmt.Appendf(hosts, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
		}
		resolv = hostResolv // the host's resolvers, loopback ones too, are reachable
		if len(sb.DNS) > 0 {
			resolv, _ = bridge.ResolvConf(hostResolv, dnsServers(sb.DNS))
		}
	case "none":
		hosts = bridge.HostsFile(spec.Hostname, nil, extra)
		resolv, _ = bridge.ResolvConf(hostResolv, dnsServers(sb.DNS))
	default:
		own, dns, err := c.allocate(sb)
		if err != nil {
			return spec, err
		}
		hosts = bridge.HostsFile(spec.Hostname, own, extra)
		if len(dns) == 0 {
			dns = dnsServers(sb.DNS)
		}
		resolv, _ = bridge.ResolvConf(hostResolv, dns)
	}
	resolv = withSearchAndOptions(resolv, sb.DNSSearch, sb.DNSOptions)
	c.mu.Lock()
	c.sandboxes[sb.ContainerID] = sb.clone()
	c.mu.Unlock()
	files := map[string][]byte{"hosts": hosts, "hostname": []byte(spec.Hostname + "\n"), "resolv.conf": resolv}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(spec.EtcDir, name), data, 0o644); err != nil {
			c.Leave(sb)
			return spec, fmt.Errorf("container %s: write %s: %w", sb.ContainerID, name, err)
		}
	}
	return spec, nil
}

// allocate gives each endpoint of sb an address (an overlay network's
// from the cluster, reserveOverlay, without the lock); it returns the
// addresses and, when eth0 is on a user-defined network, that network's
// DNS server.
func (c *Controller) allocate(sb *Sandbox) (own, dns []netip.Addr, err error) {
	dns, overlays, err := c.allocateLocal(sb)
	if err == nil && len(overlays) > 0 {
		if err = c.reserveOverlay(sb, overlays); err != nil {
			c.mu.Lock()
			release := c.leaveOverlays(sb, "")
			c.releaseAddresses(sb)
			c.mu.Unlock()
			c.releaseInCluster(release)
		}
	}
	for _, ep := range sb.endpoints() {
		if ep.IP.IsValid() {
			own = append(own, ep.IP.Addr())
		}
	}
	return own, dns, err
}

// allocateLocal gives each endpoint on a bridge network an address from
// the network's IPAM, and returns the overlay endpoints.
func (c *Controller) allocateLocal(sb *Sandbox) (dns []netip.Addr, overlays []*Endpoint, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ep := range sb.endpoints() {
		n := c.networks[ep.NetworkID]
		if n == nil {
			err = errdefs.NotFoundf("network %s of container %s not found (removed?): disconnect it or recreate the container", ep.NetworkID[:12], sb.Name)
			break
		}
		if err = n.usable(); err != nil {
			break
		}
		if i == 0 && n.userDefined() {
			dns = []netip.Addr{n.Gateway}
		}
		if n.Driver == "overlay" {
			overlays = append(overlays, ep)
			continue
		}
		var ip netip.Addr
		if ip, err = n.ipam.Allocate(sb.ContainerID, ep.WantIP); err != nil {
			err = fmt.Errorf("network %s: %w", n.Name, err)
			break
		}
		ep.IP = netip.PrefixFrom(ip, n.Subnet.Bits())
		sb.Trace.CallResult("join", "ipam allocate", fmt.Sprintf("network %s (%s, bridge %s)", n.Name, n.Subnet, n.Bridge), ep.IP.String(), "the container's address, recorded under the network's state")
	}
	if err != nil {
		c.releaseAddresses(sb)
	}
	return dns, overlays, err
}

// Wire, between the runtime's create and start: each endpoint's veth pair
// into the namespace of the created init (eth0 with the default route),
// the published ports held (set in sb.Ports) and the firewall applied.
// --network none only gets lo up. On error the caller calls Leave.
func (c *Controller) Wire(sb *Sandbox, pid int) error {
	nsPath := bridge.NetNSPath(pid)
	switch {
	case sb.Mode == "none":
		return bridge.LoopbackUp(nsPath, sb.Trace)
	case sb.Mode == "host" || strings.HasPrefix(sb.Mode, "container:"):
		return nil
	}
	c.waitDetached(sb.ContainerID)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ep := range sb.endpoints() {
		if err := c.attach(sb, ep, nsPath, i == 0); err != nil {
			return err
		}
		c.cfg.Event(c.networks[ep.NetworkID], "connect", sb.ContainerID)
	}
	if err := c.connectGateway(sb, nsPath); err != nil {
		return err
	}
	c.sandboxes[sb.ContainerID] = sb.clone()
	ports, err := sb.wantedPorts()
	if err != nil || len(ports) == 0 {
		return err
	}
	sb.Ports = nil
	for _, p := range ports {
		r, err := bridge.ReservePort(p.Proto, p.HostIP, p.HostPort)
		if err := sb.Trace.Call("wire", "bind", fmt.Sprintf("%s %s:%d", p.Proto, p.HostIP, p.HostPort), "hold the published port, so no other program takes it", err); err != nil {
			return err
		}
		c.ports[sb.ContainerID] = append(c.ports[sb.ContainerID], r)
		p.HostPort = r.Port
		sb.Ports = append(sb.Ports, p)
	}
	c.sandboxes[sb.ContainerID] = sb.clone()
	return c.applyRules(sb.Trace)
}

// attach plugs ep into the namespace at nsPath. Callers hold mu.
func (c *Controller) attach(sb *Sandbox, ep *Endpoint, nsPath string, withRoute bool) error {
	n := c.networks[ep.NetworkID]
	if n == nil {
		return errdefs.NotFoundf("network %s not found", ep.NetworkID)
	}
	if n.Driver == "overlay" {
		return c.attachOverlay(sb, ep, n, nsPath)
	}
	bep := bridge.Endpoint{Bridge: n.Bridge, HostIf: vethName(sb.ContainerID, n), NetNS: nsPath, IfName: ep.IfName,
		Address: ep.IP, MAC: bridge.MACFor(ep.IP.Addr()), Trace: sb.Trace}
	if withRoute && !n.Internal {
		bep.Gateway = n.Gateway
	}
	return bridge.Attach(bep)
}

// vethName is the host end's name of container id's veth on n: a hash,
// so that a restarted daemon finds it again.
func vethName(id string, n *Network) string { return bridge.VethName(id + n.ID) }

// wantedPorts lists the ports to publish: -p bindings, and with -P every
// exposed port without one (on a free host port).
func (sb *Sandbox) wantedPorts() ([]PublishedPort, error) {
	var out []PublishedPort
	keys := slices.Collect(maps.Keys(sb.PortBindings))
	if sb.PublishAll {
		for k := range sb.ExposedPorts {
			if len(sb.PortBindings[k]) == 0 {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		port, proto, err := ParsePortKey(k)
		if err != nil {
			return nil, err
		}
		bs := sb.PortBindings[k]
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

// Leave, when a container has stopped (or failed to start): its ports,
// veths and addresses are given back (cleared in sb), and the firewall
// loses its rules. It is idempotent.
func (c *Controller) Leave(sb *Sandbox) {
	c.mu.Lock()
	release := c.leave(sb)
	c.mu.Unlock()
	c.releaseInCluster(release)
}

// leave is Leave under mu; it returns the overlay endpoints to remove
// from the cluster, without the lock.
func (c *Controller) leave(sb *Sandbox) []cluster.Endpoint {
	for _, r := range c.ports[sb.ContainerID] {
		r.Close()
	}
	delete(c.ports, sb.ContainerID)
	hadPorts := len(sb.Ports) > 0
	if kept := c.sandboxes[sb.ContainerID]; kept != nil {
		hadPorts = hadPorts || len(kept.Ports) > 0
	}
	delete(c.sandboxes, sb.ContainerID)
	sb.Ports = nil
	for _, ep := range sb.endpoints() {
		if n := c.networks[ep.NetworkID]; n != nil && n.Driver == "bridge" && ep.IP.IsValid() {
			c.cfg.Event(n, "disconnect", sb.ContainerID)
			sb.Trace.Call("leave", "RTM_DELLINK", vethName(sb.ContainerID, n)+" (in the background)", "delete the veth pair; its peer in the container goes with it", nil)
			c.detach(sb.ContainerID, vethName(sb.ContainerID, n))
		}
	}
	release := c.leaveOverlays(sb, "")
	c.releaseAddresses(sb)
	if hadPorts {
		if err := c.applyRules(sb.Trace); err != nil {
			c.cfg.Log.Print(err)
		}
	}
	return release
}

// detachment is a veth pair being deleted: done is closed when it is.
type detachment struct {
	containerID string
	done        chan struct{}
}

// detach deletes container id's veth pair hostIf in the background: the
// kernel deletes it too when the container's namespace dies, and either
// way the deletion waits for an RCU grace period (some 15 ms), which an
// exit, and `docker run --rm` waiting for it, need not wait for. The
// container's next start or connect, which may need the name again,
// waits for it (waitDetached). Callers hold mu.
func (c *Controller) detach(id, hostIf string) {
	if _, busy := c.detaching[hostIf]; busy {
		return
	}
	done := make(chan struct{})
	c.detaching[hostIf] = detachment{id, done}
	go func() {
		// gone already when the namespace died; not when the start failed
		if err := bridge.Detach(hostIf); err != nil {
			c.cfg.Log.Print(err)
		}
		c.mu.Lock()
		delete(c.detaching, hostIf)
		c.mu.Unlock()
		close(done)
	}()
}

// waitDetached waits until container id's veths being deleted are gone
// ("": everyone's). Callers do not hold mu.
func (c *Controller) waitDetached(id string) {
	c.mu.Lock()
	var pending []chan struct{}
	for _, d := range c.detaching {
		if id == "" || d.containerID == id {
			pending = append(pending, d.done)
		}
	}
	c.mu.Unlock()
	for _, done := range pending {
		<-done
	}
}

// releaseAddresses gives sb's addresses back. Callers hold mu.
func (c *Controller) releaseAddresses(sb *Sandbox) {
	for _, ep := range sb.Endpoints {
		if n := c.networks[ep.NetworkID]; n != nil && n.ipam != nil && ep.IP.IsValid() {
			if err := n.ipam.Release(ep.IP.Addr()); err != nil {
				c.cfg.Log.Print(err)
			}
		}
		ep.IP = netip.Prefix{}
	}
}

// Connect adds an endpoint on network ref to sb (eth1, ...); a running
// container (pid > 0) is wired at once, without a default route.
func (c *Controller) Connect(sb *Sandbox, ref string, es *api.EndpointSettings, pid int) error {
	c.waitDetached(sb.ContainerID)
	if n, err := c.lookup(ref); err == nil && n.Driver == "overlay" {
		return c.connectOverlay(sb, n, es, pid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.find(ref)
	if err != nil {
		return err
	}
	if n.Driver != "bridge" {
		return errdefs.Forbiddenf("container cannot be connected to the %s network", n.Name)
	}
	if err := n.usable(); err != nil {
		return err
	}
	if err := sb.checkConnect(n); err != nil {
		return err
	}
	ep, err := newEndpoint(n, es, sb.nextIfName())
	if err != nil {
		return err
	}
	if pid > 0 {
		ip, err := n.ipam.Allocate(sb.ContainerID, ep.WantIP)
		if err != nil {
			return err
		}
		ep.IP = netip.PrefixFrom(ip, n.Subnet.Bits())
		if err := c.attach(sb, ep, bridge.NetNSPath(pid), false); err != nil {
			n.ipam.Release(ip)
			return err
		}
	}
	c.addEndpoint(sb, n, ep, pid > 0)
	return nil
}

// addEndpoint records sb's new endpoint ep on n; for a running container
// (wired), the connect is known and told. Callers hold mu.
func (c *Controller) addEndpoint(sb *Sandbox, n *Network, ep *Endpoint, wired bool) {
	if sb.Endpoints == nil {
		sb.Endpoints = map[string]*Endpoint{}
	}
	sb.Endpoints[n.Name] = ep
	if wired {
		c.sandboxes[sb.ContainerID] = sb.clone()
		c.cfg.Event(n, "connect", sb.ContainerID)
	}
}

// Disconnect removes sb's endpoint on network ref (detached and its
// address released if it has one); sb.Mode becomes another network's,
// or "none" when none is left, as in Docker.
func (c *Controller) Disconnect(sb *Sandbox, ref string) error {
	if n, err := c.lookup(ref); err == nil && n.Driver == "overlay" {
		return c.disconnectOverlay(sb, n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.find(ref)
	if err != nil {
		return err
	}
	ep := sb.Endpoints[n.Name]
	if ep == nil {
		return errdefs.Forbiddenf("container %s is not connected to network %s", sb.Name, n.Name)
	}
	if ep.IP.IsValid() {
		if err := bridge.Detach(vethName(sb.ContainerID, n)); err != nil {
			return err
		}
		if n.ipam != nil {
			n.ipam.Release(ep.IP.Addr())
		}
		c.cfg.Event(n, "disconnect", sb.ContainerID)
	}
	return c.dropEndpoint(sb, n)
}

// checkConnect refuses to connect sb to n when its mode has no networks
// of its own, or when it is on n already.
func (sb *Sandbox) checkConnect(n *Network) error {
	if sb.Mode == "host" || sb.Mode == "none" || strings.HasPrefix(sb.Mode, "container:") {
		return errdefs.Forbiddenf("container %s has network mode %s: it cannot be connected to other networks", sb.Name, sb.Mode)
	}
	if sb.Endpoints[n.Name] != nil {
		return errdefs.Forbiddenf("endpoint with name %s already exists in network %s", sb.Name, n.Name)
	}
	return nil
}

// nextIfName is the first ethN that none of sb's interfaces has (its
// endpoints', its gateway interface).
func (sb *Sandbox) nextIfName() string {
	used := map[string]bool{sb.GatewayIf: true}
	for _, ep := range sb.Endpoints {
		used[ep.IfName] = true
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			return name
		}
	}
}

// dropEndpoint, once sb's endpoint on n is undone, removes it; sb.Mode
// becomes another network's, or "none" when none is left, as in Docker.
// Callers hold mu.
func (c *Controller) dropEndpoint(sb *Sandbox, n *Network) error {
	delete(sb.Endpoints, n.Name)
	if len(sb.Endpoints) == 0 {
		sb.Mode = "none"
	} else if sb.Mode == n.Name {
		sb.Mode = sb.firstNetwork()
	}
	if _, ok := c.sandboxes[sb.ContainerID]; ok {
		c.sandboxes[sb.ContainerID] = sb.clone()
		if len(sb.Ports) > 0 {
			return c.applyRules(nil)
		}
	}
	return nil
}

// firstNetwork names the network of sb's first interface.
func (sb *Sandbox) firstNetwork() string {
	first := ""
	for name, ep := range sb.Endpoints {
		if first == "" || ep.IfName < sb.Endpoints[first].IfName {
			first = name
		}
	}
	return first
}

// Rename tells the DNS server a container's new name.
func (c *Controller) Rename(id, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sb := c.sandboxes[id]; sb != nil {
		sb.Name = name
	}
}

// primaryEndpoint is the endpoint published ports lead to: eth0's.
// Callers hold mu.
func (c *Controller) primaryEndpoint(sb *Sandbox) (*Network, *Endpoint) {
	for _, ep := range sb.endpoints() {
		if n := c.networks[ep.NetworkID]; n != nil {
			return n, ep
		}
	}
	return nil, nil
}

// endpointID is a stable ID for container id's endpoint on n.
func endpointID(id string, n *Network) string {
	sum := sha256.Sum256([]byte(id + "/" + n.ID))
	return hex.EncodeToString(sum[:])
}

// Settings is NetworkSettings of a container's inspect; pid is its
// init's while it runs, else 0.
func (c *Controller) Settings(sb *Sandbox, pid int) *api.NetworkSettings {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns := &api.NetworkSettings{Ports: map[string][]api.PortBinding{}, Networks: map[string]*api.EndpointSettings{}}
	if pid > 0 {
		ns.SandboxKey = bridge.NetNSPath(pid)
	}
	if sb.Mode == "host" || sb.Mode == "none" {
		for _, n := range c.networks {
			if n.Name == sb.Mode {
				ns.Networks[sb.Mode] = &api.EndpointSettings{NetworkID: n.ID, EndpointID: endpointID(sb.ContainerID, n)}
			}
		}
	}
	for name, ep := range sb.Endpoints {
		n := c.networks[ep.NetworkID]
		if n == nil {
			continue
		}
		es := &api.EndpointSettings{NetworkID: n.ID, Aliases: ep.Aliases}
		if ep.WantIP.IsValid() {
			es.IPAMConfig = &api.EndpointIPAMConfig{IPv4Address: ep.WantIP.String()}
		}
		if n.userDefined() {
			es.DNSNames = append([]string{sb.Name, sb.ContainerID[:12]}, ep.Aliases...)
		}
		if ep.IP.IsValid() {
			es.EndpointID = endpointID(sb.ContainerID, n)
			es.IPAddress, es.IPPrefixLen = ep.IP.Addr().String(), ep.IP.Bits()
			if n.Driver != "overlay" { // an overlay's gateway is no router: the way out is the gateway bridge
				es.Gateway = n.Gateway.String()
			}
			es.MacAddress = bridge.MACFor(ep.IP.Addr()).String()
		}
		ns.Networks[name] = es
		if name == "bridge" {
			ns.Bridge = n.Bridge
			ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress = es.IPAddress, es.IPPrefixLen, es.Gateway, es.MacAddress
		}
	}
	for k := range sb.ExposedPorts {
		ns.Ports[k] = nil
	}
	for _, p := range sb.Ports {
		k := fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)
		ip := "0.0.0.0"
		if p.HostIP.IsValid() {
			ip = p.HostIP.String()
		}
		ns.Ports[k] = append(ns.Ports[k], api.PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(p.HostPort))})
	}
	return ns
}

// SummaryPorts is Ports of a container list: the published ports, then
// the exposed ones not published.
func (sb *Sandbox) SummaryPorts() []api.Port {
	out := []api.Port{}
	published := map[string]bool{}
	for _, p := range sb.Ports {
		ip := "0.0.0.0"
		if p.HostIP.IsValid() {
			ip = p.HostIP.String()
		}
		out = append(out, api.Port{IP: ip, PrivatePort: p.ContainerPort, PublicPort: p.HostPort, Type: p.Proto})
		published[fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)] = true
	}
	for k := range sb.ExposedPorts {
		if port, proto, err := ParsePortKey(k); err == nil && !published[fmt.Sprintf("%d/%s", port, proto)] {
			out = append(out, api.Port{PrivatePort: port, Type: proto})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PrivatePort < out[j].PrivatePort })
	return out
}
