// Package bridge is the kernel side of single-host container networking:
// a Linux bridge per network (EnsureBridge), a veth pair per container
// endpoint (Attach/Detach), persistent address allocation (IPAM), and one
// nftables table for NAT, isolation and published ports (Ruleset).
//
// Links, addresses and routes are made over rtnetlink with
// github.com/vishvananda/netlink; namespace handles come from
// github.com/vishvananda/netns. Every function works in the network
// namespace of the calling OS thread, which is the host's in the daemon and
// a throwaway namespace in the tests. IPv4 only. See docs/networking.md.
package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// maxIfName is the longest interface name the kernel accepts (IFNAMSIZ-1).
const maxIfName = 15

// plainName reports whether s is a letter or digit followed by letters,
// digits, '_', '.' or '-': what minidock accepts as an interface or
// network name, stricter than the kernel, so that a name can go into an
// nft script, a file name or a /proc path as is. (No regexp: every role
// of the binary would pay its compilation at start.)
func plainName(s string) bool {
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			return false
		}
	}
	return s != ""
}

func checkIfName(name string) error {
	if len(name) > maxIfName || !plainName(name) {
		return fmt.Errorf("interface name %q: want 1 to %d letters, digits, '_', '.' or '-'", name, maxIfName)
	}
	return nil
}

// EnsureBridge makes the Linux bridge name exist with gatewayCIDR (such as
// "10.213.1.1/24") as its address and brings it up. It is idempotent: an
// existing bridge is reused and its address added if missing; an existing
// bridge with another IPv4 address is an error. The address
// also puts the subnet's route on the bridge (the kernel adds it), which is
// how the host reaches containers.
//
// Kernel steps: RTM_NEWLINK kind "bridge", RTM_NEWADDR, RTM_NEWLINK IFF_UP.
func EnsureBridge(name, gatewayCIDR string) error {
	if err := checkIfName(name); err != nil {
		return err
	}
	gw, err := netip.ParsePrefix(gatewayCIDR)
	if err != nil || !gw.Addr().Is4() {
		return fmt.Errorf("bridge %s: gateway %q is not an IPv4 address with a prefix length", name, gatewayCIDR)
	}

	link, err := netlink.LinkByName(name)
	switch {
	case err == nil:
		if link.Type() != "bridge" {
			return fmt.Errorf("bridge %s: a link of that name exists and is a %q, not a bridge", name, link.Type())
		}
	case isNotFound(err):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("find bridge %s after creating it: %w", name, err)
		}
	default:
		return fmt.Errorf("look up bridge %s: %w", name, err)
	}

	// An existing bridge keeps its address; a different one is an error
	// (say, a daemon restarted with another --bip) rather than a second address.
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of bridge %s: %w", name, err)
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == gw.String() {
			have = true
		} else {
			return fmt.Errorf("bridge %s has address %s, not %s: delete the bridge or use its address", name, a.IPNet, gatewayCIDR)
		}
	}
	if !have {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(gw)}); err != nil {
			return fmt.Errorf("add address %s to bridge %s: %w", gatewayCIDR, name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", name, err)
	}
	return nil
}

// DeleteBridge removes the bridge name (RTM_DELLINK). Veths still enslaved
// to it are released, not deleted. A missing bridge is not an error.
func DeleteBridge(name string) error {
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", name, err)
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("delete bridge %s: the link is a %q, not a bridge", name, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return nil
}

// EnableIPForward turns on IPv4 forwarding (net.ipv4.ip_forward=1) in the
// calling thread's network namespace, so that the host routes packets
// between a bridge and its other interfaces. Containers on one bridge talk
// without it (the bridge switches frames); NAT to the outside needs it.
func EnableIPForward() error {
	return writeSysctl("/proc/sys/net/ipv4/ip_forward", "1")
}

// EnableRouteLocalnet sets net.ipv4.conf.<bridge>.route_localnet=1: the
// kernel then routes packets whose source is 127.0.0.1 out of the bridge,
// which a published port reached at 127.0.0.1 needs after DNAT. The ruleset
// masquerades those packets and drops packets from the bridge addressed to
// 127.0.0.0/8, so containers cannot reach the host's loopback services.
func EnableRouteLocalnet(bridgeName string) error {
	if err := checkIfName(bridgeName); err != nil {
		return err
	}
	return writeSysctl("/proc/sys/net/ipv4/conf/"+bridgeName+"/route_localnet", "1")
}

func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", "."), value, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().As4()
	return &net.IPNet{IP: net.IP(a[:]), Mask: net.CIDRMask(p.Bits(), 32)}
}
