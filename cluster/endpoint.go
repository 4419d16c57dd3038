package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"

	clientv3 "go.etcd.io/etcd/client/v3"

	"minidock/bridge"
)

// Endpoint is one container's attachment to an overlay network: what the
// other members need to reach it (address, MAC, host) and to answer DNS
// for it (name, aliases).
type Endpoint struct {
	ID      string     `json:"id"`      // unique on its network (the daemon uses the container ID)
	Network string     `json:"network"` // the network's ID
	Name    string     `json:"name"`    // the container's name
	Aliases []string   `json:"aliases,omitempty"`
	Addr    netip.Addr `json:"addr"`
	MAC     string     `json:"mac"`  // of the container's interface, 02:42 and the address
	Host    string     `json:"host"` // the member whose host runs the container
}

// HardwareAddr is ep.MAC parsed (CreateEndpoint only stores valid ones).
func (ep Endpoint) HardwareAddr() net.HardwareAddr {
	mac, _ := net.ParseMAC(ep.MAC)
	return mac
}

// CreateEndpoint hands an address of network ep.Network to the endpoint and
// stores the endpoint, in one transaction. The address is ep.Addr if valid
// (it must be a free host address of the subnet, not the gateway), else the
// lowest free one. Its MAC is derived from the address.
//
// This is the cluster's IPAM: the address is a key of its own,
// addresses/<network>/<ip>, written only if it does not exist yet
// (compare create revision = 0) and only if the network still exists.
// Two members that pick the same address at the same moment send two
// transactions; etcd applies one after the other, so the second finds the
// key taken and fails, and that member reads again and takes the next
// address. No address is ever handed out twice.
func (s *Store) CreateEndpoint(ep Endpoint) (Endpoint, error) {
	op := fmt.Sprintf("create endpoint %q on network %.12s", ep.Name, ep.Network)
	if !plainName(ep.ID) {
		return Endpoint{}, errorf(ErrInvalid, "%s: endpoint ID %q: want letters and digits", op, ep.ID)
	}
	if !plainName(ep.Host) {
		return Endpoint{}, errorf(ErrInvalid, "%s: host %q is not a member name", op, ep.Host)
	}
	if !plainName(ep.Network) {
		return Endpoint{}, errorf(ErrInvalid, "%s: network ID %q: want letters and digits", op, ep.Network)
	}
	want := ep.Addr
	for try := 0; try < maxTries; try++ {
		ctx, cancel := s.ctx()
		resp, err := s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.networkKey(ep.Network)),
			clientv3.OpGet(s.addressesKey(ep.Network), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
			clientv3.OpGet(s.endpointKey(ep.Network, ep.ID), clientv3.WithCountOnly()),
		).Commit()
		cancel()
		if err != nil {
			return Endpoint{}, s.failed(op, err)
		}
		nkvs := resp.Responses[0].GetResponseRange().Kvs
		if len(nkvs) == 0 {
			return Endpoint{}, errorf(ErrNotFound, "%s: network %s not found", op, ep.Network)
		}
		var n Network
		if err := json.Unmarshal(nkvs[0].Value, &n); err != nil {
			return Endpoint{}, fmt.Errorf("%s: read network: %w", op, err)
		}
		if resp.Responses[2].GetResponseRange().Count > 0 {
			return Endpoint{}, errorf(ErrConflict, "%s: endpoint %s already exists on network %s", op, ep.ID, n.Name)
		}
		taken := map[netip.Addr]bool{n.Gateway: true}
		for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
			a, err := netip.ParseAddr(string(kv.Key[len(s.addressesKey(n.ID)):]))
			if err == nil {
				taken[a] = true
			}
		}
		addr, err := pickAddress(n, want, taken)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%s: %w", op, err)
		}
		cand := ep
		cand.Addr, cand.MAC = addr, bridge.MACFor(addr).String()
		val, err := json.Marshal(cand)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%s: %w", op, err)
		}
		addrKey := s.addressesKey(n.ID) + addr.String()
		ctx, cancel = s.ctx()
		tresp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(s.networkKey(n.ID)), "=", nkvs[0].CreateRevision),
			clientv3.Compare(clientv3.CreateRevision(addrKey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(s.endpointKey(n.ID, ep.ID)), "=", 0),
		).Then(
			clientv3.OpPut(addrKey, ep.ID),
			clientv3.OpPut(s.endpointKey(n.ID, ep.ID), string(val)),
		).Commit()
		cancel()
		if err != nil {
			return Endpoint{}, s.failed(op, err)
		}
		if tresp.Succeeded {
			return cand, nil
		}
	}
	return Endpoint{}, errorf(ErrConflict, "%s: the addresses kept changing under us (%d tries)", op, maxTries)
}

// pickAddress is want if it is free and usable, else (want invalid) the
// lowest free host address of n's subnet.
func pickAddress(n Network, want netip.Addr, taken map[netip.Addr]bool) (netip.Addr, error) {
	first := n.Subnet.Masked().Addr().Next() // after the network address
	last := lastAddr(n.Subnet).Prev()        // before the broadcast address
	if want.IsValid() {
		switch {
		case !n.Subnet.Contains(want) || want.Less(first) || last.Less(want):
			return netip.Addr{}, errorf(ErrInvalid, "address %v is not a host address of subnet %v", want, n.Subnet)
		case want == n.Gateway:
			return netip.Addr{}, errorf(ErrConflict, "address %v is the gateway of network %s", want, n.Name)
		case taken[want]:
			return netip.Addr{}, errorf(ErrConflict, "address %v is already in use on network %s", want, n.Name)
		}
		return want, nil
	}
	for a := first; !last.Less(a); a = a.Next() {
		if !taken[a] {
			return a, nil
		}
	}
	return netip.Addr{}, errorf(ErrConflict, "no free address left in subnet %v of network %s", n.Subnet, n.Name)
}

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | (uint32(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// DeleteEndpoint removes the endpoint and gives its address back, in one
// transaction. A missing endpoint is an ErrNotFound.
func (s *Store) DeleteEndpoint(netID, id string) error {
	op := fmt.Sprintf("delete endpoint %s of network %.12s", id, netID)
	for try := 0; try < maxTries; try++ {
		ctx, cancel := s.ctx()
		resp, err := s.cli.Get(ctx, s.endpointKey(netID, id))
		cancel()
		if err != nil {
			return s.failed(op, err)
		}
		if len(resp.Kvs) == 0 {
			return errorf(ErrNotFound, "%s: not found", op)
		}
		var ep Endpoint
		if err := json.Unmarshal(resp.Kvs[0].Value, &ep); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		addrKey := s.addressesKey(netID) + ep.Addr.String()
		ctx, cancel = s.ctx()
		tresp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(s.endpointKey(netID, id)), "=", resp.Kvs[0].ModRevision),
			clientv3.Compare(clientv3.Value(addrKey), "=", id),
		).Then(
			clientv3.OpDelete(s.endpointKey(netID, id)),
			clientv3.OpDelete(addrKey),
		).Commit()
		cancel()
		if err != nil {
			return s.failed(op, err)
		}
		if tresp.Succeeded {
			return nil
		}
	}
	return errorf(ErrConflict, "%s: the endpoint kept changing under us", op)
}

// Endpoints lists the endpoints of network netID ("": of every network),
// by network and address.
func (s *Store) Endpoints(netID string) ([]Endpoint, error) {
	key := s.prefix + "endpoints/"
	if netID != "" {
		key = s.endpointsKey(netID)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, key, clientv3.WithPrefix())
	if err != nil {
		return nil, s.failed("list endpoints", err)
	}
	var eps []Endpoint
	for _, kv := range resp.Kvs {
		var ep Endpoint
		if err := json.Unmarshal(kv.Value, &ep); err != nil {
			return nil, fmt.Errorf("list endpoints: %s: %w", kv.Key, err)
		}
		eps = append(eps, ep)
	}
	sort.Slice(eps, func(i, j int) bool {
		if eps[i].Network != eps[j].Network {
			return eps[i].Network < eps[j].Network
		}
		return eps[i].Addr.Less(eps[j].Addr)
	})
	return eps, nil
}
