package bridge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
)

// ReservePort holds proto hostIP:hostPort on the host for as long as the
// mapping lives, so that no other program (and no other container) can take
// it while the DNAT rule sends its traffic elsewhere. hostPort 0 asks for an
// ephemeral port (see reserveEphemeral); Port tells which. A port already in
// use gives an error saying so. The socket listens (TCP) or is bound (UDP)
// but never reads: DNAT rewrites the packets before they could reach it.
func ReservePort(proto string, hostIP netip.Addr, hostPort uint16) (*Reservation, error) {
	if !hostIP.IsValid() {
		hostIP = netip.IPv4Unspecified()
	}
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("reserve port %s/%s: protocol is not tcp or udp", netip.AddrPortFrom(hostIP, hostPort), proto)
	}
	if hostPort == 0 {
		return reserveEphemeral(proto, hostIP)
	}
	r, err := bindPort(proto, netip.AddrPortFrom(hostIP, hostPort))
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("port %s/%s is already in use on the host", netip.AddrPortFrom(hostIP, hostPort), proto)
	}
	return r, err
}

// ephemeralNext is, per protocol, the port after the last ephemeral one
// handed out.
var ephemeralNext = struct {
	sync.Mutex
	port map[string]int
}{port: map[string]int{}}

// reserveEphemeral picks a host port as Docker's port allocator does: from
// the kernel's ephemeral range (net.ipv4.ip_local_port_range), starting
// after the last port it handed out and wrapping around, so that a port
// just released is not given again at once. Each candidate is asked of the
// kernel by binding it; one that someone holds (EADDRINUSE) is skipped, and
// the first bind that succeeds is the reservation.
func reserveEphemeral(proto string, hostIP netip.Addr) (*Reservation, error) {
	first, last := ephemeralRange()
	ephemeralNext.Lock()
	defer ephemeralNext.Unlock()
	start := ephemeralNext.port[proto]
	if start < first || start > last {
		start = first
	}
	n := last - first + 1
	for i := 0; i < n; i++ {
		port := first + (start-first+i)%n
		r, err := bindPort(proto, netip.AddrPortFrom(hostIP, uint16(port)))
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ephemeralNext.port[proto] = port + 1
		return r, nil
	}
	return nil, fmt.Errorf("reserve port %s/%s: every port of the ephemeral range %d-%d is in use", hostIP, proto, first, last)
}

// ephemeralRange reads net.ipv4.ip_local_port_range, or gives Docker's
// fallback, 49153-65535, when it cannot be read.
func ephemeralRange() (first, last int) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		_, err = fmt.Sscan(string(data), &first, &last)
	}
	if err != nil || first < 1 || last > 65535 || last < first {
		return 49153, 65535
	}
	return first, last
}

// bindPort binds proto addr: listen(2) for TCP, bind(2) alone for UDP.
func bindPort(proto string, addr netip.AddrPort) (*Reservation, error) {
	var (
		c    io.Closer
		port int
		err  error
	)
	if proto == "tcp" {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr.String()); err == nil {
			c, port = l, l.Addr().(*net.TCPAddr).Port
		}
	} else {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp4", addr.String()); err == nil {
			c, port = pc, pc.LocalAddr().(*net.UDPAddr).Port
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reserve port %s/%s: %w", addr, proto, err)
	}
	return &Reservation{c: c, Port: uint16(port)}, nil
}

// Reservation is a held host port; Close releases it.
type Reservation struct {
	c    io.Closer
	Port uint16
}

func (r *Reservation) Close() error { return r.c.Close() }
