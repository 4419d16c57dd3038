package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// BenchmarkOverlay measures overlay networking through the daemons, on two
// hosts as TestOverlayNetwork makes them (network namespaces, one etcd),
// side by side with the plain underlay in one run:
//
//   - TCP throughput, one stream of 64 MiB from a container on host A to a
//     container on host B: over an overlay network (VXLAN), and over the
//     underlay, from a container on A's default bridge to a port host B
//     publishes for a container on its default bridge (NAT both ways);
//     alternating rounds, medians of 9;
//   - the time from `minidock run -d` on host A to the new container
//     answering, by name, a TCP connection from a container on host B
//     (etcd transaction, the watch of host B, its forwarding entries and
//     DNS); median of 9, target under 1 s.
//
// The traffic is sent and received by the test from inside the
// containers' network namespaces (its own sockets there), so the figures
// are the kernels' data paths, not a tool's.
func BenchmarkOverlay(b *testing.B) {
	c := newOVCluster(b, "host-a", "host-b")
	ha, hb := c.hosts[0], c.hosts[1]
	ha.mustCLI(b, "network", "create", "-d", "overlay", "blue")
	idle := []string{"busybox", "sleep", "3600"}
	ha.mustCLI(b, append([]string{"run", "-d", "--name", "oa", "--network", "blue"}, idle...)...)
	hb.mustCLI(b, append([]string{"run", "-d", "--name", "ob", "--network", "blue"}, idle...)...)
	ha.mustCLI(b, append([]string{"run", "-d", "--name", "ua"}, idle...)...)
	hb.mustCLI(b, append([]string{"run", "-d", "--name", "ub", "-p", "7100:7100"}, idle...)...)
	oa, ob, ua, ub := ha.container(b, "oa"), hb.container(b, "ob"), ha.container(b, "ua"), hb.container(b, "ub")
	sinkIn(b, ob, ":7100")
	sinkIn(b, ub, ":7100")

	const rounds = 9
	var overlay, underlay []float64
	for i := 0; i < rounds; i++ {
		overlay = append(overlay, throughputFrom(b, oa, ob.ips["blue"]+":7100"))
		underlay = append(underlay, throughputFrom(b, ua, hb.addr.String()+":7100"))
	}
	ov, ul := medianFloat(overlay), medianFloat(underlay)

	var reach []time.Duration
	for i := 0; i < rounds; i++ {
		name := fmt.Sprintf("t%d", i)
		start := time.Now()
		ha.mustCLI(b, append([]string{"run", "-d", "--name", name, "--network", "blue", "busybox"}, sumServer...)...)
		reach = append(reach, reachableFrom(b, ob, name, start))
		ha.mustCLI(b, "rm", "-f", name)
	}
	r := median(reach)
	b.ReportMetric(ov, "overlay-MB/s")
	b.ReportMetric(ul, "underlay-MB/s")
	b.ReportMetric(ms(r), "run-to-reachable-ms")
	fmt.Printf("container to container across two hosts, one TCP stream of 64 MiB, median of %d: overlay %.0f MB/s, underlay (bridge, published port) %.0f MB/s, overlay/underlay %.2f\n",
		rounds, ov, ul, ov/ul)
	fmt.Printf("run -d on host A to reachable by name from host B, median of %d: %.0f ms (min %.0f, max %.0f; target under 1000 ms: %s)\n",
		rounds, ms(r), ms(slices.Min(reach)), ms(slices.Max(reach)), verdict(r < time.Second))
}

func medianFloat(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// sinkIn listens on addr inside container ct's network namespace; each
// connection is read to its end and answered "ok".
func sinkIn(b *testing.B, ct *ovContainer, addr string) {
	var ln net.Listener
	if err := inNetNS(fmt.Sprintf("/proc/%d/ns/net", ct.pid), func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(io.Discard, conn)
				fmt.Fprintln(conn, "ok")
			}()
		}
	}()
}

// throughputFrom sends 64 MiB from container ct's network namespace to
// addr and waits for the sink's "ok": MB/s.
func throughputFrom(b *testing.B, ct *ovContainer, addr string) float64 {
	const size = 64 << 20
	var conn net.Conn
	if err := inNetNS(fmt.Sprintf("/proc/%d/ns/net", ct.pid), func() (err error) {
		conn, err = net.DialTimeout("tcp4", addr, 3*time.Second)
		return err
	}); err != nil {
		b.Fatalf("%s -> %s: %v", ct.name, addr, err)
	}
	defer conn.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	conn.(*net.TCPConn).CloseWrite()
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	return size / 1e6 / time.Since(start).Seconds()
}

// reachableFrom polls, from container ct's network namespace, until name
// resolves through ct's DNS server (its network's gateway, port 53) and
// a TCP connection to it on port 7000 opens; the time since start.
func reachableFrom(b *testing.B, ct *ovContainer, name string, start time.Time) time.Duration {
	var took time.Duration
	err := inNetNS(fmt.Sprintf("/proc/%d/ns/net", ct.pid), func() error {
		dns, err := net.Dial("udp4", "10.0.0.1:53")
		if err != nil {
			return err
		}
		defer dns.Close()
		for time.Since(start) < 10*time.Second {
			if ip, ok := lookupA(dns, name); ok {
				if conn, err := net.DialTimeout("tcp4", netip.AddrPortFrom(ip, 7000).String(), 200*time.Millisecond); err == nil {
					conn.Close()
					took = time.Since(start)
					return nil
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		return fmt.Errorf("%s not reachable by name from %s after 10 s", name, ct.name)
	})
	if err != nil {
		b.Fatal(err)
	}
	return took
}

// lookupA asks the DNS server at the other end of conn for name's IPv4
// address (one query, 200 ms at most).
func lookupA(conn net.Conn, name string) (netip.Addr, bool) {
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: uint16(time.Now().UnixNano()), RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	pkt, err := q.Pack()
	if err != nil {
		return netip.Addr{}, false
	}
	conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Write(pkt); err != nil {
		return netip.Addr{}, false
	}
	buf := make([]byte, 1232)
	n, err := conn.Read(buf)
	if err != nil {
		return netip.Addr{}, false
	}
	var p dnsmessage.Parser
	if _, err := p.Start(buf[:n]); err != nil || p.SkipAllQuestions() != nil {
		return netip.Addr{}, false
	}
	for {
		h, err := p.AnswerHeader()
		if err != nil {
			return netip.Addr{}, false
		}
		if h.Type == dnsmessage.TypeA {
			r, err := p.AResource()
			return netip.AddrFrom4(r.A), err == nil
		}
		if p.SkipAnswer() != nil {
			return netip.Addr{}, false
		}
	}
}
