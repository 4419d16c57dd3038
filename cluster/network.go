package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"minidock/bridge"
)

// Network is an overlay network: one layer-2 segment that spans the
// members, carried between hosts in VXLAN with its own VNI.
type Network struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"` // never handed out; each host's network bridge holds it
	// VNI is the VXLAN network identifier in every packet's header: what
	// tells this network's frames from another's on the wire.
	VNI uint32 `json:"vni"`
	// Port is the UDP port VXLAN packets of this network are sent to and
	// received on, on every member.
	Port    uint16            `json:"port"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
}

// The VXLAN numbers: the IANA port, and the VNIs handed out when none is
// asked for (the ones Docker's overlay driver used, 4096 and up).
const (
	DefaultPort = 4789
	FirstVNI    = 4096
	MaxVNI      = 1<<24 - 1
)

// The subnets handed out when none is asked for: /24s of 10.0.0.0/8, the
// first that overlaps no other overlay network and no member's route.
var (
	defaultPool     = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), 8)
	defaultPoolBits = 24
)

// maxTries bounds the optimistic transactions: read, decide, write if
// nothing changed since the read, else read again. Each round lost means
// another member's write won, so even many members at once get through.
const maxTries = 200

func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// snapshot is the networks and members at one revision.
type snapshot struct {
	rev      int64
	networks []Network
	members  []Member
}

// readNetworks reads the networks and the members in one transaction, so
// both are as of the same revision.
func (s *Store) readNetworks(op string) (snapshot, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.prefix+"networks/", clientv3.WithPrefix()),
		clientv3.OpGet(s.prefix+"members/", clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return snapshot{}, s.failed(op, err)
	}
	sn := snapshot{rev: resp.Header.Revision}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var n Network
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			return snapshot{}, fmt.Errorf("%s: read %s: %w", op, kv.Key, err)
		}
		sn.networks = append(sn.networks, n)
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return snapshot{}, fmt.Errorf("%s: read %s: %w", op, kv.Key, err)
		}
		sn.members = append(sn.members, m)
	}
	return sn, nil
}

// CreateNetwork stores a new overlay network, visible to every member.
// Given only n.Name, it picks the rest: an ID, the first free /24 of
// 10.0.0.0/8, the first free VNI from 4096, port 4789, the subnet's first
// address as gateway. A name, VNI or subnet that another network has, or a
// subnet that overlaps a route of any member's host, is an ErrConflict
// naming both.
//
// The checks and the write are one optimistic transaction: the networks
// and members are read at revision R, checked, and the record written only
// if no network or member key changed after R; otherwise all is read and
// checked again. So two members creating networks at the same moment can
// never both take a VNI or a subnet.
func (s *Store) CreateNetwork(n Network) (Network, error) {
	op := fmt.Sprintf("create network %q", n.Name)
	if err := n.fill(); err != nil {
		return Network{}, fmt.Errorf("%s: %w", op, err)
	}
	for try := 0; try < maxTries; try++ {
		sn, err := s.readNetworks(op)
		if err != nil {
			return Network{}, err
		}
		cand := n
		if err := cand.fitIn(sn); err != nil {
			return Network{}, fmt.Errorf("%s: %w", op, err)
		}
		val, err := json.Marshal(cand)
		if err != nil {
			return Network{}, fmt.Errorf("%s: %w", op, err)
		}
		ctx, cancel := s.ctx()
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(s.prefix+"networks/").WithPrefix(), "<", sn.rev+1),
			clientv3.Compare(clientv3.ModRevision(s.prefix+"members/").WithPrefix(), "<", sn.rev+1),
			clientv3.Compare(clientv3.CreateRevision(s.networkKey(cand.ID)), "=", 0),
		).Then(clientv3.OpPut(s.networkKey(cand.ID), string(val))).Commit()
		cancel()
		if err != nil {
			return Network{}, s.failed(op, err)
		}
		if resp.Succeeded {
			return cand, nil
		}
	}
	return Network{}, errorf(ErrConflict, "%s: the networks kept changing under us (%d tries)", op, maxTries)
}

// fill checks what the caller gave and fills in the ID, port, Created.
func (n *Network) fill() error {
	if !plainName(n.Name) {
		return errorf(ErrInvalid, "network name %q: want a letter or digit, then letters, digits, '_', '.' or '-'", n.Name)
	}
	if n.ID == "" {
		n.ID = newID()
	} else if !plainName(n.ID) {
		return errorf(ErrInvalid, "network ID %q: want letters and digits", n.ID)
	}
	if n.Subnet.IsValid() {
		if err := bridge.ValidateSubnet(n.Subnet, n.Gateway); err != nil {
			return errorf(ErrInvalid, "%v", err)
		}
	} else if n.Gateway.IsValid() {
		return errorf(ErrInvalid, "gateway %v given without a subnet", n.Gateway)
	}
	if n.VNI > MaxVNI {
		return errorf(ErrInvalid, "VNI %d: VXLAN network identifiers are 1 to %d", n.VNI, MaxVNI)
	}
	if n.Port == 0 {
		n.Port = DefaultPort
	}
	if n.Created.IsZero() {
		n.Created = time.Now().UTC()
	}
	return nil
}

// fitIn checks n against the networks and members of sn, and picks the
// VNI and subnet that were not given.
func (n *Network) fitIn(sn snapshot) error {
	usedVNI := map[uint32]string{}
	for _, o := range sn.networks {
		if o.Name == n.Name {
			return errorf(ErrConflict, "network with name %s already exists (ID %.12s)", n.Name, o.ID)
		}
		usedVNI[o.VNI] = o.Name
	}
	if n.VNI != 0 {
		if other, ok := usedVNI[n.VNI]; ok {
			return errorf(ErrConflict, "VNI %d is used by network %s", n.VNI, other)
		}
	} else {
		for v := uint32(FirstVNI); ; v++ {
			if v > MaxVNI {
				return errorf(ErrConflict, "no free VNI from %d to %d", FirstVNI, MaxVNI)
			}
			if _, ok := usedVNI[v]; !ok {
				n.VNI = v
				break
			}
		}
	}
	if n.Subnet.IsValid() {
		if err := overlaps(n.Subnet, sn); err != nil {
			return err
		}
	} else {
		sub, err := pickSubnet(sn)
		if err != nil {
			return err
		}
		n.Subnet = sub
	}
	if !n.Gateway.IsValid() {
		n.Gateway = bridge.DefaultGateway(n.Subnet)
	}
	return nil
}

// overlaps names the first network or member route that sub overlaps.
func overlaps(sub netip.Prefix, sn snapshot) error {
	for _, o := range sn.networks {
		if o.Subnet.Overlaps(sub) {
			return errorf(ErrConflict, "subnet %v overlaps subnet %v of network %s", sub, o.Subnet, o.Name)
		}
	}
	for _, m := range sn.members {
		for _, r := range m.Routes {
			if r.Overlaps(sub) {
				return errorf(ErrConflict, "subnet %v overlaps the route to %v on member %s", sub, r, m.Name)
			}
		}
	}
	return nil
}

// pickSubnet is the first /24 of 10.0.0.0/8 that overlaps nothing.
func pickSubnet(sn snapshot) (netip.Prefix, error) {
	base := defaultPool.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	step := uint32(1) << (32 - defaultPoolBits)
	count := uint32(1) << (defaultPoolBits - defaultPool.Bits())
	for i := uint32(0); i < count; i++ {
		v := start + i*step
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), defaultPoolBits)
		if overlaps(sub, sn) == nil {
			return sub, nil
		}
	}
	return netip.Prefix{}, errorf(ErrConflict, "no free /%d left in %v for an overlay network", defaultPoolBits, defaultPool)
}

// Networks lists the overlay networks, by name.
func (s *Store) Networks() ([]Network, error) {
	sn, err := s.readNetworks("list networks")
	if err != nil {
		return nil, err
	}
	sort.Slice(sn.networks, func(i, j int) bool { return sn.networks[i].Name < sn.networks[j].Name })
	return sn.networks, nil
}

// Network finds a network by ID, name or unique ID prefix.
func (s *Store) Network(ref string) (Network, error) {
	op := fmt.Sprintf("network %q", ref)
	sn, err := s.readNetworks(op)
	if err != nil {
		return Network{}, err
	}
	for _, n := range sn.networks {
		if n.ID == ref {
			return n, nil
		}
	}
	for _, n := range sn.networks {
		if n.Name == ref {
			return n, nil
		}
	}
	var found []Network
	for _, n := range sn.networks {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Network{}, errorf(ErrNotFound, "network %s not found", ref)
	default:
		return Network{}, errorf(ErrInvalid, "network ID prefix %s is ambiguous (%d networks)", ref, len(found))
	}
}

// RemoveNetwork deletes the network ref (ID, name or ID prefix) for every
// member, in one transaction that holds only if the network has no
// endpoint and no address handed out, anywhere; otherwise ErrInUse names
// the endpoints and their hosts.
func (s *Store) RemoveNetwork(ref string) error {
	n, err := s.Network(ref)
	if err != nil {
		return fmt.Errorf("remove network: %w", err)
	}
	op := "remove network " + n.Name
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(s.endpointsKey(n.ID)).WithPrefix(), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(s.addressesKey(n.ID)).WithPrefix(), "=", 0),
	).Then(
		clientv3.OpDelete(s.networkKey(n.ID)),
	).Else(
		clientv3.OpGet(s.endpointsKey(n.ID), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return s.failed(op, err)
	}
	if resp.Succeeded {
		if resp.Responses[0].GetResponseDeleteRange().Deleted == 0 {
			return errorf(ErrNotFound, "%s: network %s not found", op, n.Name)
		}
		return nil
	}
	var who []string
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var ep Endpoint
		if json.Unmarshal(kv.Value, &ep) == nil {
			who = append(who, fmt.Sprintf("%s (%v) on %s", ep.Name, ep.Addr, ep.Host))
		}
	}
	return errorf(ErrInUse, "%s: it has %d active endpoint(s): %s", op, len(who), strings.Join(who, ", "))
}
