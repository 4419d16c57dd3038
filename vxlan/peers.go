package vxlan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"minidock/cluster"
)

// peer is a container on another host, as this host's data path needs it.
type peer struct {
	addr netip.Addr       // its address on the overlay
	mac  net.HardwareAddr // its interface's MAC
	vtep netip.Addr       // its host's underlay address
}

// Sync brings every overlay network's namespace on this host in line with
// st, the cluster's state (Driver calls it after every change etcd
// reports). For each network that has a namespace here, it computes the
// peers (wantPeers) and rewrites the entries that differ (programPeers).
// A peer whose host has left the cluster (its lease expired) loses its
// entries; when the host registers again they come back.
func (h *Host) Sync(st *cluster.State) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state = st
	ids, err := h.sandboxes()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := h.programPeers(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// wantPeers are the endpoints of network netID on other live members.
func (h *Host) wantPeers(netID string) map[string]peer {
	want := map[string]peer{}
	if h.state == nil {
		return want
	}
	for _, ep := range h.state.Endpoints[netID] {
		if ep.Host == h.cfg.Member {
			continue // local: br0 reaches it directly
		}
		m, live := h.state.Members[ep.Host]
		mac := ep.HardwareAddr()
		if !live || mac == nil {
			continue
		}
		want[mac.String()] = peer{addr: ep.Addr, mac: mac, vtep: m.Addr}
	}
	return want
}

// programPeers writes, in network netID's namespace, three entries per
// peer and deletes the ones of containers that are gone (RTM_NEWNEIGH /
// RTM_DELNEIGH):
//
//   - vxlan0's forwarding entry (bridge fdb ... dev vxlan0 self dst VTEP):
//     a frame for the peer's MAC is encapsulated and sent to its host;
//   - br0's forwarding entry (bridge fdb ... dev vxlan0 master static):
//     br0 sends a frame for that MAC to vxlan0 only, instead of flooding
//     every port until it has learned where the MAC lives;
//   - vxlan0's neighbour entry (ip neigh ... dev vxlan0 lladdr MAC
//     permanent): the table vxlan0's ARP proxy answers from.
//
// Entries that already match are left alone, so a Sync that changes
// nothing writes nothing.
func (h *Host) programPeers(netID string) error {
	sb := h.sandboxPath(netID)
	hd, err := sandboxHandle(sb)
	if err != nil {
		return err
	}
	defer hd.Close()
	vx, err := hd.LinkByName(sandboxVXLAN)
	if err != nil {
		return fmt.Errorf("network namespace %s: find %s: %w", sb, sandboxVXLAN, err)
	}
	idx := vx.Attrs().Index
	want := h.wantPeers(netID)

	fdb, err := hd.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("network namespace %s: list forwarding entries: %w", sb, err)
	}
	haveSelf, haveMaster := map[string]bool{}, map[string]bool{}
	for _, e := range fdb {
		p, wanted := want[e.HardwareAddr.String()]
		switch {
		case e.Flags&netlink.NTF_SELF != 0 && e.IP != nil:
			vtep, _ := netip.AddrFromSlice(e.IP.To4())
			if wanted && vtep == p.vtep {
				haveSelf[p.mac.String()] = true
				continue
			}
		case e.Flags&netlink.NTF_MASTER != 0 && e.State&netlink.NUD_PERMANENT == 0:
			// static ones are ours; learned ones go too once the peer has
			if wanted && e.State&netlink.NUD_NOARP != 0 {
				haveMaster[p.mac.String()] = true
				continue
			}
			if wanted {
				continue // learned, and right: the static entry replaces it below
			}
		default:
			continue // vxlan0's own address, and the like
		}
		e.LinkIndex = idx
		if err := hd.NeighDel(&e); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("network namespace %s: delete forwarding entry %s: %w", sb, e.HardwareAddr, err)
		}
	}

	neighs, err := hd.NeighList(idx, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("network namespace %s: list neighbour entries: %w", sb, err)
	}
	haveNeigh := map[string]bool{}
	for _, e := range neighs {
		ip, _ := netip.AddrFromSlice(e.IP.To4())
		if p, ok := want[e.HardwareAddr.String()]; ok && p.addr == ip && e.State&netlink.NUD_PERMANENT != 0 {
			haveNeigh[p.mac.String()] = true
			continue
		}
		if err := hd.NeighDel(&e); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("network namespace %s: delete neighbour entry %s: %w", sb, e.IP, err)
		}
	}

	for key, p := range want {
		if !haveSelf[key] {
			if err := hd.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
				Flags: netlink.NTF_SELF, HardwareAddr: p.mac, IP: p.vtep.AsSlice()}); err != nil {
				return fmt.Errorf("network namespace %s: forwarding entry %s via %v: %w", sb, p.mac, p.vtep, err)
			}
		}
		if !haveMaster[key] {
			if err := hd.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_NOARP,
				Flags: netlink.NTF_MASTER, HardwareAddr: p.mac}); err != nil {
				return fmt.Errorf("network namespace %s: bridge entry %s on %s: %w", sb, p.mac, sandboxVXLAN, err)
			}
		}
		if !haveNeigh[key] {
			if err := hd.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
				IP: p.addr.AsSlice(), HardwareAddr: p.mac}); err != nil {
				return fmt.Errorf("network namespace %s: neighbour entry %v lladdr %s: %w", sb, p.addr, p.mac, err)
			}
		}
	}
	return nil
}
