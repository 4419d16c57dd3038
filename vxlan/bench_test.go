package vxlan

// Benchmarks, meant for -benchtime=1x (make bench): each runs rounds of its
// own and reports medians, the overlay beside the plain underlay in one run.
//
//	go test -run '^$' -bench . -benchtime=1x ./vxlan/

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"minidock/cluster"
)

const (
	benchRounds = 9
	benchBytes  = 64 << 20
)

// serveSink listens on addr inside n; each connection is read to its end
// and answered "ok".
func serveSink(b testing.TB, n *netNS, addr netip.AddrPort) {
	serve(b, n, addr, func(c net.Conn) {
		defer c.Close()
		io.Copy(io.Discard, c)
		fmt.Fprintln(c, "ok")
	})
}

// throughput sends benchBytes from n to a sink at addr; MB/s.
func throughput(b testing.TB, n *netNS, addr netip.AddrPort) float64 {
	c, err := dialFrom(n, addr, 3*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := 0; sent < benchBytes; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	return float64(benchBytes) / 1e6 / time.Since(start).Seconds()
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkOverlayThroughput: one TCP stream from a container on host A to
// a container on host B over the overlay (encapsulated in VXLAN, through
// both hosts' br0 and vxlan0), against the same stream between the two
// hosts over the plain underlay they share. Rounds alternate, so both
// see the same machine load. Also: how long after an attach on host B
// the new container is reachable from host A (the watch's delay).
func BenchmarkOverlayThroughput(b *testing.B) {
	c := newTestCluster(b, "host-a", "host-b")
	a, hb := c.hosts[0], c.hosts[1]
	a.must(b, request{Op: "create", Network: cluster.Network{Name: "bench"}})
	a1 := c.run(b, a, "bench", "a1")
	b1 := c.run(b, hb, "bench", "b1")
	serveSink(b, b1.ns, netip.AddrPortFrom(b1.ep.Addr, 7001))
	serveSink(b, hb.ns, netip.AddrPortFrom(hb.addr, 7001))

	for b.Loop() {
		var over, under, reach []float64
		for i := range benchRounds {
			over = append(over, throughput(b, a1.ns, netip.AddrPortFrom(b1.ep.Addr, 7001)))
			under = append(under, throughput(b, a.ns, netip.AddrPortFrom(hb.addr, 7001)))

			t0 := time.Now()
			ct := c.run(b, hb, "bench", fmt.Sprintf("r%d", i))
			serveSink(b, ct.ns, netip.AddrPortFrom(ct.ep.Addr, 7001))
			for probe(a1.ns, netip.AddrPortFrom(ct.ep.Addr, 7001)) != nil {
				if time.Since(t0) > 10*time.Second {
					b.Fatalf("r%d not reachable from host-a after 10s", i)
				}
			}
			reach = append(reach, float64(time.Since(t0).Microseconds())/1000)
			ct.remove(b)
		}
		mo, mu := medianOf(over), medianOf(under)
		b.ReportMetric(mo, "overlay-MB/s")
		b.ReportMetric(mu, "underlay-MB/s")
		b.ReportMetric(mo/mu, "overlay/underlay")
		b.ReportMetric(medianOf(reach), "attach-to-reach-ms")
		b.Logf("TCP, one stream of %d MiB, median of %d: overlay %.0f MB/s, underlay %.0f MB/s (%.2f); attach on B to reachable from A: %.1f ms (MTU %d)",
			benchBytes>>20, benchRounds, mo, mu, mo/mu, medianOf(reach), 1500-vxlanOverhead)
	}

	a1.remove(b)
	b1.remove(b)
	a.must(b, request{Op: "remove", Ref: "bench"})
	for _, h := range c.hosts {
		h.stop(b)
		h.checkClean(b)
	}
}
