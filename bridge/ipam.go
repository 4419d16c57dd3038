package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
)

// IPAM hands out the addresses of one network's subnet and remembers them in
// <dir>/<network>.json, rewritten atomically on every change, so that a
// restarted daemon never gives an address out twice. One process owns dir;
// an IPAM is safe for use by several goroutines.
type IPAM struct {
	mu    sync.Mutex
	path  string
	state ipamState
}

type ipamState struct {
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// Last is the most recent address handed out; the next search starts
	// after it, so a just-released address is not reused at once.
	Last netip.Addr `json:"last"`
	// Allocated maps each address in use to its owner (e.g. an endpoint id).
	Allocated map[netip.Addr]string `json:"allocated"`
}

// ValidateSubnet checks that subnet is an IPv4 network address (host bits
// zero) with room for a gateway and a container (/30 or larger), and that
// gateway, if valid, is a usable address inside it.
func ValidateSubnet(subnet netip.Prefix, gateway netip.Addr) error {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return fmt.Errorf("subnet %v: not an IPv4 prefix", subnet)
	}
	if subnet.Masked() != subnet {
		return fmt.Errorf("subnet %v: host bits are set; did you mean %v?", subnet, subnet.Masked())
	}
	if subnet.Bits() > 30 {
		return fmt.Errorf("subnet %v: too small, need /30 or larger", subnet)
	}
	for _, r := range unusableRanges {
		if subnet.Overlaps(r.prefix) {
			return fmt.Errorf("subnet %v overlaps %v, %s: no container address can be there", subnet, r.prefix, r.what)
		}
	}
	if gateway.IsValid() {
		if !subnet.Contains(gateway) {
			return fmt.Errorf("gateway %v is outside subnet %v", gateway, subnet)
		}
		if gateway == subnet.Addr() || gateway == broadcast(subnet) {
			return fmt.Errorf("gateway %v is the network or broadcast address of %v", gateway, subnet)
		}
	}
	return nil
}

// unusableRanges are the IPv4 ranges no host interface may take an
// address from (RFC 6890): a network there would give containers
// addresses the kernel treats as loopback, multicast or nothing.
var unusableRanges = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (RFC 1122)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (and the broadcast address)"},
}

// DefaultGateway is the first usable address of subnet, the usual gateway.
func DefaultGateway(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

// OpenIPAM opens (or creates) the allocations of network in dir. The subnet
// and gateway must match what the file recorded, if it exists. The gateway
// is never handed out.
func OpenIPAM(dir, network string, subnet netip.Prefix, gateway netip.Addr) (*IPAM, error) {
	if !plainName(network) {
		return nil, fmt.Errorf("ipam: invalid network name %q", network)
	}
	if !gateway.IsValid() {
		gateway = DefaultGateway(subnet)
	}
	if err := ValidateSubnet(subnet, gateway); err != nil {
		return nil, fmt.Errorf("ipam %s: %w", network, err)
	}
	a := &IPAM{path: filepath.Join(dir, network+".json")}
	data, err := os.ReadFile(a.path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &a.state); err != nil {
			return nil, fmt.Errorf("ipam %s: parse %s: %w", network, a.path, err)
		}
		if a.state.Subnet != subnet || a.state.Gateway != gateway {
			return nil, fmt.Errorf("ipam %s: %s records subnet %v gateway %v, not %v gateway %v",
				network, a.path, a.state.Subnet, a.state.Gateway, subnet, gateway)
		}
		if a.state.Allocated == nil {
			a.state.Allocated = map[netip.Addr]string{}
		}
		return a, nil
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ipam %s: %w", network, err)
		}
		a.state = ipamState{Subnet: subnet, Gateway: gateway, Last: gateway, Allocated: map[netip.Addr]string{}}
		return a, a.save()
	default:
		return nil, fmt.Errorf("ipam %s: %w", network, err)
	}
}

// Subnet and Gateway are the network's, as recorded.
func (a *IPAM) Subnet() netip.Prefix { return a.state.Subnet }
func (a *IPAM) Gateway() netip.Addr  { return a.state.Gateway }

// Allocate hands out an address to owner: want if it is valid (it must be a
// free, usable address of the subnet), else the next free one after the
// last handed out. The allocation is on disk before Allocate returns.
func (a *IPAM) Allocate(owner string, want netip.Addr) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &a.state
	if want.IsValid() {
		if !s.Subnet.Contains(want) || want == s.Subnet.Addr() || want == broadcast(s.Subnet) {
			return netip.Addr{}, fmt.Errorf("ipam: %v is not a usable address of %v", want, s.Subnet)
		}
		if want == s.Gateway {
			return netip.Addr{}, fmt.Errorf("ipam: %v is the gateway of %v", want, s.Subnet)
		}
		if o, taken := s.Allocated[want]; taken {
			return netip.Addr{}, fmt.Errorf("ipam: %v is already allocated (to %s)", want, o)
		}
		return want, a.take(want, owner)
	}
	// Walk the subnet once, starting after Last and wrapping around.
	first, last := s.Subnet.Addr().Next(), broadcast(s.Subnet).Prev()
	ip := s.Last
	for range 1 << (32 - s.Subnet.Bits()) {
		ip = ip.Next()
		if !ip.IsValid() || ip.Compare(last) > 0 || ip.Compare(first) < 0 {
			ip = first
		}
		if _, taken := s.Allocated[ip]; !taken && ip != s.Gateway {
			return ip, a.take(ip, owner)
		}
	}
	return netip.Addr{}, fmt.Errorf("ipam: no free address left in %v", s.Subnet)
}

func (a *IPAM) take(ip netip.Addr, owner string) error {
	prevLast := a.state.Last
	a.state.Allocated[ip] = owner
	a.state.Last = ip
	if err := a.save(); err != nil {
		delete(a.state.Allocated, ip)
		a.state.Last = prevLast
		return err
	}
	return nil
}

// Release gives ip back. Releasing a free address is not an error.
func (a *IPAM) Release(ip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	owner, ok := a.state.Allocated[ip]
	if !ok {
		return nil
	}
	delete(a.state.Allocated, ip)
	if err := a.save(); err != nil {
		a.state.Allocated[ip] = owner
		return err
	}
	return nil
}

// Allocations lists the addresses in use, in order, with their owners.
func (a *IPAM) Allocations() []Allocation {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Allocation, 0, len(a.state.Allocated))
	for ip, o := range a.state.Allocated {
		out = append(out, Allocation{IP: ip, Owner: o})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// Allocation is one address in use.
type Allocation struct {
	IP    netip.Addr
	Owner string
}

// Remove deletes the network's file, when the network itself is removed.
func (a *IPAM) Remove() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := os.Remove(a.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ipam: %w", err)
	}
	return nil
}

// save writes the state atomically: a temporary file in the same
// directory, fsync, rename over the old file, fsync of the directory.
func (a *IPAM) save() error {
	data, err := json.MarshalIndent(&a.state, "", "  ")
	if err != nil {
		return fmt.Errorf("ipam: encode %s: %w", a.path, err)
	}
	dir := filepath.Dir(a.path)
	f, err := os.CreateTemp(dir, ".ipam-*")
	if err != nil {
		return fmt.Errorf("ipam: write %s: %w", a.path, err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, a.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ipam: write %s: %w", a.path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// CheckOverlap returns an error naming the route if subnet overlaps any IPv4
// route of the calling thread's network namespace (all routing tables, so
// local addresses and 127.0.0.0/8 count), except routes through ownBridge —
// the network's own bridge, present when a daemon restarts. The default
// route overlaps everything and is skipped.
func CheckOverlap(subnet netip.Prefix, ownBridge string) error {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("check overlap of %v: list routes: %w", subnet, err)
	}
	own := -1
	if ownBridge != "" {
		if l, err := netlink.LinkByName(ownBridge); err == nil {
			own = l.Attrs().Index
		}
	}
	for _, r := range routes {
		if r.Dst == nil || r.LinkIndex == own {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if ones == 0 {
			continue
		}
		ip, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		dst := netip.PrefixFrom(ip, ones).Masked()
		if dst.Overlaps(subnet) {
			dev := fmt.Sprint("ifindex ", r.LinkIndex)
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				dev = l.Attrs().Name
			}
			return fmt.Errorf("subnet %v overlaps the route to %v on %s", subnet, dst, dev)
		}
	}
	return nil
}
