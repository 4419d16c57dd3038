package network

import (
	"fmt"
	"net/netip"
	"strings"

	"minidock/bridge"
)

// startDNS serves names on a user-defined network at its gateway, port
// 53 (bridge.StartDNS). Callers hold mu.
func (c *Controller) startDNS(n *Network) error {
	srv, err := bridge.StartDNS(netip.AddrPortFrom(n.Gateway, 53), c.dnsLookup(n), c.upstreams)
	if err != nil {
		return fmt.Errorf("embedded DNS on %s:53: %w", n.Gateway, err)
	}
	n.dns = srv
	return nil
}

// dnsLookup answers for the containers of network n: the asking container
// is found by its address on n, and name is looked for (container name,
// short ID, alias) among the containers sharing a user-defined network
// with it; the answer is their addresses on those networks. On an overlay
// network, those are the containers of every host (vxlan.Driver.Lookup,
// from the cluster's state).
func (c *Controller) dnsLookup(n *Network) bridge.DNSLookup {
	return func(client netip.Addr, name string) []netip.Addr {
		c.mu.Lock()
		defer c.mu.Unlock()
		var asker *Sandbox
		for _, sb := range c.sandboxes {
			for _, ep := range sb.Endpoints {
				if ep.NetworkID == n.ID && ep.IP.IsValid() && ep.IP.Addr() == client {
					asker = sb
				}
			}
		}
		if asker == nil {
			return nil
		}
		var out []netip.Addr
		for _, mine := range asker.Endpoints {
			net := c.networks[mine.NetworkID]
			if net != nil && net.Driver == "overlay" && c.cluster != nil {
				out = append(out, c.cluster.drv.Lookup(net.ID, name)...)
				continue
			}
			if net == nil || !net.userDefined() {
				continue
			}
			for _, sb := range c.sandboxes {
				for _, ep := range sb.Endpoints {
					if ep.NetworkID == net.ID && ep.IP.IsValid() && sb.answersTo(ep, name) {
						out = append(out, ep.IP.Addr())
					}
				}
			}
		}
		return out
	}
}

// answersTo reports whether the sandbox's container is called name on
// endpoint ep: its name, short ID, or an alias there.
func (sb *Sandbox) answersTo(ep *Endpoint, name string) bool {
	if strings.EqualFold(sb.Name, name) || strings.EqualFold(sb.ContainerID[:12], name) {
		return true
	}
	for _, a := range ep.Aliases {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}
