package bridge

// Benchmarks, meant for -benchtime=1x: each op runs a number of rounds and
// reports medians, which say more than a mean over a handful of runs.
//
//	go test -run '^$' -bench . -benchtime=1x ./bridge/

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

const rounds = 21

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// BenchmarkAttachDetach: the cost of the kernel side of connecting one
// container to a bridge and disconnecting it.
func BenchmarkAttachDetach(b *testing.B) {
	sb := newSandbox(b)
	br := linkName()
	sb.must(b, "bridge", func() error { return EnsureBridge(br, "10.213.20.1/24") })
	c := newNS(b)
	host := linkName()
	ep := Endpoint{Bridge: br, HostIf: host, NetNS: c.path, Address: netip.MustParsePrefix("10.213.20.2/24"),
		Gateway: netip.MustParseAddr("10.213.20.1")}
	for b.Loop() {
		var att, det []time.Duration
		sb.must(b, "rounds", func() error {
			for range rounds {
				t0 := time.Now()
				if err := Attach(ep); err != nil {
					return err
				}
				t1 := time.Now()
				if err := Detach(host); err != nil {
					return err
				}
				att, det = append(att, t1.Sub(t0)), append(det, time.Since(t1))
			}
			return nil
		})
		b.ReportMetric(median(att), "attach-ms")
		b.ReportMetric(median(det), "detach-ms")
	}
	sb.must(b, "delete bridge", func() error { return DeleteBridge(br) })
}

// BenchmarkRulesetApply: replacing the whole table with `nft -f -`, as the
// daemon does when a network or a published port comes or goes.
func BenchmarkRulesetApply(b *testing.B) {
	sb := newSandbox(b)
	rs := Ruleset{Table: testTable()}
	for i := range 4 {
		br := linkName()
		rs.Networks = append(rs.Networks, Network{Bridge: br, Subnet: netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", 30+i))})
		for p := range 5 {
			rs.Ports = append(rs.Ports, PortMapping{Proto: "tcp", HostPort: uint16(20000 + 10*i + p), ContainerPort: 80,
				ContainerIP: netip.MustParseAddr(fmt.Sprintf("10.213.%d.%d", 30+i, 2+p)), Bridge: br})
		}
	}
	for b.Loop() {
		var d []time.Duration
		sb.must(b, "apply", func() error {
			for range rounds {
				t0 := time.Now()
				if err := rs.Apply(); err != nil {
					return err
				}
				d = append(d, time.Since(t0))
			}
			return nil
		})
		b.ReportMetric(median(d), "apply-ms")
	}
	sb.must(b, "delete table", func() error { return DeleteTable(rs.Table) })
}

// BenchmarkTCPThroughput: 64 MiB container to container over the bridge,
// next to the same over loopback inside one namespace.
func BenchmarkTCPThroughput(b *testing.B) {
	sb := newSandbox(b)
	br := linkName()
	sb.must(b, "bridge", func() error { return EnsureBridge(br, "10.213.21.1/24") })
	c1 := container(b, sb, br, "10.213.21.2/24")
	c2 := container(b, sb, br, "10.213.21.3/24")
	for b.Loop() {
		b.ReportMetric(throughput(b, c2, c1, "10.213.21.2:5001"), "bridge-MB/s")
		b.ReportMetric(throughput(b, c1, c1, "127.0.0.1:5002"), "loopback-MB/s")
	}
}

// throughput sends 64 MiB from a client in from to a sink listening on
// addr in to, and returns MB/s.
func throughput(b *testing.B, from, to *ns, addr string) float64 {
	const size = 64 << 20
	var l net.Listener
	to.must(b, "listen", func() (err error) { l, err = net.Listen("tcp4", addr); return err })
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		done <- err
	}()
	var c net.Conn
	from.must(b, "dial", func() (err error) { c, err = net.Dial("tcp4", addr); return err })
	buf := make([]byte, 256<<10)
	t0 := time.Now()
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return float64(size) / 1e6 / time.Since(t0).Seconds()
}
