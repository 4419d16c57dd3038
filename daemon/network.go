package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"minidock/bridge"
)

// network is one network as the daemon keeps it. The exported fields are
// saved in <data-root>/network/networks.json; the addresses handed out are
// in <data-root>/network/ipam/<id>.json (package bridge's IPAM).
type network struct {
	ID       string
	Name     string
	Driver   string // "bridge", "host" or "null"
	Bridge   string // the Linux bridge, for driver bridge
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Internal bool
	Labels   map[string]string
	Created  time.Time

	ipam *bridge.IPAM
	dns  *bridge.DNSServer
	// broken says why a saved network could not be set up again (its
	// subnet now overlaps a route, say): it is kept, listed and removable,
	// but nothing can join it.
	broken error
}

// usable is nil when containers can join n.
func (n *network) usable() error {
	if n.broken != nil {
		return conflict("network %s cannot be used: %v", n.Name, n.broken)
	}
	return nil
}

// setNetwork adds (n) or removes (nil) a network. d.networks changes under
// both locks: readers hold either. Callers hold netMu.
func (d *Daemon) setNetwork(id string, n *network) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n == nil {
		delete(d.networks, id)
	} else {
		d.networks[id] = n
	}
}

// builtin networks exist in every daemon and cannot be removed.
func (n *network) builtin() bool {
	return n.Name == "bridge" || n.Name == "host" || n.Name == "none"
}

// userDefined bridges get the embedded DNS server; the default one does
// not, as in Docker.
func (n *network) userDefined() bool { return n.Driver == "bridge" && n.Name != "bridge" }

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

func (d *Daemon) networkDir() string { return filepath.Join(d.cfg.DataRoot, "network") }

// addressPool is one --default-address-pool: subnets of Size bits carved
// out of Base, for networks created without --subnet.
type addressPool struct {
	Base netip.Prefix
	Size int
}

// defaultPools are tried in order; Docker's defaults start at 172.17/16,
// which a Docker install on the same host uses.
var defaultPools = []addressPool{
	{netip.MustParsePrefix("172.30.0.0/15"), 16},
	{netip.MustParsePrefix("192.168.0.0/16"), 20},
}

// parseAddressPool reads --default-address-pool base=10.10.0.0/16,size=24.
func parseAddressPool(s string) (addressPool, error) {
	var p addressPool
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "base":
			b, err := netip.ParsePrefix(v)
			if err != nil || !b.Addr().Is4() || b.Masked() != b {
				return p, fmt.Errorf("--default-address-pool %q: base %q is not an IPv4 network", s, v)
			}
			p.Base = b
		case "size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 30 {
				return p, fmt.Errorf("--default-address-pool %q: size %q is not a prefix length (1-30)", s, v)
			}
			p.Size = n
		default:
			return p, fmt.Errorf("--default-address-pool %q: unknown key %q (want base=CIDR,size=N)", s, k)
		}
	}
	if !p.Base.IsValid() || p.Size == 0 || p.Size < p.Base.Bits() {
		return p, fmt.Errorf("--default-address-pool %q: want base=CIDR,size=N with N at least the base's length", s)
	}
	return p, nil
}

// pickSubnet finds the first subnet of the address pools that overlaps
// neither a minidock network nor a route of the host. Callers hold netMu.
func (d *Daemon) pickSubnet() (netip.Prefix, error) {
	for _, p := range d.pools {
		n := 1 << (p.Size - p.Base.Bits())
		base := p.Base.Addr().As4()
		start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		for i := range n {
			v := start + uint32(i)<<(32-p.Size)
			cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Size)
			if d.subnetInUse(cand) == nil && bridge.CheckOverlap(cand, "") == nil {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, forbidden("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
}

// subnetInUse names the minidock network whose subnet overlaps p.
func (d *Daemon) subnetInUse(p netip.Prefix) error {
	for _, n := range d.networks {
		if n.Driver == "bridge" && n.Subnet.Overlaps(p) {
			return forbidden("Pool overlaps with other one on this address space: %s is %s's", p, n.Name)
		}
	}
	return nil
}

// initNetworks brings back the saved networks and makes the built-in
// ones: the default bridge (--bridge, --bip or a subnet from the pools),
// host and none. Each bridge network's Linux bridge is made (or found
// again) and its IPAM opened. The firewall is applied later, once the
// containers are known (finishNetworks).
func (d *Daemon) initNetworks() error {
	d.networks = map[string]*network{}
	var saved []*network
	data, err := os.ReadFile(filepath.Join(d.networkDir(), "networks.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &saved); err != nil {
			return fmt.Errorf("read %s/networks.json: %w", d.networkDir(), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read networks: %w", err)
	}
	byName := map[string]*network{}
	for _, n := range saved {
		byName[n.Name] = n
	}
	for _, name := range []string{"host", "none"} {
		n := byName[name]
		if n == nil {
			n = &network{ID: newID(), Name: name, Driver: map[string]string{"host": "host", "none": "null"}[name], Created: time.Now().UTC()}
		}
		d.networks[n.ID] = n
	}

	def := byName["bridge"]
	if def == nil || def.Bridge != d.cfg.Bridge || d.cfg.BIP != "" {
		id := newID()
		if def != nil {
			id = def.ID
		}
		def = &network{ID: id, Name: "bridge", Driver: "bridge", Bridge: d.cfg.Bridge, Created: time.Now().UTC()}
		if d.cfg.BIP != "" {
			gw, err := netip.ParsePrefix(d.cfg.BIP)
			if err != nil || !gw.Addr().Is4() {
				return fmt.Errorf("--bip %q: want the bridge's IPv4 address with a prefix length, such as 172.30.0.1/16", d.cfg.BIP)
			}
			def.Subnet, def.Gateway = gw.Masked(), gw.Addr()
		} else if old := byName["bridge"]; old != nil && old.Bridge == d.cfg.Bridge {
			def.Subnet, def.Gateway = old.Subnet, old.Gateway
		}
	}
	if !def.Subnet.IsValid() {
		sub, err := d.pickSubnet()
		if err != nil {
			return fmt.Errorf("default bridge: %w", err)
		}
		def.Subnet, def.Gateway = sub, bridge.DefaultGateway(sub)
	}
	if err := d.openBridge(def); err != nil {
		return fmt.Errorf("default network: %w", err)
	}
	d.networks[def.ID] = def

	for _, n := range saved {
		if n.Driver != "bridge" || n.Name == "bridge" {
			continue
		}
		if err := d.openBridge(n); err != nil {
			// kept (and saved again) rather than lost: removable, not joinable
			fmt.Fprintf(os.Stderr, "minidock daemon: network %s: %v\n", n.Name, err)
			n.broken = err
		}
		d.networks[n.ID] = n
	}
	if err := bridge.EnableIPForward(); err != nil {
		return err
	}
	return d.saveNetworks()
}

// openBridge checks a bridge network's subnet against the host's routes,
// makes its Linux bridge and opens its IPAM.
func (d *Daemon) openBridge(n *network) error {
	if err := bridge.ValidateSubnet(n.Subnet, n.Gateway); err != nil {
		return badRequest("%v", err)
	}
	if err := bridge.CheckOverlap(n.Subnet, n.Bridge); err != nil {
		return forbidden("%v", err)
	}
	if err := bridge.EnsureBridge(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits()).String()); err != nil {
		return err
	}
	if err := bridge.EnableRouteLocalnet(n.Bridge); err != nil {
		bridge.DeleteBridge(n.Bridge)
		return err
	}
	ipam, err := bridge.OpenIPAM(filepath.Join(d.networkDir(), "ipam"), n.ID, n.Subnet, n.Gateway)
	if err != nil {
		bridge.DeleteBridge(n.Bridge)
		return err
	}
	n.ipam = ipam
	return nil
}

// finishNetworks runs once the containers are restored: addresses no
// running container holds are released (a container removed while the
// daemon was down), the ports of running containers are held again, the
// firewall is applied and the DNS servers started.
func (d *Daemon) finishNetworks() error {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	d.mu.Lock()
	holders := map[string]bool{}
	var running []*Container
	for _, c := range d.containers {
		if c.State.Status == "running" {
			holders[c.ID] = true
			running = append(running, c)
		}
	}
	d.mu.Unlock()
	for _, n := range d.networks {
		if n.ipam == nil {
			continue
		}
		for _, a := range n.ipam.Allocations() {
			if !holders[a.Owner] {
				n.ipam.Release(a.IP)
			}
		}
	}
	for _, c := range running {
		for _, p := range c.Ports {
			r, err := bridge.ReservePort(p.Proto, p.HostIP, p.HostPort)
			if err != nil {
				fmt.Fprintf(os.Stderr, "minidock daemon: container %s: %v\n", c.ID[:12], err)
				continue
			}
			d.ports[c.ID] = append(d.ports[c.ID], r)
		}
	}
	for _, n := range d.networks {
		if n.userDefined() && n.broken == nil {
			if err := d.startDNS(n); err != nil {
				fmt.Fprintf(os.Stderr, "minidock daemon: network %s: %v\n", n.Name, err)
			}
		}
	}
	return d.applyRules()
}

// closeNetworks runs when the daemon stops. The DNS servers and held ports
// end with the process. With no container running, nothing needs the
// bridges or the firewall: they are removed (the next daemon makes them
// again); else they stay, so that the containers keep their network.
func (d *Daemon) closeNetworks() {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	for _, n := range d.networks {
		if n.dns != nil {
			n.dns.Close()
			n.dns = nil
		}
	}
	for id, rs := range d.ports {
		for _, r := range rs {
			r.Close()
		}
		delete(d.ports, id)
	}
	d.mu.Lock()
	busy := false
	for _, c := range d.containers {
		busy = busy || c.State.Status == "running"
	}
	d.mu.Unlock()
	if busy {
		return
	}
	if err := bridge.DeleteTable(d.cfg.NftTable); err != nil {
		fmt.Fprintln(os.Stderr, "minidock daemon:", err)
	}
	for _, n := range d.networks {
		if n.Driver == "bridge" {
			if err := bridge.DeleteBridge(n.Bridge); err != nil {
				fmt.Fprintln(os.Stderr, "minidock daemon:", err)
			}
		}
	}
}

// saveNetworks writes networks.json. Callers hold netMu (or run before
// the API serves).
func (d *Daemon) saveNetworks() error {
	list := make([]*network, 0, len(d.networks))
	for _, n := range d.networks {
		list = append(list, n)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created.Before(list[j].Created) })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.networkDir(), 0o700); err != nil {
		return err
	}
	p := filepath.Join(d.networkDir(), "networks.json")
	if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
		return fmt.Errorf("save networks: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("save networks: %w", err)
	}
	return nil
}

// applyRules rebuilds the firewall from the bridge networks and the
// published ports of running containers, and replaces the nftables table
// in one transaction. Callers hold netMu.
func (d *Daemon) applyRules() error {
	rs := bridge.Ruleset{Table: d.cfg.NftTable}
	for _, n := range d.networks {
		if n.Driver == "bridge" && n.broken == nil {
			bn := bridge.Network{Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal}
			if n.dns != nil {
				bn.DNS = n.Gateway
			}
			rs.Networks = append(rs.Networks, bn)
		}
	}
	sort.Slice(rs.Networks, func(i, j int) bool { return rs.Networks[i].Bridge < rs.Networks[j].Bridge })
	d.mu.Lock()
	for _, c := range d.containers {
		if len(c.Ports) == 0 {
			continue // not running, or nothing published
		}
		n, ep := d.primaryEndpoint(c)
		if n == nil || !ep.IP.IsValid() {
			continue
		}
		for _, p := range c.Ports {
			rs.Ports = append(rs.Ports, bridge.PortMapping{Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort,
				ContainerIP: ep.IP.Addr(), ContainerPort: p.ContainerPort, Bridge: n.Bridge})
		}
	}
	d.mu.Unlock()
	return rs.Apply()
}

// primaryEndpoint is the endpoint published ports lead to: eth0's.
// Callers hold d.mu.
func (d *Daemon) primaryEndpoint(c *Container) (*network, *Endpoint) {
	var bestN *network
	var best *Endpoint
	for _, ep := range c.Networks {
		n := d.networks[ep.NetworkID]
		if n == nil {
			continue
		}
		if best == nil || ep.IfName < best.IfName {
			bestN, best = n, ep
		}
	}
	return bestN, best
}

// findNetwork looks a network up by name, full ID or unique ID prefix.
// Callers hold netMu.
func (d *Daemon) findNetwork(ref string) (*network, error) {
	for _, n := range d.networks {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
	}
	var found *network
	for _, n := range d.networks {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			if found != nil {
				return nil, badRequest("network %s is ambiguous (several IDs start with it)", ref)
			}
			found = n
		}
	}
	if found == nil {
		return nil, notFound("network %s not found", ref)
	}
	return found, nil
}

// startDNS serves names on a user-defined network at its gateway, port 53.
func (d *Daemon) startDNS(n *network) error {
	srv, err := bridge.StartDNS(netip.AddrPortFrom(n.Gateway, 53), d.dnsLookup(n), d.upstreams)
	if err != nil {
		return fmt.Errorf("embedded DNS on %s:53: %w", n.Gateway, err)
	}
	n.dns = srv
	return nil
}

// dnsLookup answers for the containers of network n: the asking container
// is found by its address on n, and name is looked for (container name,
// short ID, alias) among the running containers sharing a user-defined
// network with it; the answer is their addresses on those networks.
func (d *Daemon) dnsLookup(n *network) bridge.DNSLookup {
	return func(client netip.Addr, name string) []netip.Addr {
		d.mu.Lock()
		defer d.mu.Unlock()
		var asker *Container
		for _, c := range d.containers {
			for _, ep := range c.Networks {
				if ep.NetworkID == n.ID && ep.IP.IsValid() && ep.IP.Addr() == client {
					asker = c
				}
			}
		}
		if asker == nil {
			return nil
		}
		var out []netip.Addr
		for _, mine := range asker.Networks {
			net := d.networks[mine.NetworkID]
			if net == nil || !net.userDefined() {
				continue
			}
			for _, c := range d.containers {
				for _, ep := range c.Networks {
					if ep.NetworkID == net.ID && ep.IP.IsValid() && answersTo(c, ep, name) {
						out = append(out, ep.IP.Addr())
					}
				}
			}
		}
		return out
	}
}

// answersTo reports whether container c is called name on endpoint ep.
func answersTo(c *Container, ep *Endpoint, name string) bool {
	if strings.EqualFold(c.Name, name) || strings.EqualFold(c.ID[:12], name) {
		return true
	}
	for _, a := range ep.Aliases {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}
