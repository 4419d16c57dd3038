package bridge

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParsePortSpec(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"80", "80/tcp", ""},
		{"8080:80", "8080:80/tcp", ""},
		{"8080:80/udp", "8080:80/udp", ""},
		{"127.0.0.1:8080:80", "127.0.0.1:8080:80/tcp", ""},
		{"127.0.0.1::80/UDP", "127.0.0.1::80/udp", ""},
		{"80/sctp", "", "not tcp or udp"},
		{"0", "", "not a port number"},
		{"65536", "", "not a port number"},
		{"x:80", "", "host port"},
		{"localhost:1:80", "", "not an IPv4 address"},
		{"[::1]:8080:80", "", "IPv4 only"},
		{"1-10:1-10", "", "not a port number"},
	} {
		p, err := ParsePortSpec(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParsePortSpec(%q): %v", c.in, err)
		case c.err == "" && p.String() != c.want:
			t.Errorf("ParsePortSpec(%q) = %s, want %s", c.in, p, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParsePortSpec(%q) = %v, %v; want error %q", c.in, p, err, c.err)
		}
	}
}

// TestReservePortTaken binds on the real host's 127.0.0.1 (loopback only):
// a port someone else holds gives a clear error, a released one is free.
func TestReservePortTaken(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, proto := range []string{"tcp", "udp"} {
		r, err := ReservePort(proto, lo, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Port == 0 {
			t.Fatalf("%s: no port chosen", proto)
		}
		_, err = ReservePort(proto, lo, r.Port)
		want := "port 127.0.0.1:" + itoa(r.Port) + "/" + proto + " is already in use"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("taken %s port: %v, want %q", proto, err, want)
		}
		r.Close()
		r2, err := ReservePort(proto, lo, r.Port)
		if err != nil {
			t.Errorf("%s port %d after release: %v", proto, r.Port, err)
		} else {
			r2.Close()
		}
	}
	if _, err := ReservePort("sctp", lo, 0); err == nil {
		t.Error("sctp accepted")
	}
}
