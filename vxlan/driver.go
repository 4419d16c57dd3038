package vxlan

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"minidock/bridge"
	"minidock/cluster"
)

// DriverConfig is what the daemon's flags give the overlay driver.
type DriverConfig struct {
	// StoreURL is --cluster-store: etcd://HOST:PORT[,HOST:PORT...].
	StoreURL string
	// Prefix of the cluster's keys; cluster.DefaultPrefix if empty.
	Prefix string
	// Timeout of each etcd request; 5s if zero.
	Timeout time.Duration
	// TTL of this member's lease: how long after a crash the others drop
	// its containers; 15s if zero.
	TTL time.Duration
	// Host is this host's side. Host.Addr comes from --cluster-advertise
	// (ParseAdvertise); Host.Member is the daemon's name in the cluster.
	Host Config
	// Log is told of members joining and leaving and of failed Syncs.
	Log *log.Logger
}

// Driver is one daemon's overlay driver: the cluster store, this host's
// membership, the data path, and the watch that keeps the data path in
// step with the cluster. The engine's network package calls it; its
// methods are safe for use by several goroutines.
type Driver struct {
	store *cluster.Store
	reg   *cluster.Registration
	host  *Host
	log   *log.Logger

	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	state *cluster.State // the last one the watch delivered
}

// Start joins this daemon to the cluster, in this order:
//
//  1. cluster.Open: connect to etcd (an etcd that does not answer is a
//     cluster.ErrUnavailable: the daemon goes on with its local networks);
//  2. NewHost: check the advertise address, find the underlay MTU;
//  3. Store.Register: this member's record (address, routes) under a
//     lease kept alive from now on;
//  4. Store.Watch in a goroutine: every change of the cluster goes to
//     Host.Sync. Start returns once the first state has been synced (or
//     after the timeout, if etcd went away meanwhile).
func Start(cfg DriverConfig) (*Driver, error) {
	eps, err := cluster.ParseStoreURL(cfg.StoreURL)
	if err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = log.New(os.Stderr, "overlay: ", 0)
	}
	store, err := cluster.Open(cluster.Config{Endpoints: eps, Prefix: cfg.Prefix, Timeout: cfg.Timeout})
	if err != nil {
		return nil, err
	}
	host, err := NewHost(cfg.Host)
	if err != nil {
		store.Close()
		return nil, err
	}
	routes, err := host.Routes()
	if err != nil {
		store.Close()
		return nil, err
	}
	reg, err := store.Register(cluster.Member{Name: cfg.Host.Member, Addr: cfg.Host.Addr, Routes: routes}, cfg.TTL)
	if err != nil {
		store.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{store: store, reg: reg, host: host, log: cfg.Log, cancel: cancel, done: make(chan struct{})}
	first := make(chan struct{})
	go func() {
		defer close(d.done)
		var once sync.Once
		store.Watch(ctx, func(st *cluster.State, evs []cluster.Event) {
			d.follow(st, evs)
			once.Do(func() { close(first) })
		})
	}()
	select {
	case <-first:
	case <-time.After(cfg.Timeout):
	}
	return d, nil
}

// follow is the watch's callback: remember the state, report members
// joining and leaving, and bring the data path in line.
func (d *Driver) follow(st *cluster.State, evs []cluster.Event) {
	d.mu.Lock()
	d.state = st
	d.mu.Unlock()
	for _, e := range evs {
		switch e.Kind {
		case cluster.MemberJoined:
			d.log.Printf("member %s joined (%v)", e.Name, st.Members[e.Name].Addr)
		case cluster.MemberLeft:
			d.log.Printf("member %s left", e.Name)
		}
	}
	if err := d.host.Sync(st); err != nil {
		d.log.Printf("sync the data path: %v", err)
	}
}

// ParseAdvertise turns --cluster-advertise (an IPv4 address, or the name
// of an interface whose first IPv4 address is meant) into the address.
func ParseAdvertise(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			return netip.Addr{}, fmt.Errorf("--cluster-advertise %s: minidock's overlay is IPv4 only", s)
		}
		return a, nil
	}
	if strings.Contains(s, ":") {
		return netip.Addr{}, fmt.Errorf("--cluster-advertise %q: give an address or an interface name, without a port", s)
	}
	ifi, err := net.InterfaceByName(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--cluster-advertise %q: not an IPv4 address nor an interface: %w", s, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--cluster-advertise %s: %w", s, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("--cluster-advertise %s: the interface has no IPv4 address", s)
}

// CreateNetwork is `network create -d overlay`: the subnet, if given, is
// checked against this host's routes as they are now, then the network
// is stored for every member (cluster.Store.CreateNetwork checks it
// against the other networks and every member's routes). No member makes
// anything in its kernel until a container of its own joins.
func (d *Driver) CreateNetwork(n cluster.Network) (cluster.Network, error) {
	if n.Subnet.IsValid() {
		if err := bridge.CheckOverlap(n.Subnet, ""); err != nil {
			return cluster.Network{}, fmt.Errorf("create network %q: %w", n.Name, conflict{err})
		}
	}
	return d.store.CreateNetwork(n)
}

// conflict is an error that is also a cluster.ErrConflict.
type conflict struct{ error }

func (c conflict) Unwrap() []error { return []error{c.error, cluster.ErrConflict} }

// RemoveNetwork is `network rm`: gone for every member, if no container
// uses it anywhere (cluster.ErrInUse otherwise).
func (d *Driver) RemoveNetwork(ref string) error { return d.store.RemoveNetwork(ref) }

// Networks lists the overlay networks (`network ls`).
func (d *Driver) Networks() ([]cluster.Network, error) { return d.store.Networks() }

// Network finds one by ID, name or ID prefix.
func (d *Driver) Network(ref string) (cluster.Network, error) { return d.store.Network(ref) }

// Attach connects a container to overlay network ref: an address from the
// cluster's IPAM and the endpoint's record in etcd
// (Store.CreateEndpoint), then its interface ifName in the container's
// namespace at netnsPath (Host.Join). ep needs ID, Name and Aliases; the
// rest is filled in. If the data path cannot be made, the record is
// removed again.
func (d *Driver) Attach(ref string, ep cluster.Endpoint, netnsPath, ifName string) (cluster.Endpoint, error) {
	n, err := d.store.Network(ref)
	if err != nil {
		return cluster.Endpoint{}, err
	}
	ep.Network, ep.Host = n.ID, d.reg.Member().Name
	ep, err = d.store.CreateEndpoint(ep)
	if err != nil {
		return cluster.Endpoint{}, err
	}
	if err := d.host.Join(n, ep, netnsPath, ifName); err != nil {
		if derr := d.store.DeleteEndpoint(n.ID, ep.ID); derr != nil {
			err = fmt.Errorf("%w (and removing its record: %v)", err, derr)
		}
		return cluster.Endpoint{}, err
	}
	return ep, nil
}

// Detach disconnects endpoint epID from network netID: its record and
// address go first (so that with etcd away nothing changes and the call
// can be made again), then its interface (Host.Leave). An endpoint
// already gone from etcd is not an error.
func (d *Driver) Detach(netID, epID string) error {
	if err := d.store.DeleteEndpoint(netID, epID); err != nil && !errors.Is(err, cluster.ErrNotFound) {
		return err
	}
	return d.host.Leave(netID, epID)
}

// Lookup answers the embedded DNS server: the addresses of name (a
// container name or alias) on network netID, on any host.
func (d *Driver) Lookup(netID, name string) []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == nil {
		return nil
	}
	return d.state.Lookup(netID, name)
}

// Members are the live members as the watch last saw them (`info`).
func (d *Driver) Members() []cluster.Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ms []cluster.Member
	if d.state != nil {
		for _, m := range d.state.Members {
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms
}

// StoreURL is the cluster store, as `info` shows it.
func (d *Driver) StoreURL() string { return d.store.URL() }

// Host is this host's data path (ConnectGateway, GatewayNetwork).
func (d *Driver) Host() *Host { return d.host }

// Close stops the watch and leaves the cluster (the lease is revoked).
// The data path stays: containers keep talking while the daemon is away,
// and the next Start brings it up to date.
func (d *Driver) Close() error {
	d.cancel()
	<-d.done
	err := d.reg.Close()
	d.store.Close()
	return err
}
