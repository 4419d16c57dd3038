package vxlan

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"minidock/bridge"
	"minidock/cluster"
)

const sumPort = 7000

func sumAddr(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, sumPort) }

// TestOverlay: three hosts, two overlay networks. Containers of one
// network reach each other across hosts (TCP with a checksum) and by
// name; containers of the other network cannot reach them, on the same
// host or another, through the overlay or the gateway bridge; every
// container gets out through its host's gateway bridge with the host's
// address; each host's vxlan0 holds exactly the entries of the other
// hosts' containers. Afterwards nothing is left anywhere.
func TestOverlay(t *testing.T) {
	c := newTestCluster(t, "host-a", "host-b", "host-c")
	a, b, hc := c.hosts[0], c.hosts[1], c.hosts[2]

	blue := a.must(t, request{Op: "create", Network: cluster.Network{Name: "blue"}}).Network
	red := b.must(t, request{Op: "create", Network: cluster.Network{Name: "red", Subnet: netip.MustParsePrefix("10.200.0.0/24")}}).Network
	// 10.0.0.0/24 is the first /24 of the pool; the underlay (10.99.0.0/24)
	// is a route of every member and would have been skipped
	if blue.Subnet.String() != "10.0.0.0/24" || red.VNI != blue.VNI+1 {
		t.Fatalf("blue: %+v, red: %+v", blue, red)
	}
	for _, h := range c.hosts {
		var names []string
		for _, n := range h.must(t, request{Op: "networks"}).Networks {
			names = append(names, n.Name)
		}
		if strings.Join(names, " ") != "blue red" {
			t.Fatalf("%s lists networks %v", h.name, names)
		}
	}

	a1 := c.run(t, a, "blue", "a1")
	b1 := c.run(t, b, "blue", "b1")
	c1 := c.run(t, hc, "blue", "c1")
	r1 := c.run(t, b, "red", "r1") // on b1's host
	r2 := c.run(t, a, "red", "r2") // on a1's host
	for _, ct := range []*container{a1, b1, c1, r1, r2} {
		serveSum(t, ct.ns, sumAddr(ct.ep.Addr))
		serveSum(t, ct.ns, sumAddr(ct.gw))
	}

	t.Run("reach", func(t *testing.T) {
		before := a.vxlanTxBytes(t, blue.ID)
		for _, p := range [][2]*container{{a1, b1}, {a1, c1}, {b1, c1}, {c1, a1}, {r2, r1}} {
			if err := transfer(p[0].ns, sumAddr(p[1].ep.Addr), 4<<20); err != nil {
				t.Errorf("%s (%s) -> %s (%s): %v", p[0].name, p[0].host.name, p[1].name, p[1].host.name, err)
			}
		}
		// a1's 8 MiB went through host-a's vxlan0: encapsulated, not
		// by some other way
		if sent := a.vxlanTxBytes(t, blue.ID) - before; sent < 8<<20 {
			t.Errorf("host-a's vxlan0 sent %d bytes, want at least 8 MiB", sent)
		}
	})

	t.Run("names", func(t *testing.T) {
		for _, h := range c.hosts {
			for _, ct := range []*container{a1, b1, c1} {
				for _, name := range []string{ct.name, strings.ToUpper(ct.name), ct.name + "-alias"} {
					got := h.must(t, request{Op: "lookup", Ref: blue.ID, Name: name}).Addrs
					if len(got) != 1 || got[0] != ct.ep.Addr {
						t.Errorf("%s: %s on blue = %v, want %v", h.name, name, got, ct.ep.Addr)
					}
				}
			}
			if got := h.must(t, request{Op: "lookup", Ref: blue.ID, Name: "r1"}).Addrs; len(got) != 0 {
				t.Errorf("%s: r1 (on red) answers on blue: %v", h.name, got)
			}
		}
	})

	t.Run("isolation", func(t *testing.T) {
		// the same probe reaches what it must (else the checks below
		// would pass for a broken probe)
		if err := probe(a1.ns, sumAddr(b1.ep.Addr)); err != nil {
			t.Fatalf("probe a1 -> b1: %v", err)
		}
		if err := probe(r2.ns, sumAddr(r1.ep.Addr)); err != nil {
			t.Fatalf("probe r2 -> r1: %v", err)
		}
		for _, p := range []struct {
			from *container
			to   netip.Addr
			what string
		}{
			{r1, b1.ep.Addr, "red r1 -> blue b1, same host"},
			{r2, b1.ep.Addr, "red r2 -> blue b1, other host"},
			{r2, a1.ep.Addr, "red r2 -> blue a1, same host"},
			{r2, a1.gw, "red r2 -> a1's gateway address, same host"},
			{a1, r2.gw, "blue a1 -> r2's gateway address, same host"},
		} {
			if err := probe(p.from.ns, sumAddr(p.to)); err == nil {
				t.Errorf("%s (%v): connected", p.what, p.to)
			}
		}
	})

	t.Run("outbound", func(t *testing.T) {
		// a server "outside": in the underlay, on no overlay network
		var l net.Listener
		if err := c.ul.do(func() (err error) { l, err = net.Listen("tcp4", underlayGateway.String()+":8080"); return err }); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				fmt.Fprintln(conn, conn.RemoteAddr().(*net.TCPAddr).IP)
				conn.Close()
			}
		}()
		for _, ct := range []*container{a1, b1, r2} {
			conn, err := dialFrom(ct.ns, netip.AddrPortFrom(underlayGateway, 8080), 3*time.Second)
			if err != nil {
				t.Errorf("%s cannot get out: %v", ct.name, err)
				continue
			}
			seen, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.TrimSpace(seen) != ct.host.addr.String() {
				t.Errorf("%s got out as %s, want its host's address %v (masquerade)", ct.name, strings.TrimSpace(seen), ct.host.addr)
			}
		}
	})

	t.Run("entries", func(t *testing.T) {
		entry := func(ct *container) (string, string) {
			return fmt.Sprintf("%s>%s", ct.ep.MAC, ct.host.addr), fmt.Sprintf("%s>%s", ct.ep.Addr, ct.ep.MAC)
		}
		for _, x := range []struct {
			h      *testHost
			remote []*container
		}{{a, []*container{b1, c1}}, {b, []*container{a1, c1}}, {hc, []*container{a1, b1}}} {
			var wantFwd, wantNeigh []string
			for _, ct := range x.remote {
				f, n := entry(ct)
				wantFwd, wantNeigh = append(wantFwd, f), append(wantNeigh, n)
			}
			slices.Sort(wantFwd)
			slices.Sort(wantNeigh)
			fwd, neigh := x.h.fdb(t, blue.ID)
			if !slices.Equal(fwd, wantFwd) || !slices.Equal(neigh, wantNeigh) {
				t.Errorf("%s: blue's vxlan0 has forwarding %v and neighbours %v, want %v and %v", x.h.name, fwd, neigh, wantFwd, wantNeigh)
			}
		}
	})

	// Removing a network in use fails on every host, naming the users.
	r := hc.call(t, request{Op: "remove", Ref: "blue"})
	if !strings.Contains(r.Err, "a1 (10.0.0.2) on host-a") {
		t.Errorf("remove blue while in use: %q", r.Err)
	}

	for _, ct := range []*container{a1, b1, c1, r1, r2} {
		ct.remove(t)
	}
	hc.must(t, request{Op: "remove", Ref: "blue"}) // on a host that never created it
	a.must(t, request{Op: "remove", Ref: "red"})
	for _, h := range c.hosts {
		if ns := h.must(t, request{Op: "networks"}).Networks; len(ns) != 0 {
			t.Errorf("%s still lists %v", h.name, ns)
		}
		h.stop(t)
		h.checkClean(t)
	}
	if keys := c.etcdKeys(t); len(keys) != 0 {
		t.Errorf("leak: keys left in etcd: %v", keys)
	}
}

// TestOverlayFaults: with etcd stopped, containers keep talking and new
// operations fail with an error that says so, until etcd is back. A host
// killed with SIGKILL leaves its containers reachable (the data path is
// the kernel's) until its lease expires; then the other hosts drop its
// entries. Restarted, it registers again and catches up with what changed
// while it was away.
func TestOverlayFaults(t *testing.T) {
	c := newTestCluster(t, "host-a", "host-b", "host-c")
	a, b, hc := c.hosts[0], c.hosts[1], c.hosts[2]
	blue := a.must(t, request{Op: "create", Network: cluster.Network{Name: "blue"}}).Network
	a1 := c.run(t, a, "blue", "a1")
	b1 := c.run(t, b, "blue", "b1")
	c1 := c.run(t, hc, "blue", "c1")
	for _, ct := range []*container{a1, b1, c1} {
		serveSum(t, ct.ns, sumAddr(ct.ep.Addr))
	}
	var b2 *container

	t.Run("etcd down", func(t *testing.T) {
		c.etcd.Stop()
		for _, p := range [][2]*container{{a1, b1}, {b1, c1}} {
			if err := transfer(p[0].ns, sumAddr(p[1].ep.Addr), 1<<20); err != nil {
				t.Errorf("with etcd down, %s -> %s: %v", p[0].name, p[1].name, err)
			}
		}
		r := b.call(t, request{Op: "create", Network: cluster.Network{Name: "green"}})
		want := "cluster store etcd://" + c.etcd.Endpoint() + " did not answer within 2s"
		if !strings.Contains(r.Err, want) || !strings.Contains(r.Err, `create network "green"`) {
			t.Errorf("create with etcd down: %q, want it to say %q", r.Err, want)
		}
		t.Logf("with etcd down: %s", r.Err)
		ns := newNetNS(t)
		if r := a.call(t, request{Op: "attach", Ref: "blue", Endpoint: cluster.Endpoint{ID: "x", Name: "x"}, NetNS: ns.path}); !strings.Contains(r.Err, want) {
			t.Errorf("attach with etcd down: %q", r.Err)
		}

		c.etcd.Start()
		start := time.Now()
		for {
			r := b.call(t, request{Op: "create", Network: cluster.Network{Name: "green"}})
			if r.Err == "" {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("create once etcd is back: %s", r.Err)
			}
		}
		t.Logf("etcd back: the first create succeeded after %s", time.Since(start).Round(time.Millisecond))
		b.must(t, request{Op: "remove", Ref: "green"})
		if err := transfer(a1.ns, sumAddr(c1.ep.Addr), 1<<20); err != nil {
			t.Errorf("after the outage, a1 -> c1: %v", err)
		}
	})

	t.Run("host dies", func(t *testing.T) {
		cFwd := fmt.Sprintf("%s>%s", c1.ep.MAC, hc.addr)
		if fwd, _ := a.fdb(t, blue.ID); !slices.Contains(fwd, cFwd) {
			t.Fatalf("host-a has no entry %s: %v", cFwd, fwd)
		}
		hc.kill()
		died := time.Now()
		if err := transfer(a1.ns, sumAddr(c1.ep.Addr), 1<<20); err != nil {
			t.Errorf("right after host-c died, a1 -> c1: %v", err)
		}
		for {
			fwd, neigh := a.fdb(t, blue.ID)
			if !slices.Contains(fwd, cFwd) && !slices.Contains(neigh, fmt.Sprintf("%s>%s", c1.ep.Addr, c1.ep.MAC)) {
				break
			}
			if time.Since(died) > testTTL+5*time.Second {
				t.Fatalf("host-a still has host-c's entries %v %v, %s after it died (TTL %s)", fwd, neigh, time.Since(died), testTTL)
			}
			time.Sleep(20 * time.Millisecond)
		}
		gone := time.Since(died)
		t.Logf("host-a dropped host-c's entries %s after host-c died (lease TTL %s)", gone.Round(10*time.Millisecond), testTTL)
		if gone < testTTL/2 {
			t.Errorf("host-c's entries went after %s, before its lease could expire", gone)
		}
		if err := probe(a1.ns, sumAddr(c1.ep.Addr)); err == nil {
			t.Errorf("a1 still reaches c1 after host-c's entries were dropped")
		}

		// the cluster changes while host-c is away
		b2 = c.run(t, b, "blue", "b2")
		serveSum(t, b2.ns, sumAddr(b2.ep.Addr))

		back := time.Now()
		hc.start(t)
		want := fmt.Sprintf("%s>%s", b2.ep.MAC, b.addr)
		for {
			cfwd, _ := hc.fdb(t, blue.ID)
			afwd, _ := a.fdb(t, blue.ID)
			if slices.Contains(cfwd, want) && slices.Contains(afwd, cFwd) {
				break
			}
			if time.Since(back) > 10*time.Second {
				t.Fatalf("after host-c came back: host-c has %v (want %s), host-a has %v (want %s)", cfwd, want, afwd, cFwd)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("host-c caught up %s after it started again", time.Since(back).Round(time.Millisecond))
		for _, p := range [][2]*container{{c1, b2}, {a1, c1}, {b2, a1}} {
			if err := transfer(p[0].ns, sumAddr(p[1].ep.Addr), 1<<20); err != nil {
				t.Errorf("%s -> %s: %v", p[0].name, p[1].name, err)
			}
		}
	})

	for _, ct := range []*container{a1, b1, c1, b2} {
		if ct != nil {
			ct.remove(t)
		}
	}
	b.must(t, request{Op: "remove", Ref: "blue"})
	for _, h := range c.hosts {
		h.stop(t)
		h.checkClean(t)
	}
	if keys := c.etcdKeys(t); len(keys) != 0 {
		t.Errorf("leak: keys left in etcd: %v", keys)
	}
}

// addRoute gives the calling thread's namespace a route to gw's subnet
// on an empty bridge of that name (the kernel here has no dummy links).
func addRoute(name string, gw netip.Prefix) func() error {
	return func() error { return bridge.EnsureBridge(name, gw.String()) }
}

func delLink(name string) func() error {
	return func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	}
}

// TestOverlayBadInput: each bad input gets an error that names the
// problem, and leaves nothing behind.
func TestOverlayBadInput(t *testing.T) {
	t.Run("unreachable etcd", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		dir := t.TempDir()
		// an address of this host: New checks it before Join dials etcd
		_, err = Start(DriverConfig{StoreURL: "etcd://" + addr, Timeout: time.Second,
			Host: Config{Member: "m", Addr: netip.MustParseAddr("127.0.0.1"), NetNSDir: dir, StateDir: dir}})
		if !errors.Is(err, cluster.ErrUnavailable) || !strings.Contains(err.Error(), "etcd://"+addr+" did not answer") {
			t.Fatalf("want ErrUnavailable naming etcd://%s, got %v", addr, err)
		}
		t.Logf("error: %v", err)
		if _, err := Start(DriverConfig{StoreURL: "consul://" + addr}); !errors.Is(err, cluster.ErrInvalid) {
			t.Errorf("consul://: %v", err)
		}
	})

	t.Run("advertise", func(t *testing.T) {
		for in, want := range map[string]string{
			"10.0.0.1:2376": "without a port",
			"nosuchif0":     "not an IPv4 address nor an interface",
			"fd00::1":       "IPv4 only",
		} {
			if _, err := ParseAdvertise(in); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: want %q, got %v", in, want, err)
			}
		}
		if a, err := ParseAdvertise("lo"); err != nil || a.String() != "127.0.0.1" {
			t.Errorf("lo: %v %v", a, err)
		}
	})

	// host-b has a route of its own, 192.168.77.0/24, when it joins
	c := newTestCluster(t, "host-a")
	a := c.hosts[0]
	b := c.addHost("host-b", netip.MustParseAddr("10.99.0.12"), addRoute("extra77", netip.MustParsePrefix("192.168.77.1/24")))

	t.Run("subnet overlaps a member's route", func(t *testing.T) {
		r := a.call(t, request{Op: "create", Network: cluster.Network{Name: "n", Subnet: netip.MustParsePrefix("192.168.77.0/25")}})
		if want := "subnet 192.168.77.0/25 overlaps the route to 192.168.77.0/24 on member host-b"; !strings.Contains(r.Err, want) {
			t.Errorf("got %q, want %q", r.Err, want)
		}
		r = b.call(t, request{Op: "create", Network: cluster.Network{Name: "n", Subnet: netip.MustParsePrefix("10.99.0.0/16")}})
		if want := "subnet 10.99.0.0/16 overlaps the route to 10.99.0.0/24"; !strings.Contains(r.Err, want) {
			t.Errorf("underlay: got %q, want %q", r.Err, want)
		}
		// a route host-a got after it joined: its own live check
		if err := a.ns.do(addRoute("extra88", netip.MustParsePrefix("192.168.88.1/24"))); err != nil {
			t.Fatal(err)
		}
		r = a.call(t, request{Op: "create", Network: cluster.Network{Name: "n", Subnet: netip.MustParsePrefix("192.168.88.0/24")}})
		if want := "subnet 192.168.88.0/24 overlaps the route to 192.168.88.0/24 on extra88"; !strings.Contains(r.Err, want) {
			t.Errorf("got %q, want %q", r.Err, want)
		}
		t.Logf("error: %s", r.Err)
		if err := a.ns.do(delLink("extra88")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("VNI collision", func(t *testing.T) {
		a.must(t, request{Op: "create", Network: cluster.Network{Name: "v5000", VNI: 5000}})
		r := b.call(t, request{Op: "create", Network: cluster.Network{Name: "other", VNI: 5000}})
		if want := "VNI 5000 is used by network v5000"; !strings.Contains(r.Err, want) {
			t.Errorf("got %q, want %q", r.Err, want)
		}

		// A VXLAN device that is not ours holds VNI 6000 on host-b: the
		// kernel refuses a second one, and the attach undoes itself.
		if err := b.ns.do(func() error {
			return netlink.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "foreign0"}, VxlanId: 6000, Port: cluster.DefaultPort})
		}); err != nil {
			t.Fatal(err)
		}
		a.must(t, request{Op: "create", Network: cluster.Network{Name: "v6000", VNI: 6000}})
		ns := newNetNS(t)
		r = b.call(t, request{Op: "attach", Ref: "v6000", Endpoint: cluster.Endpoint{ID: "x", Name: "x"}, NetNS: ns.path})
		if want := "another VXLAN device of this host has VNI 6000 on port 4789"; !strings.Contains(r.Err, want) {
			t.Errorf("got %q, want %q", r.Err, want)
		}
		t.Logf("error: %s", r.Err)
		if err := b.ns.do(delLink("foreign0")); err != nil {
			t.Fatal(err)
		}
		// nothing of the failed attach is left: the network can go
		a.must(t, request{Op: "remove", Ref: "v6000"})
		a.must(t, request{Op: "remove", Ref: "v5000"})
	})

	if err := b.ns.do(delLink("extra77")); err != nil {
		t.Fatal(err)
	}
	for _, h := range c.hosts {
		h.stop(t)
		h.checkClean(t)
	}
	if keys := c.etcdKeys(t); len(keys) != 0 {
		t.Errorf("leak: keys left in etcd: %v", keys)
	}
}
