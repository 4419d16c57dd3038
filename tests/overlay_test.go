package tests

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOverlayNetwork: three hosts, each with its own daemon, in one
// cluster. An overlay network created on one daemon is every daemon's;
// containers on it reach each other across hosts by name (TCP with a
// checksum), through the hosts' VXLAN devices; containers of another
// overlay network cannot reach them; every container gets out through
// its host's gateway bridge; bad requests are refused with their reason;
// network rm on one daemon removes the network everywhere. Afterwards
// nothing is left (newOVCluster's cleanup).
func TestOverlayNetwork(t *testing.T) {
	c := newOVCluster(t, "host-a", "host-b", "host-c")
	a, b, hc := c.hosts[0], c.hosts[1], c.hosts[2]

	t.Run("info", func(t *testing.T) {
		want := regexp.MustCompile(` Cluster Store: ` + ovEtcd + `\n Cluster Advertise: (10\.98\.0\.1[123]|eth0)\n Cluster Peers: 3\n  host-a: 10.98.0.11\n  host-b: 10.98.0.12\n  host-c: 10.98.0.13\n`)
		for _, h := range c.hosts {
			if out := h.mustCLI(t, "info"); !want.MatchString(out) {
				t.Errorf("%s: info says:\n%s", h.name, out)
			}
		}
	})

	blueID := strings.TrimSpace(a.mustCLI(t, "network", "create", "-d", "overlay", "blue"))
	redID := strings.TrimSpace(b.mustCLI(t, "network", "create", "-d", "overlay", "--subnet", "10.201.0.0/24", "red"))

	t.Run("everywhere", func(t *testing.T) {
		// the creating daemon lists it at once; the others once their
		// watch brings it (milliseconds)
		for _, h := range c.hosts {
			deadline := time.Now().Add(2 * time.Second)
			for !slices.Contains(h.networks(t), "blue/overlay/global") || !slices.Contains(h.networks(t), "red/overlay/global") {
				if time.Now().After(deadline) {
					t.Fatalf("%s lists %v", h.name, h.networks(t))
				}
				time.Sleep(20 * time.Millisecond)
			}
			n := h.networkInspect(t, "blue")
			if n.ID != blueID || n.Scope != "global" || n.Driver != "overlay" || n.IPAM.Config[0].Subnet != "10.0.0.0/24" {
				t.Errorf("%s: blue is %+v", h.name, n)
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		vni := a.networkInspect(t, "blue").Options["com.docker.network.driver.overlay.vxlanid_list"]
		// a bridge network on host C: its route goes into C's member record
		hc.mustCLI(t, "network", "create", "--subnet", "10.77.0.0/24", "local-c")
		for _, tc := range []struct {
			h    *ovHost
			args []string
			want string
		}{
			{hc, []string{"-o", "com.docker.network.driver.overlay.vxlanid_list=" + vni, "v"}, "VNI " + vni + " is used by network blue"},
			{a, []string{"--subnet", "10.77.0.0/25", "over-c"}, "subnet 10.77.0.0/25 overlaps the route to 10.77.0.0/24 on member host-c"},
			{a, []string{"--subnet", "10.98.0.0/28", "over-ul"}, "overlaps"},
			{b, []string{"--subnet", "10.0.0.128/25", "over-blue"}, "overlaps subnet 10.0.0.0/24 of network blue"},
			{hc, []string{"blue"}, "already exists"},
			{a, []string{"-o", "mtu=1400", "opt"}, `option "mtu" is not supported by the overlay driver`},
		} {
			out, code := tc.h.cli(append([]string{"network", "create", "-d", "overlay"}, tc.args...)...)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Errorf("%s: network create -d overlay %s: exit %d, %q; want an error with %q", tc.h.name, strings.Join(tc.args, " "), code, out, tc.want)
			}
		}
		// a bridge network made later is checked against the overlay
		// subnets, whose routes are in namespaces of their own
		out, code := b.cli("network", "create", "--subnet", "10.201.0.0/25", "under-red")
		if code == 0 || !strings.Contains(out, "red") {
			t.Errorf("bridge network over red's subnet: exit %d: %s", code, out)
		}
		hc.mustCLI(t, "network", "rm", "local-c")
		for _, h := range c.hosts {
			if got := h.networks(t); slices.ContainsFunc(got, func(s string) bool {
				return !strings.HasSuffix(s, "/local") && !strings.HasPrefix(s, "blue/") && !strings.HasPrefix(s, "red/")
			}) {
				t.Errorf("%s: a refused network exists: %v", h.name, got)
			}
		}
	})

	a1 := a.run(t, "a1", "blue")
	b1 := b.run(t, "b1", "blue", "--network-alias", "bee")
	c1 := hc.run(t, "c1", "blue")
	r1 := b.run(t, "r1", "red") // on b1's host
	r2 := a.run(t, "r2", "red") // on a1's host

	t.Run("interfaces", func(t *testing.T) {
		// eth0 on the overlay (MTU 1450: 50 bytes for VXLAN), eth1 on the
		// gateway bridge with the default route
		out := a.mustCLI(t, "exec", "a1", "sh", "-c", "ip -o -4 addr show; cat /sys/class/net/eth0/mtu; ip route show default; cat /etc/resolv.conf")
		for _, want := range []string{`eth0\s+inet ` + regexp.QuoteMeta(a1.ips["blue"]) + `/24`, `eth1\s+inet 172\.18\.`, `\n1450\n`,
			`default via 172\.18\.0\.1 dev eth1`, `nameserver 10\.0\.0\.1`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("a1 lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("reach by name", func(t *testing.T) {
		before := a.vxlanTx(t, blueID)
		for _, p := range []struct {
			from   *ovContainer
			target string
			to     *ovContainer
		}{{a1, "b1", b1}, {a1, "c1", c1}, {b1, "c1", c1}, {c1, "a1", a1}, {c1, "bee", b1}, {r2, "r1", r1}} {
			if err := p.from.sendTo(p.target, p.to); err != nil {
				t.Error(err)
			}
		}
		// a1's 8 MiB left host A through its vxlan0, encapsulated
		if sent := a.vxlanTx(t, blueID) - before; sent < 8<<20 {
			t.Errorf("host-a's vxlan0 sent %d bytes, want at least 8 MiB", sent)
		}
		// the names resolve to the overlay addresses, on every host
		for _, p := range [][2]*ovContainer{{a1, b1}, {b1, c1}, {c1, a1}} {
			out := p[0].h.mustCLI(t, "exec", p[0].name, "nslookup", p[1].name)
			if !strings.Contains(out, "Address: "+p[1].ips["blue"]) {
				t.Errorf("%s: nslookup %s:\n%s", p[0].name, p[1].name, out)
			}
		}
	})

	t.Run("isolation", func(t *testing.T) {
		// the same probe reaches what it must
		for _, p := range []struct {
			from   *ovContainer
			target string
		}{{a1, "b1"}, {a1, b1.ips["blue"]}, {r2, r1.ips["red"]}} {
			if err := p.from.probe(p.target); err != nil {
				t.Fatalf("probe %s -> %s: %v", p.from.name, p.target, err)
			}
		}
		for _, p := range []struct {
			from   *ovContainer
			target string
			what   string
		}{
			{r1, b1.ips["blue"], "red r1 -> blue b1, same host"},
			{r2, b1.ips["blue"], "red r2 -> blue b1, other host"},
			{r2, a1.ips["blue"], "red r2 -> blue a1, same host"},
			{r2, "b1", "red r2 -> blue b1 by name"},
		} {
			if err := p.from.probe(p.target); err == nil {
				t.Errorf("%s (%s): connected", p.what, p.target)
			}
		}
	})

	t.Run("outbound", func(t *testing.T) {
		// a server in the underlay, outside every overlay: it answers with
		// the address it sees, host A's own (masqueraded)
		ln := c.ulListen(t, ovUnderlay+":8080")
		defer ln.Close()
		out := a.mustCLI(t, "exec", "a1", "sh", "-c", "nc -w 3 "+ovUnderlay+" 8080 </dev/null")
		if strings.TrimSpace(out) != a.addr.String() {
			t.Errorf("a1 got out as %q, want host-a's %s", out, a.addr)
		}
	})

	t.Run("connect", func(t *testing.T) {
		c2 := hc.run(t, "c2", "bridge")
		if err := a1.probe("c2"); err == nil {
			t.Fatal("a1 reaches c2 before it is connected")
		}
		hc.mustCLI(t, "network", "connect", "--alias", "see2", "blue", "c2")
		c2 = hc.container(t, "c2")
		if err := a1.sendTo("see2", c2); err != nil {
			t.Error(err)
		}
		// its default route stays the bridge's: no gateway interface
		if out := hc.mustCLI(t, "exec", "c2", "ip", "route", "show", "default"); !strings.Contains(out, "dev eth0") {
			t.Errorf("c2's default route: %s", out)
		}
		hc.mustCLI(t, "network", "disconnect", "blue", "c2")
		if err := a1.probe("c2"); err == nil {
			t.Error("a1 reaches c2 after the disconnect")
		}
		hc.mustCLI(t, "rm", "-f", "c2")
	})

	t.Run("rm", func(t *testing.T) {
		// in use: on this host, or only on others
		out, code := a.cli("network", "rm", "blue")
		if code == 0 || !strings.Contains(out, "active endpoints (a1)") {
			t.Errorf("network rm blue on host-a: exit %d: %s", code, out)
		}
		out, code = hc.cli("network", "rm", "red")
		if code == 0 || !strings.Contains(out, "r1 ("+r1.ips["red"]+") on host-b") || !strings.Contains(out, "r2 ("+r2.ips["red"]+") on host-a") {
			t.Errorf("network rm red on host-c: exit %d: %s", code, out)
		}
		b.mustCLI(t, "rm", "-f", "r1")
		a.mustCLI(t, "rm", "-f", "r2")
		hc.mustCLI(t, "network", "rm", "red")
		for _, h := range c.hosts {
			deadline := time.Now().Add(2 * time.Second)
			for slices.Contains(h.networks(t), "red/overlay/global") {
				if time.Now().After(deadline) {
					t.Fatalf("%s still lists red", h.name)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		_ = redID
	})

	t.Run("stop and rm", func(t *testing.T) {
		// a1 goes: its entries go from the other hosts, its name from
		// their DNS, its address back to the cluster
		mac := "02:42:0a:00:00:" + fmt.Sprintf("%02x", lastByte(a1.ips["blue"]))
		a.mustCLI(t, "rm", "-f", "a1")
		deadline := time.Now().Add(2 * time.Second)
		for slices.ContainsFunc(b.forwarding(t, blueID), func(e string) bool { return strings.HasPrefix(e, mac) }) {
			if time.Now().After(deadline) {
				t.Fatalf("host-b still forwards a1's MAC: %v", b.forwarding(t, blueID))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if out, code := b.cli("exec", "b1", "nslookup", "a1"); code == 0 {
			t.Errorf("b1 still resolves a1:\n%s", out)
		}
		// host A has no container of blue left: no namespace for it
		if hd := a.sandbox(t, blueID); hd != nil {
			hd.Close()
			t.Error("host-a keeps blue's namespace with no container on it")
		}
	})
}

// lastByte is the last number of a dotted IPv4 address.
func lastByte(ip string) int {
	var a, b, c, d int
	fmt.Sscanf(ip, "%d.%d.%d.%d", &a, &b, &c, &d)
	return d
}

// ulListen listens on addr in the underlay; each connection gets the
// address it comes from, and is closed.
func (c *ovCluster) ulListen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNetNS(c.ul.ns("net"), func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(conn, conn.RemoteAddr().(*net.TCPAddr).IP)
			conn.Close()
		}
	}()
	return ln
}
