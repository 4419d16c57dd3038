package bridge

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateSubnet(t *testing.T) {
	for _, c := range []struct {
		subnet, gateway, err string
	}{
		{"10.213.0.0/16", "10.213.0.1", ""},
		{"10.213.5.0/30", "", ""},
		{"10.213.5.1/24", "", "host bits are set"},
		{"10.213.5.0/31", "", "too small"},
		{"10.213.5.0/24", "10.213.6.1", "outside subnet"},
		{"10.213.5.0/24", "10.213.5.255", "broadcast"},
		{"10.213.5.0/24", "10.213.5.0", "network or broadcast"},
		{"fd00::/64", "", "not an IPv4 prefix"},
	} {
		var gw netip.Addr
		if c.gateway != "" {
			gw = netip.MustParseAddr(c.gateway)
		}
		err := ValidateSubnet(netip.MustParsePrefix(c.subnet), gw)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ValidateSubnet(%s, %s) = %v, want %q", c.subnet, c.gateway, err, c.err)
		}
	}
}

func TestIPAM(t *testing.T) {
	dir := t.TempDir()
	subnet := netip.MustParsePrefix("10.213.7.0/29") // .1 gateway, .2-.6 for containers, .7 broadcast
	a, err := OpenIPAM(dir, "net1", subnet, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Gateway() != netip.MustParseAddr("10.213.7.1") {
		t.Fatalf("default gateway %v, want 10.213.7.1", a.Gateway())
	}
	alloc := func(owner, want string) (netip.Addr, error) {
		var w netip.Addr
		if want != "" {
			w = netip.MustParseAddr(want)
		}
		return a.Allocate(owner, w)
	}
	must := func(owner, want, expect string) {
		t.Helper()
		ip, err := alloc(owner, want)
		if err != nil || ip.String() != expect {
			t.Fatalf("Allocate(%s, %q) = %v, %v; want %s", owner, want, ip, err, expect)
		}
	}
	must("c1", "", "10.213.7.2")
	must("c2", "", "10.213.7.3")
	must("c5", "10.213.7.5", "10.213.7.5")
	for _, bad := range []struct{ want, err string }{
		{"10.213.7.3", "already allocated (to c2)"},
		{"10.213.7.1", "gateway"},
		{"10.213.7.7", "not a usable address"},
		{"10.213.8.2", "not a usable address"},
	} {
		if _, err := alloc("x", bad.want); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("Allocate(%s): %v, want %q", bad.want, err, bad.err)
		}
	}
	// Next free after the last handed out (.5), then wrap around.
	must("c6", "", "10.213.7.6")
	must("c4", "", "10.213.7.4")
	if _, err := alloc("c7", ""); err == nil || !strings.Contains(err.Error(), "no free address") {
		t.Errorf("full subnet: %v, want 'no free address'", err)
	}

	// A released address is free again, but not handed out first.
	if err := a.Release(netip.MustParseAddr("10.213.7.3")); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(netip.MustParseAddr("10.213.7.3")); err != nil {
		t.Fatalf("second release: %v", err)
	}
	must("c3", "", "10.213.7.3")
	if err := a.Release(netip.MustParseAddr("10.213.7.2")); err != nil {
		t.Fatal(err)
	}

	// Reopened, as by a restarted daemon: the same allocations.
	b, err := OpenIPAM(dir, "net1", subnet, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	got := b.Allocations()
	want := []string{"10.213.7.3=c3", "10.213.7.4=c4", "10.213.7.5=c5", "10.213.7.6=c6"}
	if len(got) != len(want) {
		t.Fatalf("after reopen: %v, want %v", got, want)
	}
	for i := range got {
		if s := got[i].IP.String() + "=" + got[i].Owner; s != want[i] {
			t.Errorf("after reopen [%d] = %s, want %s", i, s, want[i])
		}
	}
	if ip, err := b.Allocate("c2", netip.Addr{}); err != nil || ip.String() != "10.213.7.2" {
		t.Errorf("after reopen, Allocate = %v, %v; want the only free one, 10.213.7.2", ip, err)
	}
	if _, err := b.Allocate("x", netip.Addr{}); err == nil {
		t.Error("after reopen, an address was handed out twice")
	}

	// A different subnet under the same name is refused, naming both.
	if _, err := OpenIPAM(dir, "net1", netip.MustParsePrefix("10.213.8.0/24"), netip.Addr{}); err == nil ||
		!strings.Contains(err.Error(), "10.213.7.0/29") {
		t.Errorf("reopen with another subnet: %v", err)
	}
	if _, err := OpenIPAM(dir, "../x", subnet, netip.Addr{}); err == nil {
		t.Error("a network name with a slash was accepted")
	}

	// Only the network's file is in dir (no temporary files), and Remove deletes it.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "net1.json" {
		t.Errorf("dir holds %v, want just net1.json", entries)
	}
	if err := b.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "net1.json")); !os.IsNotExist(err) {
		t.Errorf("net1.json still there after Remove: %v", err)
	}
}

func TestCheckOverlap(t *testing.T) {
	sb := newSandbox(t)
	br, other := linkName(), linkName()
	sb.must(t, "bridges", func() error {
		if err := EnsureBridge(br, "10.213.50.1/24"); err != nil {
			return err
		}
		return EnsureBridge(other, "10.213.60.1/24")
	})
	for _, c := range []struct {
		subnet, own, err string
	}{
		{"10.213.51.0/24", "", ""},
		{"10.213.50.128/25", "", "overlaps the route to 10.213.50.0/24 on " + br},
		{"10.213.0.0/16", br, " on " + other},
		{"10.213.50.0/24", br, ""},
		{"127.0.0.0/16", "", "overlaps the route to 127.0.0.0/8 on lo"},
	} {
		err := sb.do(func() error { return CheckOverlap(netip.MustParsePrefix(c.subnet), c.own) })
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("CheckOverlap(%s, %q) = %v, want %q", c.subnet, c.own, err, c.err)
		}
	}
	sb.must(t, "cleanup", func() error {
		for _, n := range []string{br, other} {
			if err := DeleteBridge(n); err != nil {
				return err
			}
		}
		return nil
	})
}
