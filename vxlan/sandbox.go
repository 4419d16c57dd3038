package vxlan

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"minidock/bridge"
	"minidock/cluster"
)

// The links inside a network's namespace. Their names are the
// namespace's own, so every network uses the same two.
const (
	sandboxBridge = "br0"
	sandboxVXLAN  = "vxlan0"
)

// Join plugs the container whose network namespace is at netnsPath into
// overlay network n as endpoint ep (already stored in the cluster, which
// gave it its address and MAC), under the name ifName (say "eth0"):
//
//  1. ensureSandbox: the network's namespace with br0 and vxlan0, made
//     when the first container of n on this host joins;
//  2. a veth pair: one end br0's port in the network's namespace, the
//     other ifName in the container's, with ep's address, MAC and the
//     overlay MTU (bridge.Attach, run inside the network's namespace);
//  3. programPeers: the forwarding and neighbour entries of n's endpoints
//     on other hosts, from the last state Sync saw, so they are reachable
//     at once.
//
// The container gets no default route here: that is ConnectGateway's.
func (h *Host) Join(n cluster.Network, ep cluster.Endpoint, netnsPath, ifName string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	sb, err := h.ensureSandbox(n)
	if err != nil {
		return fmt.Errorf("join %s to network %s: %w", ep.Name, n.Name, err)
	}
	err = inNetNS(sb, func() error {
		return bridge.Attach(bridge.Endpoint{
			Bridge:  sandboxBridge,
			HostIf:  endpointIf(n.ID, ep.ID),
			NetNS:   netnsPath,
			IfName:  ifName,
			Address: netip.PrefixFrom(ep.Addr, n.Subnet.Bits()),
			MTU:     h.mtu,
			MAC:     ep.HardwareAddr(),
		})
	})
	if err != nil {
		h.removeSandboxIfUnused(n.ID)
		return fmt.Errorf("join %s to network %s: %w", ep.Name, n.Name, err)
	}
	if err := h.programPeers(n.ID); err != nil {
		return fmt.Errorf("join %s to network %s: %w", ep.Name, n.Name, err)
	}
	return nil
}

// Leave unplugs endpoint epID from network netID: its veth pair is deleted
// (the kernel deletes the container's end with it). The last endpoint of
// the network on this host takes the network's namespace with it.
// Leaving twice is not an error.
func (h *Host) Leave(netID, epID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	sb := h.sandboxPath(netID)
	if _, err := os.Stat(sb); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := inNetNS(sb, func() error { return bridge.Detach(endpointIf(netID, epID)) }); err != nil {
		return fmt.Errorf("leave network %.12s: %w", netID, err)
	}
	return h.removeSandboxIfUnused(netID)
}

// InSandbox runs fn on a thread inside network netID's namespace on this
// host (the engine binds the network's DNS server there, on the gateway
// address br0 holds). The namespace must exist: a container of the
// network has joined here.
func (h *Host) InSandbox(netID string, fn func() error) error {
	sb := h.sandboxPath(netID)
	if _, err := os.Stat(sb); err != nil {
		return fmt.Errorf("network %.12s has no namespace on this host: %w", netID, err)
	}
	return inNetNS(sb, fn)
}

// RemoveUnused removes the namespace of every network that no endpoint
// uses any more on this host: after a daemon restart, the containers that
// ended meanwhile took their veth pairs with their namespaces.
func (h *Host) RemoveUnused() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids, err := h.sandboxes()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, h.removeSandboxIfUnused(id))
	}
	return errors.Join(errs...)
}

// endpointIf is the name of an endpoint's veth end on br0.
func endpointIf(netID, epID string) string { return bridge.VethName(netID + "/" + epID) }

// ensureSandbox makes network n's namespace if it does not exist yet:
//
//  1. bridge.CreateNetNS pins a new network namespace at ov-<id>;
//  2. bridge.EnsureBridge makes br0 in it, holding the subnet's gateway
//     address (so the namespace, like Docker's, owns the gateway);
//  3. createVXLAN adds vxlan0 into it and makes it a port of br0.
//
// Anything made is undone on failure.
func (h *Host) ensureSandbox(n cluster.Network) (string, error) {
	sb := h.sandboxPath(n.ID)
	if _, err := os.Stat(sb); err == nil {
		return sb, nil
	}
	if err := bridge.CreateNetNS(sb); err != nil {
		return "", err
	}
	gw := netip.PrefixFrom(n.Gateway, n.Subnet.Bits()).String()
	err := inNetNS(sb, func() error { return bridge.EnsureBridge(sandboxBridge, gw) })
	if err == nil {
		err = h.createVXLAN(sb, n)
	}
	if err != nil {
		if rerr := removeSandbox(sb); rerr != nil {
			err = fmt.Errorf("%w (and cleanup: %v)", err, rerr)
		}
		return "", fmt.Errorf("network namespace %s: %w", sb, err)
	}
	return sb, nil
}

// createVXLAN makes the network's VXLAN device (RTM_NEWLINK kind "vxlan")
// from the host's namespace directly into the network's namespace
// (IFLA_NET_NS_FD): the device lives there, a port of br0, but its UDP
// socket stays in the namespace that made it, the host's, bound to the
// network's port on the underlay. Its settings:
//
//   - id n.VNI, the network's identifier in every packet's VXLAN header;
//   - local h.cfg.Addr, the outer source address (this host's VTEP);
//   - dstport n.Port (4789), the outer UDP destination;
//   - nolearning: remote MACs come only from Sync's entries, never from
//     the source of packets received;
//   - proxy: vxlan0 answers ARP requests itself from its neighbour
//     entries, so no ARP broadcast ever leaves the host;
//   - no group and no default destination: a frame for a MAC without an
//     entry is dropped, never flooded to other hosts.
//
// The kernel refuses (EEXIST) a second device with the same VNI and port
// made from the same namespace: a VNI collision on this host.
func (h *Host) createVXLAN(sb string, n cluster.Network) error {
	ns, err := netns.GetFromPath(sb)
	if err != nil {
		return fmt.Errorf("open %s: %w", sb, err)
	}
	defer ns.Close()
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: sandboxVXLAN, MTU: h.mtu, Namespace: netlink.NsFd(ns)},
		VxlanId:   int(n.VNI),
		SrcAddr:   h.cfg.Addr.AsSlice(),
		Port:      int(n.Port),
		Learning:  false,
		Proxy:     true,
	}
	if err := netlink.LinkAdd(vx); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create %s (VNI %d, UDP port %d): another VXLAN device of this host has VNI %d on port %d: %w",
				sandboxVXLAN, n.VNI, n.Port, n.VNI, n.Port, err)
		}
		return fmt.Errorf("create %s (VNI %d, UDP port %d): %w", sandboxVXLAN, n.VNI, n.Port, err)
	}
	hd, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket in %s: %w", sb, err)
	}
	defer hd.Close()
	link, err := hd.LinkByName(sandboxVXLAN)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", sandboxVXLAN, sb, err)
	}
	br, err := hd.LinkByName(sandboxBridge)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", sandboxBridge, sb, err)
	}
	if err := hd.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("make %s a port of %s: %w", sandboxVXLAN, sandboxBridge, err)
	}
	if err := hd.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring %s up: %w", sandboxVXLAN, err)
	}
	return nil
}

// removeSandboxIfUnused removes network netID's namespace when no
// endpoint is plugged into its br0 any more.
func (h *Host) removeSandboxIfUnused(netID string) error {
	sb := h.sandboxPath(netID)
	hd, err := sandboxHandle(sb)
	if err != nil {
		return err
	}
	ports, err := bridgePorts(hd, sandboxBridge)
	hd.Close()
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", sb, err)
	}
	for _, p := range ports {
		if p != sandboxVXLAN {
			return nil
		}
	}
	return removeSandbox(sb)
}

// removeSandbox deletes vxlan0 and br0 (RTM_DELLINK) and unpins the
// namespace. The links go first, and at once: a namespace dies in the
// background, and until its vxlan0 is gone its VNI and UDP socket would
// stay taken on the host.
func removeSandbox(sb string) error {
	hd, err := sandboxHandle(sb)
	if err != nil {
		return err
	}
	for _, name := range []string{sandboxVXLAN, sandboxBridge} {
		if l, err := hd.LinkByName(name); err == nil {
			if err := hd.LinkDel(l); err != nil {
				hd.Close()
				return fmt.Errorf("network namespace %s: delete %s: %w", sb, name, err)
			}
		}
	}
	hd.Close()
	return bridge.RemoveNetNS(sb)
}

// sandboxHandle is a netlink socket inside the namespace pinned at sb
// (NETLINK_ROUTE only: no XFRM socket, which a kernel without xfrm_user
// loaded refuses).
func sandboxHandle(sb string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(sb)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", sb, err)
	}
	defer ns.Close()
	hd, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket in %s: %w", sb, err)
	}
	return hd, nil
}

// bridgePorts are the names of the links enslaved to bridge br.
func bridgePorts(hd *netlink.Handle, br string) ([]string, error) {
	brl, err := hd.LinkByName(br)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", br, err)
	}
	links, err := hd.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == brl.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	return ports, nil
}

// inNetNS runs fn on an OS thread that has joined the network namespace
// pinned at path (setns(CLONE_NEWNET)), for the functions of package
// bridge, which work in the calling thread's namespace. The thread stays
// locked to its goroutine and ends with it, so no other code ever runs in
// that namespace by accident.
func inNetNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w", path, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
