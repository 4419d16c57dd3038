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
	// Changed, if set, is called from the watch's goroutine after each
	// state the watch delivers has been synced into the data path, with
	// the state and what changed (the engine mirrors the networks).
	Changed func(st *cluster.State, evs []cluster.Event)
}

// Driver is one daemon's overlay driver: this host's data path, and, once
// joined, the cluster store, this host's membership and the watch that
// keeps the data path in step with the cluster. The engine's network
// package calls it; its methods are safe for use by several goroutines.
type Driver struct {
	cfg  DriverConfig
	eps  []string // etcd's client addresses
	host *Host
	log  *log.Logger

	joinMu sync.Mutex // one Join at a time

	mu      sync.Mutex
	store   *cluster.Store // nil until Join succeeds
	reg     *cluster.Registration
	cancel  context.CancelFunc
	done    chan struct{}  // closed when the watch has ended
	joinErr error          // why the last Join failed
	state   *cluster.State // the last one the watch delivered
	changed chan struct{}  // closed (and replaced) at each new state
}

// New makes the overlay driver of this host without contacting etcd: the
// store's address is parsed and the host checked (NewHost: the advertise
// address must be one of its own, which gives the underlay MTU). The host's
// side works from here on (Host.Leave, ConnectGateway...); what needs the
// cluster waits for Join.
func New(cfg DriverConfig) (*Driver, error) {
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
	host, err := NewHost(cfg.Host)
	if err != nil {
		return nil, err
	}
	return &Driver{cfg: cfg, eps: eps, host: host, log: cfg.Log, changed: make(chan struct{})}, nil
}

// Start is New and Join: a driver in the cluster, or an error.
func Start(cfg DriverConfig) (*Driver, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.Join(); err != nil {
		return nil, err
	}
	return d, nil
}

// Join joins this host to the cluster, in this order:
//
//  1. cluster.Open: connect to etcd (an etcd that does not answer is a
//     cluster.ErrUnavailable: the caller may try again later);
//  2. Host.Routes: the host's routes, which no overlay subnet may overlap;
//  3. Store.Register: this member's record (address, routes) under a
//     lease kept alive from now on;
//  4. Store.Watch in a goroutine: every change of the cluster goes to
//     Host.Sync, then to DriverConfig.Changed. Join returns once the
//     first state has been synced (or after the timeout, if etcd went
//     away meanwhile).
//
// Joining a driver that has joined already does nothing.
func (d *Driver) Join() error {
	d.joinMu.Lock()
	defer d.joinMu.Unlock()
	d.mu.Lock()
	joined := d.store != nil
	d.mu.Unlock()
	if joined {
		return nil
	}
	err := d.join()
	d.mu.Lock()
	d.joinErr = err
	d.mu.Unlock()
	return err
}

func (d *Driver) join() error {
	store, err := cluster.Open(cluster.Config{Endpoints: d.eps, Prefix: d.cfg.Prefix, Timeout: d.cfg.Timeout})
	if err != nil {
		return err
	}
	routes, err := d.host.Routes()
	if err != nil {
		store.Close()
		return err
	}
	reg, err := store.Register(cluster.Member{Name: d.cfg.Host.Member, Addr: d.cfg.Host.Addr, Routes: routes}, d.cfg.TTL)
	if err != nil {
		store.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.mu.Lock()
	d.store, d.reg, d.cancel, d.done = store, reg, cancel, done
	d.mu.Unlock()
	first := make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		store.Watch(ctx, func(st *cluster.State, evs []cluster.Event) {
			d.follow(st, evs)
			once.Do(func() { close(first) })
		})
	}()
	select {
	case <-first:
	case <-time.After(d.cfg.Timeout):
	}
	return nil
}

// follow is the watch's callback: report members joining and leaving,
// bring the data path in line, tell the engine, then publish the state
// (Lookup, Members, and the calls that wait for their own change to come
// back through the watch).
func (d *Driver) follow(st *cluster.State, evs []cluster.Event) {
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
	if d.cfg.Changed != nil {
		d.cfg.Changed(st, evs)
	}
	d.mu.Lock()
	d.state = st
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// waitFor waits (at most the request timeout) until a state the watch
// delivered satisfies ok: a change this member made in etcd has come back
// through its own watch, so what follows here sees it. It reports whether
// it did.
func (d *Driver) waitFor(ok func(st *cluster.State) bool) bool {
	deadline := time.NewTimer(d.cfg.Timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		st, ch := d.state, d.changed
		d.mu.Unlock()
		if st != nil && ok(st) {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// joined is the store, or why there is none yet: an error that is a
// cluster.ErrUnavailable when etcd did not answer.
func (d *Driver) joined(op string) (*cluster.Store, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.store != nil {
		return d.store, nil
	}
	if d.joinErr != nil {
		return nil, fmt.Errorf("%s: this daemon has not joined the cluster: %w", op, d.joinErr)
	}
	return nil, fmt.Errorf("%s: this daemon has not joined the cluster %s yet: %w", op, d.StoreURL(), cluster.ErrUnavailable)
}

// Joined reports whether the driver is in the cluster, and if not, why
// (the last Join's error).
func (d *Driver) Joined() (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.store != nil, d.joinErr
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
// against the other networks and every member's routes). It returns once
// this member's watch has seen it. No member makes anything in its kernel
// until a container of its own joins.
func (d *Driver) CreateNetwork(n cluster.Network) (cluster.Network, error) {
	store, err := d.joined(fmt.Sprintf("create network %q", n.Name))
	if err != nil {
		return cluster.Network{}, err
	}
	if n.Subnet.IsValid() {
		if err := bridge.CheckOverlap(n.Subnet, ""); err != nil {
			return cluster.Network{}, fmt.Errorf("create network %q: %w", n.Name, conflict{err})
		}
	}
	n, err = store.CreateNetwork(n)
	if err != nil {
		return cluster.Network{}, err
	}
	d.waitFor(func(st *cluster.State) bool { _, ok := st.Networks[n.ID]; return ok })
	return n, nil
}

// conflict is an error that is also a cluster.ErrConflict.
type conflict struct{ error }

func (c conflict) Unwrap() []error { return []error{c.error, cluster.ErrConflict} }

// RemoveNetwork is `network rm`: gone for every member, if no container
// uses it anywhere (cluster.ErrInUse otherwise). It returns once this
// member's watch has seen it go.
func (d *Driver) RemoveNetwork(ref string) error {
	store, err := d.joined("remove network " + ref)
	if err != nil {
		return err
	}
	n, err := store.Network(ref)
	if err != nil {
		return fmt.Errorf("remove network: %w", err)
	}
	if err := store.RemoveNetwork(n.ID); err != nil {
		return err
	}
	d.waitFor(func(st *cluster.State) bool { _, ok := st.Networks[n.ID]; return !ok })
	return nil
}

// Networks lists the overlay networks (`network ls`), read from etcd.
func (d *Driver) Networks() ([]cluster.Network, error) {
	store, err := d.joined("list networks")
	if err != nil {
		return nil, err
	}
	return store.Networks()
}

// Network finds one by ID, name or ID prefix: in the state the watch
// last delivered, else (made a moment ago elsewhere) in etcd, and then
// waits for the watch to bring it here too.
func (d *Driver) Network(ref string) (cluster.Network, error) {
	d.mu.Lock()
	st := d.state
	d.mu.Unlock()
	if st != nil {
		if n, ok := st.Networks[ref]; ok {
			return n, nil
		}
		for _, n := range st.Networks {
			if n.Name == ref {
				return n, nil
			}
		}
	}
	store, err := d.joined(fmt.Sprintf("network %q", ref))
	if err != nil {
		return cluster.Network{}, err
	}
	n, err := store.Network(ref)
	if err != nil {
		return cluster.Network{}, err
	}
	d.waitFor(func(st *cluster.State) bool { _, ok := st.Networks[n.ID]; return ok })
	return n, nil
}

// Reserve takes an address on network netID for endpoint ep and stores
// the endpoint, as this host's (cluster.Store.CreateEndpoint: the
// cluster's IPAM, an etcd transaction). ep needs ID, Name and Aliases,
// and Addr if a given address is wanted; the rest is filled in. It
// returns once this member's watch has seen the endpoint, so that this
// host's DNS answers its name at once.
func (d *Driver) Reserve(netID string, ep cluster.Endpoint) (cluster.Endpoint, error) {
	store, err := d.joined(fmt.Sprintf("connect %s to network %.12s", ep.Name, netID))
	if err != nil {
		return cluster.Endpoint{}, err
	}
	ep.Network, ep.Host = netID, d.cfg.Host.Member
	ep, err = store.CreateEndpoint(ep)
	if err != nil {
		return cluster.Endpoint{}, err
	}
	d.waitFor(func(st *cluster.State) bool { _, ok := st.Endpoints[netID][ep.ID]; return ok })
	return ep, nil
}

// Release removes endpoint epID of network netID from the cluster and
// gives its address back. An endpoint already gone is not an error.
func (d *Driver) Release(netID, epID string) error {
	store, err := d.joined(fmt.Sprintf("disconnect endpoint %.12s from network %.12s", epID, netID))
	if err != nil {
		return err
	}
	if err := store.DeleteEndpoint(netID, epID); err != nil && !errors.Is(err, cluster.ErrNotFound) {
		return err
	}
	return nil
}

// Attach connects a container to overlay network ref: an address from the
// cluster's IPAM and the endpoint's record in etcd (Reserve), then its
// interface ifName in the container's namespace at netnsPath (Host.Join).
// ep needs ID, Name and Aliases; the rest is filled in. If the data path
// cannot be made, the record is removed again.
func (d *Driver) Attach(ref string, ep cluster.Endpoint, netnsPath, ifName string) (cluster.Endpoint, error) {
	n, err := d.Network(ref)
	if err != nil {
		return cluster.Endpoint{}, err
	}
	ep, err = d.Reserve(n.ID, ep)
	if err != nil {
		return cluster.Endpoint{}, err
	}
	if err := d.host.Join(n, ep, netnsPath, ifName); err != nil {
		if derr := d.Release(n.ID, ep.ID); derr != nil {
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
	if err := d.Release(netID, epID); err != nil {
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

// State is the cluster as the watch last delivered it (nil before the
// first); it is never changed afterwards.
func (d *Driver) State() *cluster.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
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

// Member is this host's name in the cluster.
func (d *Driver) Member() string { return d.cfg.Host.Member }

// StoreURL is the cluster store, as `info` shows it.
func (d *Driver) StoreURL() string { return "etcd://" + strings.Join(d.eps, ",") }

// Host is this host's data path (ConnectGateway, GatewayNetwork).
func (d *Driver) Host() *Host { return d.host }

// UpdateRoutes publishes this host's routes again in its member record
// (after a bridge network was made or removed here), so that overlay
// networks created anywhere are checked against them.
func (d *Driver) UpdateRoutes() error {
	d.mu.Lock()
	reg := d.reg
	d.mu.Unlock()
	if reg == nil {
		return nil // Join publishes them
	}
	routes, err := d.host.Routes()
	if err != nil {
		return err
	}
	return reg.SetRoutes(routes)
}

// Stop stops the watch and the lease's renewals without leaving the
// cluster: this member leaves when its lease expires, unless the daemon
// is back before that (its containers, which keep running, stay
// reachable across a restart). The data path stays.
func (d *Driver) Stop() {
	d.leave(false)
}

// Close stops the watch and leaves the cluster at once (the lease is
// revoked). The data path stays: containers keep talking while the daemon
// is away, and the next Join brings it up to date.
func (d *Driver) Close() error {
	return d.leave(true)
}

func (d *Driver) leave(revoke bool) error {
	d.mu.Lock()
	store, reg, cancel, done := d.store, d.reg, d.cancel, d.done
	d.store, d.reg = nil, nil
	d.mu.Unlock()
	if store == nil {
		return nil
	}
	cancel()
	<-done
	var err error
	if revoke {
		err = reg.Close()
	} else {
		reg.Stop()
	}
	store.Close()
	return err
}
