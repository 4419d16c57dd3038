package bridge

// Real-kernel tests of bridges, veth pairs and the nftables ruleset, each
// inside its own sandbox namespace (helpers_test.go). Subnets come from
// 10.213.0.0/16; they live only inside the sandboxes.

import (
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestEnsureBridge(t *testing.T) {
	sb := newSandbox(t)
	br := linkName()
	sb.must(t, "ensure bridge", func() error { return EnsureBridge(br, "10.213.1.1/24") })
	sb.must(t, "ensure bridge again (idempotent)", func() error { return EnsureBridge(br, "10.213.1.1/24") })
	sb.must(t, "inspect bridge", func() error {
		l, err := netlink.LinkByName(br)
		if err != nil {
			return err
		}
		if l.Type() != "bridge" || l.Attrs().Flags&(1<<0) == 0 {
			t.Errorf("%s: type %q flags %v, want an up bridge", br, l.Type(), l.Attrs().Flags)
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.213.1.1/24" {
			t.Errorf("%s addresses: %v, want just 10.213.1.1/24", br, addrs)
		}
		return nil
	})

	// Another address for the same bridge is refused, naming both.
	err := sb.do(func() error { return EnsureBridge(br, "10.213.1.254/24") })
	if err == nil || !strings.Contains(err.Error(), "has address 10.213.1.1/24, not 10.213.1.254/24") {
		t.Errorf("EnsureBridge with another address: %v", err)
	}

	// A link of that name that is not a bridge is refused, by name.
	other := linkName()
	sb.must(t, "veth link", func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: other}, PeerName: linkName()})
	})
	err = sb.do(func() error { return EnsureBridge(other, "10.213.2.1/24") })
	if err == nil || !strings.Contains(err.Error(), "not a bridge") {
		t.Errorf("EnsureBridge on a veth link: %v, want a 'not a bridge' error", err)
	}
	if err := sb.do(func() error { return EnsureBridge(linkName(), "10.213.2.1") }); err == nil {
		t.Error("EnsureBridge accepted a gateway without a prefix length")
	}

	sb.must(t, "delete", func() error { return DeleteBridge(br) })
	sb.must(t, "delete again", func() error { return DeleteBridge(br) })
	sb.must(t, "delete veth", func() error { l, _ := netlink.LinkByName(other); return netlink.LinkDel(l) })
	assertOnlyLo(t, sb)
}

// assertOnlyLo checks that n holds no link but lo.
func assertOnlyLo(t *testing.T, n *ns) {
	t.Helper()
	var names []string
	n.must(t, "list links", func() (err error) { names, err = links(); return err })
	if !slices.Equal(names, []string{"lo"}) {
		t.Errorf("links left: %v, want only lo", names)
	}
}

func TestAttachTwoContainers(t *testing.T) {
	sb := newSandbox(t)
	br := linkName()
	sb.must(t, "bridge", func() error { return EnsureBridge(br, "10.213.1.1/24") })
	gw := netip.MustParseAddr("10.213.1.1")

	c1, c2 := newNS(t), newNS(t)
	h1, h2 := linkName(), linkName()
	sb.must(t, "attach c1", func() error {
		return Attach(Endpoint{Bridge: br, HostIf: h1, NetNS: c1.path, Address: netip.MustParsePrefix("10.213.1.2/24"), Gateway: gw})
	})
	sb.must(t, "attach c2", func() error {
		return Attach(Endpoint{Bridge: br, HostIf: h2, NetNS: c2.path, Address: netip.MustParsePrefix("10.213.1.3/24"), Gateway: gw, MTU: 1400})
	})

	// The host end is on the bridge and up; the container sees eth0 with
	// its address, the MTU asked for and the default route via the gateway.
	sb.must(t, "host end", func() error {
		l, err := netlink.LinkByName(h2)
		if err != nil {
			return err
		}
		b, _ := netlink.LinkByName(br)
		if l.Attrs().MasterIndex != b.Attrs().Index || l.Attrs().OperState != netlink.OperUp {
			t.Errorf("%s: master %d state %v, want on %s (%d) and up", h2, l.Attrs().MasterIndex, l.Attrs().OperState, br, b.Attrs().Index)
		}
		return nil
	})
	c2.must(t, "container end", func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if l.Attrs().MTU != 1400 {
			t.Errorf("eth0 MTU %d, want 1400", l.Attrs().MTU)
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.213.1.3/24" {
			t.Errorf("eth0 addresses %v, want 10.213.1.3/24", addrs)
		}
		routes, _ := netlink.RouteList(l, netlink.FAMILY_V4)
		var def bool
		for _, r := range routes {
			def = def || (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.213.1.1"
		}
		if !def {
			t.Errorf("eth0 routes %v: no default route via 10.213.1.1", routes)
		}
		return nil
	})

	// Container to container over the bridge, TCP both ways, and the host
	// to a container through the bridge's route.
	serveEcho(t, c1, "10.213.1.2:7")
	serveEcho(t, c2, "10.213.1.3:7")
	for _, c := range []struct {
		name string
		from *ns
		to   string
		want string
	}{
		{"c1->c2", c1, "10.213.1.3:7", "10.213.1.2 hello"},
		{"c2->c1", c2, "10.213.1.2:7", "10.213.1.3 hello"},
		{"host->c1", sb, "10.213.1.2:7", "10.213.1.1 hello"},
	} {
		got, err := talk(c.from, c.to, 3*time.Second)
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		c1.must(t, "ping c2", func() error {
			out, err := exec.Command(bb, "ping", "-c", "1", "-W", "2", "10.213.1.3").CombinedOutput()
			if err != nil {
				t.Errorf("busybox ping 10.213.1.3 from c1: %v\n%s", err, out)
			}
			return nil
		})
	}

	// An address clash inside the container fails and leaves nothing.
	h3 := linkName()
	err := sb.do(func() error {
		return Attach(Endpoint{Bridge: br, HostIf: h3, NetNS: c1.path, IfName: "eth0", Address: netip.MustParsePrefix("10.213.1.9/24"), Gateway: gw})
	})
	if err == nil {
		t.Error("a second eth0 in c1 was accepted")
	}
	sb.must(t, "no half-made pair", func() error {
		if _, err := netlink.LinkByName(h3); err == nil {
			t.Errorf("%s left behind after a failed Attach", h3)
		}
		return nil
	})

	// Detach removes both ends; the container keeps only lo.
	sb.must(t, "detach c1", func() error { return Detach(h1) })
	sb.must(t, "detach c2", func() error { return Detach(h2) })
	sb.must(t, "detach again", func() error { return Detach(h2) })
	assertOnlyLo(t, c1)
	assertOnlyLo(t, c2)
	sb.must(t, "delete bridge", func() error { return DeleteBridge(br) })
	assertOnlyLo(t, sb)
}

// world is a namespace standing for the outside: on its own bridge of the
// sandbox, 10.213.99.2/24, with no route back to the container subnets, so
// that it can only answer a container whose traffic was masqueraded.
func newWorld(t testing.TB, sb *ns) (world *ns, bridgeName string) {
	world, bridgeName = newNS(t), linkName()
	sb.must(t, "world", func() error {
		if err := EnsureBridge(bridgeName, "10.213.99.1/24"); err != nil {
			return err
		}
		return Attach(Endpoint{Bridge: bridgeName, HostIf: linkName(), NetNS: world.path, Address: netip.MustParsePrefix("10.213.99.2/24")})
	})
	serveEcho(t, world, "10.213.99.2:7")
	return world, bridgeName
}

// container attaches a new namespace to br at addr (gateway .1).
func container(t testing.TB, sb *ns, br, addr string) *ns {
	c := newNS(t)
	p := netip.MustParsePrefix(addr)
	sb.must(t, "attach "+addr, func() error {
		return Attach(Endpoint{Bridge: br, HostIf: linkName(), NetNS: c.path, Address: p, Gateway: DefaultGateway(p.Masked())})
	})
	return c
}

func TestFirewall(t *testing.T) {
	sb := newSandbox(t)
	sb.must(t, "ip_forward", EnableIPForward)
	brA, brB := linkName(), linkName()
	sb.must(t, "bridges", func() error {
		if err := EnsureBridge(brA, "10.213.2.1/24"); err != nil {
			return err
		}
		return EnsureBridge(brB, "10.213.3.1/24")
	})
	a := container(t, sb, brA, "10.213.2.2/24")
	a2 := container(t, sb, brA, "10.213.2.3/24")
	b := container(t, sb, brB, "10.213.3.2/24")
	newWorld(t, sb)
	serveEcho(t, a, "10.213.2.2:7")
	serveEcho(t, b, "10.213.3.2:7")

	reach := func(name string, from *ns, addr, want string) {
		t.Helper()
		got, err := talk(from, addr, 2*time.Second)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	blocked := func(name string, from *ns, addr string) {
		t.Helper()
		if got, err := talk(from, addr, 300*time.Millisecond); err == nil {
			t.Errorf("%s: got %q, want no connection", name, got)
		}
	}

	// Without rules the sandbox routes between the bridges: the test can
	// tell isolation from an unreachable address.
	reach("no rules: b->a", b, "10.213.2.2:7", "10.213.3.2 hello")
	blocked("no rules, no masquerade: a->world", a, "10.213.99.2:7")

	table := testTable()
	rs := Ruleset{Table: table, Networks: []Network{
		{Bridge: brA, Subnet: netip.MustParsePrefix("10.213.2.0/24")},
		{Bridge: brB, Subnet: netip.MustParsePrefix("10.213.3.0/24")},
	}}
	sb.must(t, "apply", rs.Apply)
	sb.must(t, "apply again", rs.Apply)
	var listed string
	sb.must(t, "list", func() (err error) { listed, err = runNft("list", "table", "inet", table); return err })
	t.Logf("nft list table inet %s:\n%s", table, listed)

	reach("same bridge: a2->a", a2, "10.213.2.2:7", "10.213.2.3 hello")
	blocked("isolated: b->a", b, "10.213.2.2:7")
	blocked("isolated: a->b", a, "10.213.3.2:7")
	reach("masquerade: a->world", a, "10.213.99.2:7", "10.213.99.1 hello")
	reach("masquerade: b->world", b, "10.213.99.2:7", "10.213.99.1 hello")

	// brB becomes internal: no way out, still reachable inside itself.
	rs.Networks[1].Internal = true
	sb.must(t, "apply internal", rs.Apply)
	blocked("internal: b->world", b, "10.213.99.2:7")
	reach("internal: a->world still", a, "10.213.99.2:7", "10.213.99.1 hello")

	// No networks left: the table goes away.
	sb.must(t, "apply empty", Ruleset{Table: table}.Apply)
	sb.must(t, "apply empty again", Ruleset{Table: table}.Apply)
	sb.must(t, "no table", func() error {
		out, err := runNft("list", "tables")
		if strings.Contains(out, table) {
			t.Errorf("table %s still there:\n%s", table, out)
		}
		return err
	})
}

func TestPublishedPort(t *testing.T) {
	sb := newSandbox(t)
	sb.must(t, "ip_forward", EnableIPForward)
	br := linkName()
	sb.must(t, "bridge", func() error { return EnsureBridge(br, "10.213.4.1/24") })
	sb.must(t, "route_localnet", func() error { return EnableRouteLocalnet(br) })
	a := container(t, sb, br, "10.213.4.2/24")
	a2 := container(t, sb, br, "10.213.4.3/24")
	world, _ := newWorld(t, sb)
	serveEcho(t, a, "10.213.4.2:80")

	// Two host ports, both chosen by the kernel: one on 127.0.0.1, one on
	// every address; both held by a reservation while published.
	var lo, all *Reservation
	sb.must(t, "reserve", func() (err error) {
		if lo, err = ReservePort("tcp", netip.MustParseAddr("127.0.0.1"), 0); err != nil {
			return err
		}
		all, err = ReservePort("tcp", netip.Addr{}, 0)
		return err
	})
	defer lo.Close()
	defer all.Close()

	// The same port again: a clear error.
	err := sb.do(func() error {
		r, err := ReservePort("tcp", netip.MustParseAddr("127.0.0.1"), lo.Port)
		if err == nil {
			r.Close()
		}
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("reserving a taken port: %v, want 'already in use'", err)
	}

	ctr := netip.MustParseAddr("10.213.4.2")
	rs := Ruleset{Table: testTable(),
		Networks: []Network{{Bridge: br, Subnet: netip.MustParsePrefix("10.213.4.0/24")}},
		Ports: []PortMapping{
			{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: lo.Port, ContainerIP: ctr, ContainerPort: 80, Bridge: br},
			{Proto: "tcp", HostPort: all.Port, ContainerIP: ctr, ContainerPort: 80, Bridge: br},
		}}
	sb.must(t, "apply", rs.Apply)
	defer sb.do(Ruleset{Table: testTable()}.Apply)

	for _, c := range []struct {
		name, addr, want string
		from             *ns
	}{
		{"host 127.0.0.1", "127.0.0.1:" + itoa(lo.Port), "10.213.4.1 hello", sb},
		{"host, any-address port on 127.0.0.1", "127.0.0.1:" + itoa(all.Port), "10.213.4.1 hello", sb},
		{"host, its bridge address", "10.213.4.1:" + itoa(all.Port), "10.213.4.1 hello", sb},
		{"outside, via the host's address", "10.213.99.1:" + itoa(all.Port), "10.213.99.2 hello", world},
		{"hairpin, a container of the same bridge", "10.213.4.1:" + itoa(all.Port), "10.213.4.1 hello", a2},
	} {
		got, err := talk(c.from, c.addr, 2*time.Second)
		if err != nil || got != c.want {
			t.Errorf("%s (%s): %q, %v; want %q", c.name, c.addr, got, err, c.want)
		}
	}
	// The 127.0.0.1-only port is not published on the other addresses.
	if got, err := talk(world, "10.213.99.1:"+itoa(lo.Port), 300*time.Millisecond); err == nil {
		t.Errorf("127.0.0.1-only port answered from outside: %q", got)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
