// Package network is the engine's networking: the networks (bridge, host,
// none, and user-defined bridges), their address management, the
// containers' endpoints on them, published ports, the embedded DNS
// server's answers and the firewall's contents. It decides what to make
// and when; package bridge does the kernel side (links, addresses, nft,
// sockets). The daemon drives it through a Controller, in the order a
// container lives (docs/networking.md):
//
//	create  Plan      the mode and one Endpoint per bridge network, -p checked
//	start   Join      addresses from IPAM; /etc/hosts, hostname, resolv.conf
//	        (the shim creates the container in a new network namespace)
//	        Wire      veth pairs into /proc/<pid>/ns/net, published ports, firewall
//	        (the shim starts the process)
//	exit    Leave     ports, veths and addresses given back
//
// The Controller knows each container only through the Sandbox values the
// daemon hands it, and keeps its own table of the containers that hold
// addresses (for the DNS server, network inspect and network rm).
package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"minidock/bridge"
	"minidock/internal/atomicfile"
	"minidock/internal/errdefs"
	"minidock/internal/trace"
)

// Config is the daemon's networking flags.
type Config struct {
	Root         string   // <data-root>/network: networks.json, ipam/
	Bridge       string   // --bridge: the default network's Linux bridge
	BIP          string   // --bip: the default bridge's address and prefix
	AddressPools []string // --default-address-pool base=CIDR,size=N
	NftTable     string   // --nft-table: our nftables table (family inet)
	DNS          []string // --dns: upstream resolvers; "none": no upstream
	// Event is told of network events: create, destroy, and connect or
	// disconnect of container containerID.
	Event func(n *Network, action, containerID string)
	Log   *log.Logger

	// The cluster of overlay networks (overlay.go): --cluster-store
	// etcd://HOST:PORT[,...], --cluster-advertise ADDR|IFACE and
	// --cluster-store-opt KEY=VALUE; nothing of it runs without a store.
	// ExecRoot (--exec-root) holds the overlay networks' namespaces.
	ClusterStore     string
	ClusterAdvertise string
	ClusterOpts      []string
	ExecRoot         string
}

// Controller owns the networks and the host state made for them.
type Controller struct {
	cfg Config

	// mu serialises network changes and the firewall. The daemon never
	// holds its own lock when it calls in.
	mu        sync.Mutex
	networks  map[string]*Network              // by ID
	sandboxes map[string]*Sandbox              // containers that hold addresses, by container ID
	ports     map[string][]*bridge.Reservation // held host ports, by container ID
	detaching map[string]detachment            // veths being deleted, by host end
	pools     []addressPool
	upstreams []netip.AddrPort
	cluster   *clusterSide // nil unless --cluster-store
}

// Open brings back the saved networks and makes the built-in ones: the
// default bridge (--bridge, --bip or a subnet from the pools), host and
// none. Each bridge network's Linux bridge is made (or found again) and
// its IPAM opened. The firewall waits for Restore, once the daemon knows
// which containers run.
func Open(cfg Config) (*Controller, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = "minidock0"
	}
	if cfg.NftTable == "" {
		cfg.NftTable = bridge.DefaultTable
	}
	if cfg.Log == nil {
		cfg.Log = log.New(os.Stderr, "minidock daemon: ", 0)
	}
	c := &Controller{cfg: cfg, networks: map[string]*Network{}, sandboxes: map[string]*Sandbox{},
		ports: map[string][]*bridge.Reservation{}, detaching: map[string]detachment{}}
	var err error
	if c.pools, err = parsePools(cfg.AddressPools); err != nil {
		return nil, err
	}
	if c.upstreams, err = upstreams(cfg.DNS); err != nil {
		return nil, err
	}

	var saved []*Network
	data, err := os.ReadFile(c.networksFile())
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &saved); err != nil {
			return nil, fmt.Errorf("read %s: %w", c.networksFile(), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read networks: %w", err)
	}
	if err := c.openCluster(); err != nil {
		return nil, err
	}
	byName := map[string]*Network{}
	for _, n := range saved {
		if n.Driver != "overlay" {
			byName[n.Name] = n
		}
	}
	for _, name := range []string{"host", "none"} {
		n := byName[name]
		if n == nil {
			n = &Network{ID: newID(), Name: name, Driver: map[string]string{"host": "host", "none": "null"}[name], Created: time.Now().UTC()}
		}
		c.networks[n.ID] = n
	}

	def, err := c.defaultBridge(byName["bridge"])
	if err != nil {
		return nil, err
	}
	if err := c.openBridge(def); err != nil {
		return nil, fmt.Errorf("default network: %w", err)
	}
	c.networks[def.ID] = def

	for _, n := range saved {
		if n.Driver == "overlay" && c.cluster != nil {
			c.networks[n.ID] = n // the cluster's, as last seen: followCluster brings it up to date
			continue
		}
		if n.Driver != "bridge" || n.Name == "bridge" {
			continue
		}
		if err := c.openBridge(n); err != nil {
			// kept (and saved again) rather than lost: removable, not joinable
			c.cfg.Log.Printf("network %s: %v", n.Name, err)
			n.broken = err
		}
		c.networks[n.ID] = n
	}
	if err := bridge.EnableIPForward(); err != nil {
		return nil, err
	}
	return c, c.save()
}

// defaultBridge is the network "bridge": the saved one when --bridge and
// --bip agree with it, else a new record (keeping the ID).
func (c *Controller) defaultBridge(old *Network) (*Network, error) {
	if old != nil && old.Bridge == c.cfg.Bridge && c.cfg.BIP == "" {
		return old, c.ensureSubnet(old)
	}
	def := &Network{ID: newID(), Name: "bridge", Driver: "bridge", Bridge: c.cfg.Bridge, Created: time.Now().UTC()}
	if old != nil {
		def.ID = old.ID
	}
	if c.cfg.BIP != "" {
		gw, err := netip.ParsePrefix(c.cfg.BIP)
		if err != nil || !gw.Addr().Is4() {
			return nil, fmt.Errorf("--bip %q: want the bridge's IPv4 address with a prefix length, such as 172.30.0.1/16", c.cfg.BIP)
		}
		def.Subnet, def.Gateway = gw.Masked(), gw.Addr()
	}
	return def, c.ensureSubnet(def)
}

// ensureSubnet gives n the first free subnet of the pools if it has none.
func (c *Controller) ensureSubnet(n *Network) error {
	if n.Subnet.IsValid() {
		return nil
	}
	sub, err := c.pickSubnet()
	if err != nil {
		return fmt.Errorf("default bridge: %w", err)
	}
	n.Subnet, n.Gateway = sub, bridge.DefaultGateway(sub)
	return nil
}

// openBridge checks a bridge network's subnet against the host's routes,
// makes its Linux bridge and opens its IPAM. A bridge it makes carries
// the network as its owner (bridge.SetOwner), and only such a bridge is
// ever deleted (deleteBridge). One that exists already is used when it
// is this network's, or when it has no owner: the default network's
// --bridge may name a bridge the administrator made (never deleted
// then), and a saved network's bridge made before owners were recorded
// becomes its own. Another owner's is refused.
func (c *Controller) openBridge(n *Network) error {
	if err := bridge.ValidateSubnet(n.Subnet, n.Gateway); err != nil {
		return errdefs.Invalidf("%v", err)
	}
	owner, exists, err := bridge.LinkOwner(n.Bridge)
	if err != nil {
		return err
	}
	if exists && owner != "" && owner != n.owner() {
		return errdefs.Conflictf("bridge %s belongs to %q, not to network %s of this daemon", n.Bridge, owner, n.Name)
	}
	if err := bridge.CheckOverlap(n.Subnet, n.Bridge); err != nil {
		return errdefs.Forbiddenf("%v", err)
	}
	if err := bridge.EnsureBridge(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits()).String()); err != nil {
		return err
	}
	if !exists || (owner == "" && n.Name != "bridge") {
		if err := bridge.SetOwner(n.Bridge, n.owner()); err != nil {
			if !exists {
				bridge.DeleteBridge(n.Bridge)
			}
			return err
		}
	}
	if err := bridge.EnableRouteLocalnet(n.Bridge); err != nil {
		c.deleteBridge(n)
		return err
	}
	ipam, err := bridge.OpenIPAM(filepath.Join(c.cfg.Root, "ipam"), n.ID, n.Subnet, n.Gateway)
	if err != nil {
		c.deleteBridge(n)
		return err
	}
	n.ipam = ipam
	return nil
}

// deleteBridge deletes n's Linux bridge if n made it; one it found (an
// administrator's --bridge) is left in place.
func (c *Controller) deleteBridge(n *Network) error {
	deleted, err := bridge.DeleteOwnBridge(n.Bridge, n.owner())
	if err == nil && !deleted {
		if _, exists, _ := bridge.LinkOwner(n.Bridge); exists {
			c.cfg.Log.Printf("network %s: bridge %s was not made by this daemon: left in place", n.Name, n.Bridge)
		}
	}
	return err
}

// Restore runs once the daemon has restored its containers, with the
// sandboxes of those that run: their addresses and ports are theirs
// again, every other address is released (a container removed while no
// daemon ran), the DNS servers start and the firewall is applied. Then,
// with a cluster store, the daemon joins the cluster (startCluster).
func (c *Controller) Restore(running []*Sandbox) error {
	c.mu.Lock()
	err := c.restore(running)
	c.mu.Unlock()
	c.startCluster()
	return err
}

// restore is Restore's local part, under mu.
func (c *Controller) restore(running []*Sandbox) error {
	holders := map[string]bool{}
	for _, sb := range running {
		holders[sb.ContainerID] = true
		c.sandboxes[sb.ContainerID] = sb
	}
	for _, n := range c.networks {
		if n.ipam == nil {
			continue
		}
		for _, a := range n.ipam.Allocations() {
			if !holders[a.Owner] {
				n.ipam.Release(a.IP)
			}
		}
	}
	for _, sb := range running {
		for _, p := range sb.Ports {
			r, err := bridge.ReservePort(p.Proto, p.HostIP, p.HostPort)
			if err != nil {
				c.cfg.Log.Printf("container %s: %v", sb.ContainerID[:12], err)
				continue
			}
			c.ports[sb.ContainerID] = append(c.ports[sb.ContainerID], r)
		}
	}
	for _, n := range c.networks {
		if n.Driver == "bridge" && n.userDefined() && n.broken == nil {
			if err := c.startDNS(n); err != nil {
				c.cfg.Log.Printf("network %s: %v", n.Name, err)
			}
		}
	}
	if c.cluster != nil {
		c.restoreCluster()
	}
	return c.applyRules(nil)
}

// Close runs when the daemon stops. The DNS servers and held ports end
// with the process. With no container running (busy false), nothing
// needs the bridges or the firewall: they are removed, and the next
// daemon makes them again; else they stay, so that the containers keep
// their network while no daemon runs.
func (c *Controller) Close(busy bool) {
	c.waitDetached("")
	c.closeCluster(busy)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.networks {
		if n.dns != nil {
			n.dns.Close()
			n.dns = nil
		}
	}
	for id, rs := range c.ports {
		for _, r := range rs {
			r.Close()
		}
		delete(c.ports, id)
	}
	if busy {
		return
	}
	if err := bridge.DeleteTable(c.cfg.NftTable); err != nil {
		c.cfg.Log.Print(err)
	}
	for _, n := range c.networks {
		if n.Driver == "bridge" {
			if err := c.deleteBridge(n); err != nil {
				c.cfg.Log.Print(err)
			}
		}
	}
}

func (c *Controller) networksFile() string { return filepath.Join(c.cfg.Root, "networks.json") }

// save writes networks.json atomically. Callers hold mu (or run before
// the daemon serves).
func (c *Controller) save() error {
	list := make([]*Network, 0, len(c.networks))
	for _, n := range c.networks {
		list = append(list, n)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created.Before(list[j].Created) })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.cfg.Root, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(c.networksFile(), data, 0o600)
}

// applyRules rebuilds the firewall from the bridge networks and the
// published ports of the sandboxes, and replaces the nftables table in
// one transaction, traced to t (a container's trace; nil: none).
// Callers hold mu.
func (c *Controller) applyRules(t *trace.Tracer) error {
	rs := bridge.Ruleset{Table: c.cfg.NftTable}
	for _, n := range c.networks {
		if n.Driver == "bridge" && n.broken == nil {
			bn := bridge.Network{Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal}
			if n.dns != nil {
				bn.DNS = n.Gateway
			}
			rs.Networks = append(rs.Networks, bn)
		}
	}
	if c.cluster != nil {
		rs.Networks = append(rs.Networks, c.cluster.drv.Host().GatewayNetwork())
	}
	sort.Slice(rs.Networks, func(i, j int) bool { return rs.Networks[i].Bridge < rs.Networks[j].Bridge })
	ids := make([]string, 0, len(c.sandboxes))
	for id := range c.sandboxes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sb := c.sandboxes[id]
		n, ep := c.primaryEndpoint(sb)
		if n == nil || !ep.IP.IsValid() {
			continue
		}
		to, br := ep.IP.Addr(), n.Bridge
		if n.Driver == "overlay" { // the host reaches the container on the gateway bridge
			gw, addr, ok := c.gatewayPort(sb)
			if !ok {
				continue
			}
			to, br = addr, gw.Bridge
		}
		for _, p := range sb.Ports {
			rs.Ports = append(rs.Ports, bridge.PortMapping{Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort,
				ContainerIP: to, ContainerPort: p.ContainerPort, Bridge: br})
		}
	}
	return rs.ApplyTraced(t)
}

// Network looks a network up by name, full ID or unique ID prefix.
func (c *Controller) Network(ref string) (*Network, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.find(ref)
}

// find is Network for callers that hold mu.
func (c *Controller) find(ref string) (*Network, error) {
	if n := c.networks[ref]; n != nil {
		return n, nil
	}
	var named *Network // a local network wins over an overlay of the same name
	for _, n := range c.networks {
		if n.Name == ref && (named == nil || named.Driver == "overlay") {
			named = n
		}
	}
	if named != nil {
		return named, nil
	}
	var found *Network
	for _, n := range c.networks {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			if found != nil {
				return nil, errdefs.Invalidf("network %s is ambiguous (several IDs start with it)", ref)
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.NotFoundf("network %s not found", ref)
	}
	return found, nil
}
