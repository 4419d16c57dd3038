package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// Endpoint is one container's interface on one bridge network.
type Endpoint struct {
	Bridge  string           // the bridge to plug the host end into
	HostIf  string           // name of the host end, e.g. from VethName
	NetNS   string           // path of the container's network namespace, e.g. /proc/<pid>/ns/net
	IfName  string           // name inside the container; "eth0" if empty
	Address netip.Prefix     // the container's address with the subnet's length, e.g. 10.213.1.2/24
	Gateway netip.Addr       // the default route's next hop (the bridge's address); none if invalid
	MTU     int              // 0: the bridge's MTU
	MAC     net.HardwareAddr // the container end's; nil: the kernel picks one
	Trace   *trace.Tracer    // where each netlink call is traced; nil: nowhere
}

// traceStep is the step of the container's trace that wiring belongs to.
const traceStep = "wire"

// MACFor is a stable MAC address for a container's address ip, as
// Docker makes them: 02:42 (locally administered) and the four bytes of
// the IPv4 address, so that a restarted container keeps its MAC with
// its address and neighbours' ARP caches stay right.
func MACFor(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}

// VethName is a stable host-side interface name for seed (say, container
// id + network id): "md" and 12 hex digits of its SHA-256. Stable so that a
// restarted daemon finds the link again; hashed so that it fits IFNAMSIZ.
func VethName(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "md" + hex.EncodeToString(sum[:6])
}

// NetNSPath is the path of the network namespace of process pid.
func NetNSPath(pid int) string { return fmt.Sprintf("/proc/%d/ns/net", pid) }

// Attach connects the network namespace ep.NetNS to the bridge ep.Bridge:
//
//  1. create a veth pair (RTM_NEWLINK kind "veth"): the host end ep.HostIf
//     enslaved to the bridge, the peer made directly inside the container's
//     namespace under its final name (IFLA_NET_NS_FD), so no temporary name
//     is ever visible on the host;
//  2. bring the host end up;
//  3. inside the container's namespace: bring lo up, give the peer its
//     address (RTM_NEWADDR), bring it up, and add the default route via the
//     gateway (RTM_NEWROUTE).
//
// On any failure the pair is deleted again, so nothing is left half-wired.
func Attach(ep Endpoint) error {
	if ep.IfName == "" {
		ep.IfName = "eth0"
	}
	if err := checkIfName(ep.HostIf); err != nil {
		return fmt.Errorf("attach: host end: %w", err)
	}
	if err := checkIfName(ep.IfName); err != nil {
		return fmt.Errorf("attach: container end: %w", err)
	}
	if !ep.Address.IsValid() || !ep.Address.Addr().Is4() {
		return fmt.Errorf("attach %s: address %v is not an IPv4 address with a prefix length", ep.HostIf, ep.Address)
	}

	br, err := netlink.LinkByName(ep.Bridge)
	if err != nil {
		return fmt.Errorf("attach %s: bridge %s: %w", ep.HostIf, ep.Bridge, err)
	}
	ns, err := netns.GetFromPath(ep.NetNS)
	if err != nil {
		return fmt.Errorf("attach %s: open network namespace %s: %w", ep.HostIf, ep.NetNS, err)
	}
	defer ns.Close()

	mtu := ep.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ep.HostIf, MTU: mtu, MasterIndex: br.Attrs().Index},
		PeerName:      ep.IfName,
		PeerMTU:       uint32(mtu),
		PeerNamespace: netlink.NsFd(ns),
	}
	if ep.MAC != nil {
		veth.PeerHardwareAddr = ep.MAC
	}
	err = ep.Trace.Call(traceStep, "RTM_NEWLINK", fmt.Sprintf("kind=veth, %s (master %s, mtu %d) peer %s in %s, mac %v", ep.HostIf, ep.Bridge, mtu, ep.IfName, ep.NetNS, ep.MAC),
		"a veth pair: one end on the bridge, the other made directly inside the container's network namespace", netlink.LinkAdd(veth))
	if err != nil {
		return fmt.Errorf("attach: create veth pair %s (host) / %s (in %s): %w", ep.HostIf, ep.IfName, ep.NetNS, err)
	}
	if err := configure(ep, ns); err != nil {
		if derr := Detach(ep.HostIf); derr != nil {
			err = fmt.Errorf("%w (and cleanup: %v)", err, derr)
		}
		return err
	}
	return nil
}

func configure(ep Endpoint, ns netns.NsHandle) error {
	host, err := netlink.LinkByName(ep.HostIf)
	if err != nil {
		return fmt.Errorf("attach: find host end %s: %w", ep.HostIf, err)
	}
	if err := ep.Trace.Call(traceStep, "RTM_NEWLINK", ep.HostIf+", IFF_UP", "bring the host end up", netlink.LinkSetUp(host)); err != nil {
		return fmt.Errorf("attach: bring host end %s up: %w", ep.HostIf, err)
	}

	// A handle whose netlink socket lives in the container's namespace:
	// every request below is about that namespace's links and routes.
	// NETLINK_ROUTE only: with no family given, the library also opens an
	// XFRM socket, which fails ("protocol not supported") on a kernel
	// whose xfrm_user is a module not loaded (Debian's).
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if ep.Trace.Call(traceStep, "socket", "AF_NETLINK, NETLINK_ROUTE, in "+ep.NetNS, "a netlink socket inside the container's namespace: the requests below are about its links", err) != nil {
		return fmt.Errorf("attach: netlink socket in %s: %w", ep.NetNS, err)
	}
	defer h.Close()

	if lo, err := h.LinkByName("lo"); err == nil {
		if err := ep.Trace.Call(traceStep, "RTM_NEWLINK", "lo, IFF_UP", "a new namespace's loopback starts down", h.LinkSetUp(lo)); err != nil {
			return fmt.Errorf("attach: bring lo up in %s: %w", ep.NetNS, err)
		}
	}
	peer, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("attach: find %s in %s: %w", ep.IfName, ep.NetNS, err)
	}
	if err := ep.Trace.Call(traceStep, "RTM_NEWADDR", fmt.Sprintf("%s, %s", ep.IfName, ep.Address), "the container's address on the bridge's subnet",
		h.AddrAdd(peer, &netlink.Addr{IPNet: prefixToIPNet(ep.Address)})); err != nil {
		return fmt.Errorf("attach: add address %s to %s in %s: %w", ep.Address, ep.IfName, ep.NetNS, err)
	}
	if err := ep.Trace.Call(traceStep, "RTM_NEWLINK", ep.IfName+", IFF_UP", "bring the container's end up", h.LinkSetUp(peer)); err != nil {
		return fmt.Errorf("attach: bring %s up in %s: %w", ep.IfName, ep.NetNS, err)
	}
	if ep.Gateway.IsValid() {
		gw := ep.Gateway.As4()
		route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: gw[:]} // no Dst: the default route
		if err := ep.Trace.Call(traceStep, "RTM_NEWROUTE", fmt.Sprintf("default via %s dev %s", ep.Gateway, ep.IfName), "the default route: out through the bridge",
			h.RouteAdd(route)); err != nil {
			return fmt.Errorf("attach: default route via %s on %s in %s: %w", ep.Gateway, ep.IfName, ep.NetNS, err)
		}
	}
	return nil
}

// Detach deletes the host end hostIf (RTM_DELLINK); the kernel deletes its
// peer inside the container with it. A missing link is not an error: the
// pair also goes away by itself when the container's namespace dies.
func Detach(hostIf string) error {
	link, err := netlink.LinkByName(hostIf)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detach: look up %s: %w", hostIf, err)
	}
	if link.Type() != "veth" {
		return fmt.Errorf("detach %s: the link is a %q, not a veth", hostIf, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		// not found: the container's namespace died meanwhile, taking the pair
		return fmt.Errorf("detach: delete %s: %w", hostIf, err)
	}
	return nil
}

// LoopbackUp brings lo up in the network namespace at nsPath (a new
// namespace's lo starts down): RTM_NEWLINK with IFF_UP through a netlink
// socket opened in that namespace. For --network none, whatever the
// runtime. t traces the call (nil: no trace).
func LoopbackUp(nsPath string, t *trace.Tracer) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("lo up: open network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("lo up: netlink socket in %s: %w", nsPath, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo up in %s: %w", nsPath, err)
	}
	if err := t.Call(traceStep, "RTM_NEWLINK", "lo in "+nsPath+", IFF_UP", "a new namespace's loopback starts down", h.LinkSetUp(lo)); err != nil {
		return fmt.Errorf("lo up in %s: %w", nsPath, err)
	}
	return nil
}
