package cluster

// The store against a real etcd (Debian's etcd-server 3.4), one per test,
// started by pid on 127.0.0.1 with a temporary data directory that is
// removed afterwards. Several Stores on one etcd stand for several members.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"minidock/cluster/etcdtest"
)

func TestParseStoreURL(t *testing.T) {
	eps, err := ParseStoreURL("etcd://10.0.0.1:2379,etcd2:2379")
	if err != nil || strings.Join(eps, " ") != "10.0.0.1:2379 etcd2:2379" {
		t.Fatalf("got %v, %v", eps, err)
	}
	for _, bad := range []string{"consul://x:1", "etcd://", "etcd://host", "etcd://host:", "etcd://h:1/path", "etcd://a:1,"} {
		if _, err := ParseStoreURL(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: want ErrInvalid, got %v", bad, err)
		}
	}
}

// openStore connects to etcd as one member would; keys under prefix.
func openStore(t *testing.T, srv *etcdtest.Server, prefix string) *Store {
	t.Helper()
	s, err := Open(Config{Endpoints: []string{srv.Endpoint()}, Prefix: prefix, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// noKeysLeft checks that the test's prefix is empty in etcd at the end.
func noKeysLeft(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		t.Errorf("leak: key %s left in etcd", kv.Key)
	}
}

func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	_, err = Open(Config{Endpoints: []string{addr}, Timeout: time.Second})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "etcd://"+addr) {
		t.Fatalf("want ErrUnavailable naming etcd://%s, got %v", addr, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %s with a 1s timeout", d)
	}
	t.Logf("error: %v", err)
}

// watcher collects the events of a Watch.
type watcher struct {
	mu     sync.Mutex
	events []Event
	last   *State
	cancel context.CancelFunc
	done   chan struct{}
}

func watch(t *testing.T, s *Store) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		s.Watch(ctx, func(st *State, evs []Event) {
			w.mu.Lock()
			w.events = append(w.events, evs...)
			w.last = st
			w.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// waitEvent waits up to d for an event of kind about name; it returns
// when it saw it.
func (w *watcher) waitEvent(t *testing.T, kind EventKind, name string, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for i, e := range w.events {
			if e.Kind == kind && e.Name == name {
				w.events = append(w.events[:i:i], w.events[i+1:]...)
				w.mu.Unlock()
				return time.Now()
			}
		}
		w.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s event for %s within %s", kind, name, d)
	return time.Time{}
}

func (w *watcher) state() *State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func TestMembership(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	observer := openStore(t, srv, "/t/")
	w := watch(t, observer)

	a := openStore(t, srv, "/t/")
	ra, err := a.Register(Member{Name: "host-a", Addr: netip.MustParseAddr("10.99.0.11")}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w.waitEvent(t, MemberJoined, "host-a", 5*time.Second)
	b := openStore(t, srv, "/t/")
	rb, err := b.Register(Member{Name: "host-b", Addr: netip.MustParseAddr("10.99.0.12")}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w.waitEvent(t, MemberJoined, "host-b", 5*time.Second)
	ms, err := observer.Members()
	if err != nil || len(ms) != 2 || ms[0].Name != "host-a" || ms[1].Addr != netip.MustParseAddr("10.99.0.12") {
		t.Fatalf("members: %+v, %v", ms, err)
	}

	// The name is taken by a live member at another address.
	if _, err := observer.Register(Member{Name: "host-b", Addr: netip.MustParseAddr("10.99.0.99")}, 2*time.Second); !errors.Is(err, ErrConflict) {
		t.Fatalf("same name, other address: want ErrConflict, got %v", err)
	} else {
		t.Logf("error: %v", err)
	}

	// Leaving on purpose is seen at once.
	if err := rb.Close(); err != nil {
		t.Fatal(err)
	}
	w.waitEvent(t, MemberLeft, "host-b", time.Second)

	// Keep-alives through a whole TTL keep the member in: it outlives
	// several TTLs.
	time.Sleep(3 * time.Second)
	if _, ok := w.state().Members["host-a"]; !ok {
		t.Fatal("host-a fell out of the cluster although its lease is kept alive")
	}

	// A member that dies (its client gone, no revoke) disappears when
	// its lease expires: not at once, within about one TTL.
	died := time.Now()
	a.Close()
	left := w.waitEvent(t, MemberLeft, "host-a", 6*time.Second)
	t.Logf("host-a left %s after its client died (TTL 2s)", left.Sub(died).Round(10*time.Millisecond))
	if left.Sub(died) < time.Second {
		t.Errorf("host-a left after %s, before its lease could expire", left.Sub(died))
	}
	_ = ra
	noKeysLeft(t, observer)
}

// TestMemberRestart: a daemon that restarts before its old lease ran out
// takes its record over (same name, same address), and the old lease's
// expiry does not remove the new record.
func TestMemberRestart(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	s1 := openStore(t, srv, "/t/")
	m := Member{Name: "host-a", Addr: netip.MustParseAddr("10.99.0.11")}
	if _, err := s1.Register(m, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	s1.Close() // dies; its lease has up to 2s to live

	s2 := openStore(t, srv, "/t/")
	r2, err := s2.Register(m, 2*time.Second)
	if err != nil {
		t.Fatalf("register again after a restart: %v", err)
	}
	time.Sleep(4 * time.Second) // the old lease has expired by now
	ms, err := s2.Members()
	if err != nil || len(ms) != 1 {
		t.Fatalf("after the old lease expired: members %+v, %v", ms, err)
	}
	r2.Close()
	noKeysLeft(t, s2)
}

func TestNetworks(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	a := openStore(t, srv, "/t/")
	b := openStore(t, srv, "/t/")
	reg, err := b.Register(Member{Name: "host-b", Addr: netip.MustParseAddr("10.99.0.12"),
		Routes: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24"), netip.MustParsePrefix("192.168.50.0/24")}}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	blue, err := a.CreateNetwork(Network{Name: "blue"})
	if err != nil {
		t.Fatal(err)
	}
	if blue.Subnet.String() != "10.0.0.0/24" || blue.Gateway.String() != "10.0.0.1" || blue.VNI != FirstVNI || blue.Port != DefaultPort {
		t.Fatalf("defaults: %+v", blue)
	}
	// The next pick skips 10.0.1.0/24: a route of host-b.
	green, err := a.CreateNetwork(Network{Name: "green"})
	if err != nil || green.Subnet.String() != "10.0.2.0/24" || green.VNI != FirstVNI+1 {
		t.Fatalf("second network: %+v, %v", green, err)
	}
	// Visible to the other member.
	got, err := b.Network("blue")
	if err != nil || got.ID != blue.ID || got.VNI != blue.VNI {
		t.Fatalf("b sees blue as %+v, %v", got, err)
	}
	if got, err := b.Network(blue.ID[:8]); err != nil || got.Name != "blue" {
		t.Fatalf("by ID prefix: %+v, %v", got, err)
	}

	for _, c := range []struct {
		n    Network
		kind error
		want string
	}{
		{Network{Name: "blue"}, ErrConflict, "network with name blue already exists"},
		{Network{Name: "red", VNI: FirstVNI}, ErrConflict, "VNI 4096 is used by network blue"},
		{Network{Name: "red", Subnet: netip.MustParsePrefix("10.0.0.0/16")}, ErrConflict, "10.0.0.0/16 overlaps subnet 10.0."},
		{Network{Name: "red", Subnet: netip.MustParsePrefix("192.168.50.128/25")}, ErrConflict, "overlaps the route to 192.168.50.0/24 on member host-b"},
		{Network{Name: "red", VNI: 1 << 24}, ErrInvalid, "VXLAN network identifiers are 1 to 16777215"},
		{Network{Name: "red", Subnet: netip.MustParsePrefix("172.20.0.1/24")}, ErrInvalid, "host bits are set"},
		{Network{Name: "-red"}, ErrInvalid, "network name"},
	} {
		_, err := a.CreateNetwork(c.n)
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: want %v with %q, got %v", c.n, c.kind, c.want, err)
		}
	}

	// In use: an endpoint on host-b keeps blue, for everyone.
	ep, err := b.CreateEndpoint(Endpoint{ID: "c1", Network: blue.ID, Name: "web", Host: "host-b"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Addr.String() != "10.0.0.2" || ep.MAC != "02:42:0a:00:00:02" {
		t.Fatalf("endpoint: %+v", ep)
	}
	err = a.RemoveNetwork("blue")
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "web (10.0.0.2) on host-b") {
		t.Fatalf("remove a network in use: %v", err)
	}
	t.Logf("error: %v", err)
	if err := b.DeleteEndpoint(blue.ID, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteEndpoint(blue.ID, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if err := a.RemoveNetwork("blue"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Network("blue"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b still sees blue: %v", err)
	}
	if err := a.RemoveNetwork(green.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateEndpoint(Endpoint{ID: "c2", Network: blue.ID, Name: "x", Host: "host-b"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("endpoint on a removed network: %v", err)
	}
	reg.Close()
	noKeysLeft(t, a)
}

func TestEndpointAddress(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	s := openStore(t, srv, "/t/")
	n, err := s.CreateNetwork(Network{Name: "n", Subnet: netip.MustParsePrefix("10.5.0.0/29")})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(id, addr string) (Endpoint, error) {
		ep := Endpoint{ID: id, Network: n.ID, Name: id, Host: "h"}
		if addr != "" {
			ep.Addr = netip.MustParseAddr(addr)
		}
		return s.CreateEndpoint(ep)
	}
	if ep, err := mk("a", "10.5.0.4"); err != nil || ep.Addr.String() != "10.5.0.4" {
		t.Fatalf("asked-for address: %+v %v", ep, err)
	}
	for _, c := range []struct{ id, addr, want string }{
		{"b", "10.5.0.4", "10.5.0.4 is already in use"},
		{"b", "10.5.0.1", "is the gateway"},
		{"b", "10.5.0.7", "not a host address"},
		{"b", "10.6.0.2", "not a host address"},
		{"a", "", "endpoint a already exists"},
	} {
		if _, err := mk(c.id, c.addr); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: want %q, got %v", c.id, c.addr, c.want, err)
		}
	}
	// /29: .2 .3 .5 .6 are left
	var got []string
	for _, id := range []string{"b", "c", "d", "e"} {
		ep, err := mk(id, "")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ep.Addr.String())
	}
	if strings.Join(got, " ") != "10.5.0.2 10.5.0.3 10.5.0.5 10.5.0.6" {
		t.Fatalf("picked %v", got)
	}
	if _, err := mk("f", ""); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "no free address") {
		t.Fatalf("full subnet: %v", err)
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if err := s.DeleteEndpoint(n.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveNetwork("n"); err != nil {
		t.Fatal(err)
	}
	noKeysLeft(t, s)
}

// TestConcurrentIPAM: three members, each with many goroutines, allocate
// addresses on one network at the same moment, and create networks at the
// same moment. No address, VNI or subnet may be handed out twice.
func TestConcurrentIPAM(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	const members, perMember, each = 3, 8, 5
	stores := make([]*Store, members)
	for i := range stores {
		stores[i] = openStore(t, srv, "/t/")
	}
	n, err := stores[0].CreateNetwork(Network{Name: "shared", Subnet: netip.MustParsePrefix("10.7.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		owner = map[netip.Addr]string{}
		errs  []error
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	for m := 0; m < members; m++ {
		for g := 0; g < perMember; g++ {
			wg.Add(1)
			go func(s *Store, m, g int) {
				defer wg.Done()
				<-start
				for k := 0; k < each; k++ {
					id := fmt.Sprintf("m%d-g%d-%d", m, g, k)
					ep, err := s.CreateEndpoint(Endpoint{ID: id, Network: n.ID, Name: id, Host: fmt.Sprintf("host-%d", m)})
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else if prev, dup := owner[ep.Addr]; dup {
						errs = append(errs, fmt.Errorf("address %v handed to %s and %s", ep.Addr, prev, id))
					} else {
						owner[ep.Addr] = id
					}
					mu.Unlock()
				}
			}(stores[m], m, g)
		}
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(owner) != members*perMember*each {
		t.Fatalf("%d addresses handed out, want %d", len(owner), members*perMember*each)
	}
	// What etcd holds agrees: as many endpoints, all addresses distinct.
	eps, err := stores[1].Endpoints(n.ID)
	if err != nil || len(eps) != len(owner) {
		t.Fatalf("etcd has %d endpoints (%v), want %d", len(eps), err, len(owner))
	}
	for _, ep := range eps {
		if owner[ep.Addr] != ep.ID {
			t.Errorf("etcd: %v belongs to %s, the allocator said %s", ep.Addr, ep.ID, owner[ep.Addr])
		}
	}

	// Networks created at the same moment get distinct VNIs and subnets.
	var nets []Network
	start = make(chan struct{})
	for m := 0; m < members; m++ {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(s *Store, name string) {
				defer wg.Done()
				<-start
				n, err := s.CreateNetwork(Network{Name: name})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				nets = append(nets, n)
			}(stores[m], fmt.Sprintf("net-%d-%d", m, g))
		}
	}
	close(start)
	wg.Wait()
	vnis := map[uint32]string{n.VNI: n.Name}
	for i, a := range nets {
		if o, dup := vnis[a.VNI]; dup {
			t.Errorf("VNI %d given to %s and %s", a.VNI, o, a.Name)
		}
		vnis[a.VNI] = a.Name
		for _, b := range append(nets[i+1:], n) {
			if a.Subnet.Overlaps(b.Subnet) {
				t.Errorf("subnets of %s (%v) and %s (%v) overlap", a.Name, a.Subnet, b.Name, b.Subnet)
			}
		}
	}

	for _, ep := range eps {
		if err := stores[2].DeleteEndpoint(n.ID, ep.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range append(nets, n) {
		if err := stores[0].RemoveNetwork(x.ID); err != nil {
			t.Fatal(err)
		}
	}
	noKeysLeft(t, stores[0])
}

// TestEtcdDown: with etcd stopped, every operation fails after the
// timeout with ErrUnavailable naming the store; a registration and a
// watch outlive the outage; once etcd is back, operations succeed again.
func TestEtcdDown(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	s, err := Open(Config{Endpoints: []string{srv.Endpoint()}, Prefix: "/t/", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg, err := s.Register(Member{Name: "host-a", Addr: netip.MustParseAddr("10.99.0.11")}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := watch(t, openStore(t, srv, "/t/"))
	w.waitEvent(t, MemberJoined, "host-a", 5*time.Second)

	srv.Stop()
	_, err = s.CreateNetwork(Network{Name: "during"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `create network "during"`) ||
		!strings.Contains(err.Error(), "etcd://"+srv.Endpoint()) {
		t.Fatalf("create network with etcd down: %v", err)
	}
	t.Logf("error: %v", err)
	if _, err := s.Members(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("members with etcd down: %v", err)
	}
	time.Sleep(3 * time.Second) // longer than the TTL: the client gives the lease up

	// Once etcd is back, the client reconnects within its backoff (at
	// most a second apart) and the same call succeeds.
	srv.Start()
	back := time.Now()
	var n Network
	for {
		if n, err = s.CreateNetwork(Network{Name: "after"}); err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) || time.Since(back) > 5*time.Second {
			t.Fatalf("create network once etcd is back: %v", err)
		}
	}
	t.Logf("etcd back: create succeeded after %s", time.Since(back).Round(time.Millisecond))
	// The watch that was open before the outage goes on.
	w.waitEvent(t, NetworkCreated, n.ID, 5*time.Second)
	// The member is (again) in the cluster.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ms, err := s.Members()
		if err == nil && len(ms) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member not back after the outage: %v %v (registration: %v)", ms, err, reg.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.RemoveNetwork("after"); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	noKeysLeft(t, s)
}
