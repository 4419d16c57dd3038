package bridge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// PortSpec is one parsed -p flag: [hostIP:][hostPort:]containerPort[/proto].
// HostPort 0 means "any free port" (chosen by ReservePort).
type PortSpec struct {
	HostIP        netip.Addr // invalid: every address
	HostPort      uint16
	ContainerPort uint16
	Proto         string // "tcp" or "udp"
}

func (p PortSpec) String() string {
	host := ""
	if p.HostIP.IsValid() {
		host = p.HostIP.String() + ":"
	}
	if p.HostPort != 0 {
		host += strconv.Itoa(int(p.HostPort)) + ":"
	} else if host != "" {
		host += ":"
	}
	return fmt.Sprintf("%s%d/%s", host, p.ContainerPort, p.Proto)
}

// ParsePortSpec parses a -p value: "80", "8080:80", "127.0.0.1:8080:80",
// "127.0.0.1::80", each with an optional "/tcp" or "/udp" (tcp by default).
// IPv4 only; no port ranges.
func ParsePortSpec(s string) (PortSpec, error) {
	p := PortSpec{Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Proto = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if p.Proto != "tcp" && p.Proto != "udp" {
			return PortSpec{}, fmt.Errorf("port %q: protocol %q is not tcp or udp", s, p.Proto)
		}
	}
	parts := strings.Split(rest, ":")
	var hostIP, hostPort, ctrPort string
	switch len(parts) {
	case 1:
		ctrPort = parts[0]
	case 2:
		hostPort, ctrPort = parts[0], parts[1]
	case 3:
		hostIP, hostPort, ctrPort = parts[0], parts[1], parts[2]
	default:
		return PortSpec{}, fmt.Errorf("port %q: want [hostIP:][hostPort:]containerPort[/proto] (IPv4 only)", s)
	}
	var err error
	if hostIP != "" {
		if p.HostIP, err = netip.ParseAddr(hostIP); err != nil || !p.HostIP.Is4() {
			return PortSpec{}, fmt.Errorf("port %q: host address %q is not an IPv4 address", s, hostIP)
		}
	}
	if hostPort != "" {
		if p.HostPort, err = parsePort(hostPort); err != nil {
			return PortSpec{}, fmt.Errorf("port %q: host port: %w", s, err)
		}
	}
	if p.ContainerPort, err = parsePort(ctrPort); err != nil {
		return PortSpec{}, fmt.Errorf("port %q: container port: %w", s, err)
	}
	return p, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}

// ReservePort holds proto hostIP:hostPort on the host for as long as the
// mapping lives, so that no other program (and no other container) can take
// it while the DNAT rule sends its traffic elsewhere. hostPort 0 asks the
// kernel for a free port; Port tells which. A port already in use gives an
// error saying so. The socket listens (TCP) or is bound (UDP) but never
// reads: DNAT rewrites the packets before they could reach it.
func ReservePort(proto string, hostIP netip.Addr, hostPort uint16) (*Reservation, error) {
	if !hostIP.IsValid() {
		hostIP = netip.IPv4Unspecified()
	}
	addr := netip.AddrPortFrom(hostIP, hostPort).String()
	var (
		c    io.Closer
		port int
		err  error
	)
	switch proto {
	case "tcp":
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			c, port = l, l.Addr().(*net.TCPAddr).Port
		}
	case "udp":
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp4", addr); err == nil {
			c, port = pc, pc.LocalAddr().(*net.UDPAddr).Port
		}
	default:
		return nil, fmt.Errorf("reserve port %s/%s: protocol is not tcp or udp", addr, proto)
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("port %s/%s is already in use on the host", addr, proto)
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
