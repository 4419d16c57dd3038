package network

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"minidock/bridge"
	"minidock/internal/errdefs"
)

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

// parsePools reads the --default-address-pool flags (none: the defaults).
func parsePools(flags []string) ([]addressPool, error) {
	if len(flags) == 0 {
		return defaultPools, nil
	}
	var pools []addressPool
	for _, s := range flags {
		p, err := parseAddressPool(s)
		if err != nil {
			return nil, err
		}
		pools = append(pools, p)
	}
	return pools, nil
}

// parseAddressPool reads base=10.10.0.0/16,size=24.
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
// neither one of our networks nor a route of the host. Callers hold mu.
func (c *Controller) pickSubnet() (netip.Prefix, error) {
	for _, p := range c.pools {
		n := 1 << (p.Size - p.Base.Bits())
		base := p.Base.Addr().As4()
		start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		for i := range n {
			v := start + uint32(i)<<(32-p.Size)
			cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Size)
			if c.subnetInUse(cand) == nil && bridge.CheckOverlap(cand, "") == nil {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, errdefs.Forbiddenf("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
}

// subnetInUse names the network whose subnet overlaps p: one of ours,
// or an overlay network of the cluster (its routes are in namespaces of
// their own, where CheckOverlap does not look).
func (c *Controller) subnetInUse(p netip.Prefix) error {
	for _, n := range c.networks {
		if (n.Driver == "bridge" || n.Driver == "overlay") && n.Subnet.Overlaps(p) {
			return errdefs.Forbiddenf("Pool overlaps with other one on this address space: subnet %v overlaps subnet %v of network %s", p, n.Subnet, n.Name)
		}
	}
	return nil
}

// upstreams reads --dns: the embedded DNS server's upstream resolvers
// (the host's, from /etc/resolv.conf, when none is given; "none": none).
func upstreams(flags []string) ([]netip.AddrPort, error) {
	servers := flags
	if len(servers) == 0 {
		data, _ := os.ReadFile("/etc/resolv.conf")
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
				servers = append(servers, f[1])
			}
		}
	}
	var out []netip.AddrPort
	for _, s := range servers {
		if s == "none" {
			if len(servers) > 1 {
				return nil, fmt.Errorf("--dns none: no other --dns may be given")
			}
			return nil, nil
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			ip, err2 := netip.ParseAddr(s)
			if err2 != nil || !ip.Is4() {
				return nil, fmt.Errorf("--dns %q: want an IPv4 address, with an optional :port", s)
			}
			ap = netip.AddrPortFrom(ip, 53)
		}
		out = append(out, ap)
	}
	return out, nil
}
