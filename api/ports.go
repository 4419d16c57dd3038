package api

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// PortSpec is one port of a -p flag, Docker's
// [hostIP:][hostPort:]containerPort[/proto]. HostPort 0 asks the daemon
// for an ephemeral port (-p 80, -p 0:80, -p 127.0.0.1::80,
// -p 127.0.0.1:0:80 all do).
type PortSpec struct {
	HostIP        netip.Addr // invalid: every address
	HostPort      uint16
	ContainerPort uint16
	Proto         string // "tcp" or "udp"
}

// Port is the spec's key in ExposedPorts and PortBindings: "80/tcp".
func (p PortSpec) Port() string { return fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto) }

// Binding is the spec's host side as the Engine API carries it: "" for
// every address and for an ephemeral port.
func (p PortSpec) Binding() PortBinding {
	var b PortBinding
	if p.HostIP.IsValid() {
		b.HostIP = p.HostIP.String()
	}
	if p.HostPort != 0 {
		b.HostPort = strconv.Itoa(int(p.HostPort))
	}
	return b
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

// ParsePortSpec parses a -p value as Docker does: "80", "8080:80",
// "0:80", "127.0.0.1:8080:80", "127.0.0.1::80", "127.0.0.1:0:80", and
// ranges of equal length, "8080-8081:80-81" or "80-81", each with an
// optional "/tcp" or "/udp" (tcp by default). A range gives one spec per
// port. IPv4 only; a host range for a single container port (where Docker
// picks one port of the range) is refused.
func ParsePortSpec(s string) ([]PortSpec, error) {
	rest, proto, err := splitProto(s)
	if err != nil {
		return nil, err
	}
	var hostIP, hostPorts, ctrPorts string
	switch parts := strings.Split(rest, ":"); len(parts) {
	case 1:
		ctrPorts = parts[0]
	case 2:
		hostPorts, ctrPorts = parts[0], parts[1]
	case 3:
		hostIP, hostPorts, ctrPorts = parts[0], parts[1], parts[2]
	default:
		return nil, fmt.Errorf("port %q: want [hostIP:][hostPort:]containerPort[/proto] (IPv4 only)", s)
	}
	var ip netip.Addr
	if hostIP != "" {
		if ip, err = netip.ParseAddr(hostIP); err != nil || !ip.Is4() {
			return nil, fmt.Errorf("port %q: host address %q is not an IPv4 address", s, hostIP)
		}
	}
	ctrFirst, ctrLast, err := parsePortRange(ctrPorts, false)
	if err != nil {
		return nil, fmt.Errorf("port %q: container port: %w", s, err)
	}
	var hostFirst, hostLast uint16
	if hostPorts != "" {
		if hostFirst, hostLast, err = parsePortRange(hostPorts, true); err != nil {
			return nil, fmt.Errorf("port %q: host port: %w", s, err)
		}
		if hostLast-hostFirst != ctrLast-ctrFirst {
			return nil, fmt.Errorf("port %q: the host range %s and the container range %s differ in length", s, hostPorts, ctrPorts)
		}
	}
	specs := make([]PortSpec, 0, int(ctrLast-ctrFirst)+1)
	for i := 0; i <= int(ctrLast-ctrFirst); i++ {
		p := PortSpec{HostIP: ip, ContainerPort: ctrFirst + uint16(i), Proto: proto}
		if hostFirst != 0 {
			p.HostPort = hostFirst + uint16(i)
		}
		specs = append(specs, p)
	}
	return specs, nil
}

// ParseExposedPort parses an --expose value, "80", "80/udp" or a range
// "8000-8002/tcp", into ExposedPorts keys ("80/tcp", ...).
func ParseExposedPort(s string) ([]string, error) {
	rest, proto, err := splitProto(s)
	if err != nil {
		return nil, err
	}
	first, last, err := parsePortRange(rest, false)
	if err != nil {
		return nil, fmt.Errorf("expose %q: %w", s, err)
	}
	var out []string
	for p := int(first); p <= int(last); p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// splitProto cuts "/tcp" or "/udp" off a port spec; tcp when none.
func splitProto(s string) (string, string, error) {
	rest, proto, ok := strings.Cut(s, "/")
	if !ok {
		return s, "tcp", nil
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return "", "", fmt.Errorf("port %q: protocol %q is not tcp or udp", s, proto)
	}
	return rest, proto, nil
}

// parsePortRange reads "80" or "8000-8010"; a lone 0 (an ephemeral host
// port) only when zeroOK.
func parsePortRange(s string, zeroOK bool) (first, last uint16, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if first, err = parsePort(lo); err != nil {
		return 0, 0, err
	}
	if !isRange {
		if first == 0 && !zeroOK {
			return 0, 0, fmt.Errorf("%q is not a port number (1-65535)", s)
		}
		return first, first, nil
	}
	if last, err = parsePort(hi); err != nil {
		return 0, 0, err
	}
	if first == 0 || last < first {
		return 0, 0, fmt.Errorf("%q is not a port range (first-last, 1-65535)", s)
	}
	return first, last, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}
