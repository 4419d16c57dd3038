package bridge

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

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

// TestReservePortEphemeral: port 0 gives ports of the kernel's ephemeral
// range, one after the other as Docker's allocator does, skipping a port
// someone else holds, and each stays held.
func TestReservePortEphemeral(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	first, last := ephemeralRange()
	inRange := func(p uint16) bool { return int(p) >= first && int(p) <= last }
	r1, err := ReservePort("tcp", lo, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	if !inRange(r1.Port) {
		t.Fatalf("port %d is outside the ephemeral range %d-%d", r1.Port, first, last)
	}
	// someone takes the next one (or has it already)
	next := int(r1.Port) + 1
	if next > last {
		next = first
	}
	if l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(next)); err == nil {
		defer l.Close()
	}
	r2, err := ReservePort("tcp", lo, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if !inRange(r2.Port) || int(r2.Port) == next || r2.Port == r1.Port {
		t.Errorf("second port %d: want one in %d-%d other than %d (held) and %d (ours)", r2.Port, first, last, next, r1.Port)
	}
	// ahead of the first, counting round the range
	if (int(r2.Port)-int(r1.Port)+(last-first+1))%(last-first+1) > (last-first+1)/2 {
		t.Errorf("second port %d does not follow %d", r2.Port, r1.Port)
	}
	if _, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(int(r2.Port))); err == nil {
		t.Errorf("port %d is not held", r2.Port)
	}
}
