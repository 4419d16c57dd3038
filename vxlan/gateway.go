package vxlan

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"

	"minidock/bridge"
)

// ConnectGateway gives the container whose network namespace is at
// netnsPath its way out, as Docker's docker_gwbridge does for containers
// that are only on overlay networks (an overlay has no router of its own):
//
//  1. ensureGateway: the gateway bridge in the host's namespace, with the
//     first address of its subnet, and IPv4 forwarding on;
//  2. an address of the gateway subnet for the container (its IPAM, on
//     disk in StateDir);
//  3. a veth pair (bridge.Attach): ifName in the container (say "eth1")
//     with that address and the default route via the bridge;
//  4. the host end made an isolated port (IFLA_BRPORT_ISOLATED): isolated
//     ports only talk to the bridge itself, never to each other, so two
//     containers cannot meet on the gateway bridge, whatever overlay
//     networks they are on.
//
// The masquerade that takes the traffic outside is the firewall's, from
// GatewayNetwork. It returns the container's address on the bridge.
func (h *Host) ConnectGateway(containerID, netnsPath, ifName string) (netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op := "connect container " + containerID + " to " + h.cfg.GatewayBridge
	ipam, err := h.ensureGateway()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", op, err)
	}
	addr, err := ipam.Allocate(containerID, netip.Addr{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", op, err)
	}
	hostIf := gatewayIf(containerID)
	err = bridge.Attach(bridge.Endpoint{
		Bridge:  h.cfg.GatewayBridge,
		HostIf:  hostIf,
		NetNS:   netnsPath,
		IfName:  ifName,
		Address: netip.PrefixFrom(addr, h.cfg.GatewaySubnet.Bits()),
		Gateway: ipam.Gateway(),
		MAC:     bridge.MACFor(addr),
	})
	if err == nil {
		var link netlink.Link
		if link, err = netlink.LinkByName(hostIf); err == nil {
			err = netlink.LinkSetIsolated(link, true)
		}
		if err != nil {
			err = fmt.Errorf("isolate port %s: %w", hostIf, err)
			bridge.Detach(hostIf)
		}
	}
	if err != nil {
		ipam.Release(addr)
		h.removeGatewayIfUnused()
		return netip.Addr{}, fmt.Errorf("%s: %w", op, err)
	}
	return addr, nil
}

// DisconnectGateway deletes the container's veth pair on the gateway
// bridge and gives its address back; the last one takes the bridge
// with it. Disconnecting twice is not an error.
func (h *Host) DisconnectGateway(containerID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	op := "disconnect container " + containerID + " from " + h.cfg.GatewayBridge
	if err := bridge.Detach(gatewayIf(containerID)); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, err := netlink.LinkByName(h.cfg.GatewayBridge); err != nil {
		return nil // no bridge: no address is held either
	}
	ipam, err := h.ensureGatewayIPAM()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for _, a := range ipam.Allocations() {
		if a.Owner == containerID {
			if err := ipam.Release(a.IP); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
	}
	if err := h.removeGatewayIfUnused(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// GatewayAddr is the container's address on the gateway bridge, if it
// has one (where its published ports lead).
func (h *Host) GatewayAddr(containerID string) (netip.Addr, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := netlink.LinkByName(h.cfg.GatewayBridge); err != nil {
		return netip.Addr{}, false
	}
	ipam, err := h.ensureGatewayIPAM()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range ipam.Allocations() {
		if a.Owner == containerID {
			return a.IP, true
		}
	}
	return netip.Addr{}, false
}

// PruneGateway gives back the gateway addresses of the containers for
// which running is false (they ended while no daemon watched: their veth
// pairs went with their namespaces), and removes the bridge if no port
// is left on it.
func (h *Host) PruneGateway(running func(containerID string) bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := netlink.LinkByName(h.cfg.GatewayBridge); err != nil {
		return nil // no bridge: no address is held either
	}
	ipam, err := h.ensureGatewayIPAM()
	if err != nil {
		return err
	}
	for _, a := range ipam.Allocations() {
		if !running(a.Owner) {
			bridge.Detach(gatewayIf(a.Owner))
			if err := ipam.Release(a.IP); err != nil {
				return fmt.Errorf("gateway bridge %s: %w", h.cfg.GatewayBridge, err)
			}
		}
	}
	return h.removeGatewayIfUnused()
}

// gatewayIf is the name of a container's veth end on the gateway bridge.
func gatewayIf(containerID string) string { return bridge.VethName("gw/" + containerID) }

// ensureGateway makes the gateway bridge if needed, after checking that
// its subnet overlaps no route of the host but its own, and turns on IPv4
// forwarding (the bridge's traffic is routed out by the host).
func (h *Host) ensureGateway() (*bridge.IPAM, error) {
	if err := bridge.CheckOverlap(h.cfg.GatewaySubnet, h.cfg.GatewayBridge); err != nil {
		return nil, err
	}
	gw := bridge.DefaultGateway(h.cfg.GatewaySubnet)
	if err := bridge.EnsureBridge(h.cfg.GatewayBridge, netip.PrefixFrom(gw, h.cfg.GatewaySubnet.Bits()).String()); err != nil {
		return nil, err
	}
	if err := bridge.EnableIPForward(); err != nil {
		return nil, err
	}
	return h.ensureGatewayIPAM()
}

// ensureGatewayIPAM opens the gateway bridge's allocations, once.
func (h *Host) ensureGatewayIPAM() (*bridge.IPAM, error) {
	if h.gwIPAM == nil {
		ipam, err := bridge.OpenIPAM(h.cfg.StateDir, "gateway", h.cfg.GatewaySubnet, netip.Addr{})
		if err != nil {
			return nil, err
		}
		h.gwIPAM = ipam
	}
	return h.gwIPAM, nil
}

// removeGatewayIfUnused deletes the gateway bridge and its allocations
// file once no port is left on it.
func (h *Host) removeGatewayIfUnused() error {
	if _, err := netlink.LinkByName(h.cfg.GatewayBridge); err != nil {
		return nil // no bridge, nothing to remove
	}
	ports, err := bridgePorts(&netlink.Handle{}, h.cfg.GatewayBridge)
	if err != nil || len(ports) > 0 {
		return err
	}
	if err := bridge.DeleteBridge(h.cfg.GatewayBridge); err != nil {
		return err
	}
	ipam, err := h.ensureGatewayIPAM()
	if err != nil {
		return err
	}
	h.gwIPAM = nil
	return ipam.Remove()
}
