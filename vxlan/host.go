// Package vxlan is the data path of overlay networks: how a container on
// one host reaches a container on another host as if both were plugged
// into one switch. Per overlay network, each host that runs one of its
// containers has a network namespace (the network's "sandbox") with a
// bridge br0 and a VXLAN device vxlan0 (the network's VNI, learning off,
// ARP proxy on). Each container's eth0 is a veth into br0. For every
// container on another host, vxlan0 gets a forwarding entry (its MAC → the
// other host's address) and a neighbour entry (its IP → its MAC), written
// from the cluster's state in etcd (package cluster) by Sync, so nothing
// is ever multicast, flooded or learned from the wire. Outbound traffic
// leaves through a second interface on a local bridge with NAT, the
// gateway bridge (Docker's docker_gwbridge).
//
// Host is one host's data path; Driver joins it to the cluster store.
// Every function works in the network namespace of the calling thread
// (the daemon's: the host's) unless it says otherwise. IPv4 only. See
// docs/overlay-network.md.
package vxlan

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"

	"minidock/bridge"
	"minidock/cluster"
)

// Defaults of Config.
const (
	DefaultGatewayBridge = "md_gwbridge"
	// vxlanOverhead is what VXLAN adds to every frame on the underlay:
	// outer IPv4 (20) + UDP (8) + VXLAN header (8) + inner Ethernet (14).
	vxlanOverhead = 50
)

// DefaultGatewaySubnet is the gateway bridge's subnet unless configured,
// 172.18.0.0/16 (built, not parsed: no work at package init).
var DefaultGatewaySubnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 18, 0, 0}), 16)

// Config is one host's side of the overlay.
type Config struct {
	// Member is this host's member name: endpoints whose Host is Member
	// are local, every other one is reached through its host's VTEP.
	Member string
	// Addr is --cluster-advertise: this host's address on the underlay,
	// the source of its VXLAN packets and where the others send theirs.
	Addr netip.Addr
	// NetNSDir is where the networks' namespaces are pinned, one file
	// ov-<network ID> each (<exec-root>/netns).
	NetNSDir string
	// StateDir keeps the gateway bridge's address allocations.
	StateDir string
	// GatewayBridge and GatewaySubnet: the local bridge for the way out;
	// DefaultGatewayBridge and DefaultGatewaySubnet if empty.
	GatewayBridge string
	GatewaySubnet netip.Prefix
	// MTU of the overlay interfaces; 0: the underlay interface's MTU less
	// the 50 bytes VXLAN adds.
	MTU int
}

// Host is the overlay data path of this host.
type Host struct {
	cfg Config
	mtu int

	// mu serialises changes to the namespaces, links and entries.
	mu     sync.Mutex
	state  *cluster.State // the last state Sync saw; nil before the first
	gwIPAM *bridge.IPAM   // open while the gateway bridge exists
}

// NewHost checks cfg against this host: Addr must be one of its addresses
// (the MTU comes from that interface). Namespaces of networks found in
// NetNSDir (left by a daemon that stopped or died) are kept and brought up
// to date by the next Sync.
func NewHost(cfg Config) (*Host, error) {
	if cfg.Member == "" || cfg.NetNSDir == "" || cfg.StateDir == "" {
		return nil, fmt.Errorf("overlay host: Member, NetNSDir and StateDir are required")
	}
	if cfg.GatewayBridge == "" {
		cfg.GatewayBridge = DefaultGatewayBridge
	}
	if !cfg.GatewaySubnet.IsValid() {
		cfg.GatewaySubnet = DefaultGatewaySubnet
	}
	if err := bridge.ValidateSubnet(cfg.GatewaySubnet, netip.Addr{}); err != nil {
		return nil, fmt.Errorf("overlay host: gateway bridge: %w", err)
	}
	link, err := linkWithAddr(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("overlay host: advertise address: %w", err)
	}
	h := &Host{cfg: cfg, mtu: cfg.MTU}
	if h.mtu == 0 {
		h.mtu = link.Attrs().MTU - vxlanOverhead
	}
	if h.mtu < 576 {
		return nil, fmt.Errorf("overlay host: MTU %d is too small (underlay %s has %d)", h.mtu, link.Attrs().Name, link.Attrs().MTU)
	}
	if err := os.MkdirAll(cfg.NetNSDir, 0o755); err != nil {
		return nil, fmt.Errorf("overlay host: %w", err)
	}
	return h, nil
}

// linkWithAddr is the interface that holds addr.
func linkWithAddr(addr netip.Addr) (netlink.Link, error) {
	if !addr.Is4() {
		return nil, fmt.Errorf("%v is not an IPv4 address", addr)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == addr {
			return netlink.LinkByIndex(a.LinkIndex)
		}
	}
	return nil, fmt.Errorf("%v is not an address of this host", addr)
}

// MTU is the overlay interfaces' MTU.
func (h *Host) MTU() int { return h.mtu }

// Routes are this host's IPv4 routes (every table; the default route, and
// routes inside another one, left out) and the gateway bridge's subnet, for
// its member record: an overlay subnet that overlaps one would shadow them
// in a container.
func (h *Host) Routes() ([]netip.Prefix, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	seen := map[netip.Prefix]bool{h.cfg.GatewaySubnet: true}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		ip, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if ok && ones > 0 {
			seen[netip.PrefixFrom(ip, ones).Masked()] = true
		}
	}
	var out []netip.Prefix
	for p := range seen {
		covered := false // a local address or broadcast inside its subnet's route
		for q := range seen {
			covered = covered || q.Bits() < p.Bits() && q.Contains(p.Addr())
		}
		if !covered {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// GatewayNetwork is the gateway bridge as the firewall sees it: the
// engine puts it into its nftables ruleset, which masquerades what leaves
// it for the outside.
func (h *Host) GatewayNetwork() bridge.Network {
	return bridge.Network{Bridge: h.cfg.GatewayBridge, Subnet: h.cfg.GatewaySubnet}
}

// sandboxPath is where network netID's namespace is pinned.
func (h *Host) sandboxPath(netID string) string {
	return filepath.Join(h.cfg.NetNSDir, "ov-"+netID)
}

// sandboxes are the IDs of the networks that have a namespace here.
func (h *Host) sandboxes() ([]string, error) {
	ents, err := os.ReadDir(h.cfg.NetNSDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list overlay namespaces: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), "ov-"); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
