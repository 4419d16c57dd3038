package bridge

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"minidock/internal/trace"
)

// DefaultTable is the nftables table (family inet) of a production daemon.
const DefaultTable = "minidock"

// Network is what the firewall needs to know of one bridge network.
type Network struct {
	Bridge   string
	Subnet   netip.Prefix
	Internal bool // no traffic in or out of the bridge, only between its containers
	// DNS, if valid, is where the network's DNS server listens (port 53):
	// only the bridge's containers and the host itself may ask it
	DNS netip.Addr
}

// PortMapping publishes ContainerIP:ContainerPort on HostIP:HostPort.
type PortMapping struct {
	Proto         string     // "tcp" or "udp"
	HostIP        netip.Addr // invalid or 0.0.0.0: every local address
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
	Bridge        string // the container's bridge (for loopback masquerade)
}

// Ruleset is the whole of minidock's firewall: one nftables table, rebuilt
// from this description and replaced in one transaction by Apply.
type Ruleset struct {
	Table    string // DefaultTable in production; tests use their own
	Networks []Network
	Ports    []PortMapping
}

// validTable: a letter, then up to 63 letters, digits or '_'.
func validTable(s string) bool {
	if s == "" || len(s) > 64 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	return plainName(s) && !strings.ContainsAny(s, ".-")
}

func (r Ruleset) validate() error {
	if !validTable(r.Table) {
		return fmt.Errorf("nft table name %q: letters, digits and '_' only", r.Table)
	}
	bridges := map[string]bool{}
	for _, n := range r.Networks {
		if err := checkIfName(n.Bridge); err != nil {
			return fmt.Errorf("ruleset: %w", err)
		}
		if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
			return fmt.Errorf("ruleset: bridge %s: subnet %v is not IPv4", n.Bridge, n.Subnet)
		}
		if n.DNS.IsValid() && !n.DNS.Is4() {
			return fmt.Errorf("ruleset: bridge %s: DNS address %v is not IPv4", n.Bridge, n.DNS)
		}
		bridges[n.Bridge] = true
	}
	for _, p := range r.Ports {
		if p.Proto != "tcp" && p.Proto != "udp" {
			return fmt.Errorf("ruleset: port %d: protocol %q is not tcp or udp", p.HostPort, p.Proto)
		}
		if p.HostPort == 0 || p.ContainerPort == 0 || !p.ContainerIP.Is4() {
			return fmt.Errorf("ruleset: incomplete port mapping %+v", p)
		}
		if p.HostIP.IsValid() && !p.HostIP.Is4() {
			return fmt.Errorf("ruleset: port %d: host address %v is not IPv4", p.HostPort, p.HostIP)
		}
		if !bridges[p.Bridge] {
			return fmt.Errorf("ruleset: port %d/%s: bridge %q is not one of the networks", p.HostPort, p.Proto, p.Bridge)
		}
	}
	return nil
}

// Render returns the nft script that replaces the table with this ruleset.
// The first two lines ("table ...", "delete table ...") make the replace
// work whether or not the table exists; nft -f runs the whole script as one
// transaction, so there is no moment with half the rules.
func (r Ruleset) Render() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("table inet %s", r.Table)
	w("delete table inet %s", r.Table)
	w("table inet %s {", r.Table)

	// Filter: which forwarded traffic is allowed at all.
	w("\tchain forward {")
	w("\t\ttype filter hook forward priority filter; policy accept;")
	for _, n := range r.Networks {
		if n.Internal {
			w("\t\t# %s is internal: nothing in or out, only between its own containers", n.Bridge)
			w("\t\tiifname %q oifname != %q drop", n.Bridge, n.Bridge)
			w("\t\toifname %q iifname != %q drop", n.Bridge, n.Bridge)
			continue
		}
		var others []string
		for _, o := range r.Networks {
			if o.Bridge != n.Bridge {
				others = append(others, fmt.Sprintf("%q", o.Bridge))
			}
		}
		if len(others) > 0 {
			w("\t\t# isolation: %s may not reach other minidock networks", n.Bridge)
			w("\t\tiifname %q oifname { %s } drop", n.Bridge, strings.Join(others, ", "))
		}
	}
	w("\t}")

	// With route_localnet on, the kernel no longer treats packets to
	// 127.0.0.0/8 arriving on a bridge (or the LAN) as martians: drop them,
	// so that nothing but the host itself reaches 127.0.0.1 (CVE-2020-8558).
	// The embedded DNS servers answer their own network only: not the LAN,
	// not other networks (input to a host address is not forwarded, so
	// the isolation above does not cover it).
	w("\tchain input {")
	w("\t\ttype filter hook input priority filter; policy accept;")
	for _, n := range r.Networks {
		if n.DNS.IsValid() {
			w("\t\tip daddr %s meta l4proto { tcp, udp } th dport 53 iifname != { %q, \"lo\" } drop", n.DNS, n.Bridge)
		}
	}
	w("\t}")

	w("\tchain prerouting_filter {")
	w("\t\ttype filter hook prerouting priority raw; policy accept;")
	w("\t\tiifname != \"lo\" ip daddr 127.0.0.0/8 drop")
	w("\t}")

	// DNAT: published ports, from the host itself (output) and from outside
	// (prerouting). A port published on a loopback address is only the
	// host's business, so it has no prerouting rule (moby/moby#41872).
	w("\tchain prerouting {")
	w("\t\ttype nat hook prerouting priority dstnat; policy accept;")
	for _, p := range r.Ports {
		if !p.HostIP.IsLoopback() {
			w("\t\t%s", dnatRule(p))
		}
	}
	w("\t}")
	w("\tchain output {")
	w("\t\ttype nat hook output priority -100; policy accept;")
	for _, p := range r.Ports {
		w("\t\t%s", dnatRule(p))
	}
	w("\t}")

	// SNAT: the way out, loopback clients of published ports, hairpin.
	w("\tchain postrouting {")
	w("\t\ttype nat hook postrouting priority srcnat; policy accept;")
	for _, n := range r.Networks {
		if !n.Internal {
			w("\t\t# %s: containers reach the outside with the host's address", n.Bridge)
			w("\t\tip saddr %s oifname != %q masquerade", n.Subnet, n.Bridge)
		}
		w("\t\t# %s: a published port reached from 127.0.0.1, or from a container of the same bridge", n.Bridge)
		w("\t\toifname %q ip saddr 127.0.0.0/8 masquerade", n.Bridge)
		w("\t\toifname %q ip saddr %s ct status dnat masquerade", n.Bridge, n.Subnet)
	}
	w("\t}")
	w("}")
	return b.String()
}

func dnatRule(p PortMapping) string {
	match := "fib daddr type local"
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		match = "ip daddr " + p.HostIP.String()
	}
	return fmt.Sprintf("%s %s dport %d dnat ip to %s:%d", match, p.Proto, p.HostPort, p.ContainerIP, p.ContainerPort)
}

// Apply replaces the table with the ruleset in one `nft -f -` transaction.
// A ruleset with no networks and no ports deletes the table instead: no
// rule is left when nothing needs one.
func (r Ruleset) Apply() error { return r.ApplyTraced(nil) }

// ApplyTraced is Apply, with the transaction, the whole ruleset, traced
// to t (nil: no trace).
func (r Ruleset) ApplyTraced(t *trace.Tracer) error {
	if err := r.validate(); err != nil {
		return err
	}
	if len(r.Networks) == 0 && len(r.Ports) == 0 {
		return t.Call("firewall", "nft -f -", "delete table inet "+r.Table, "no network and no published port needs a rule", DeleteTable(r.Table))
	}
	script := r.Render()
	return t.Call("firewall", "nft -f -", oneLine(script), "replace the table in one transaction: forwarding, masquerade, published ports", nft(script))
}

// oneLine is an nft script on one line, for a trace: statements joined
// by "; ", indentation gone.
func oneLine(script string) string {
	var parts []string
	for _, l := range strings.Split(script, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// DeleteTable removes the table inet table, if it exists.
func DeleteTable(table string) error {
	if !validTable(table) {
		return fmt.Errorf("nft table name %q: letters, digits and '_' only", table)
	}
	return nft(fmt.Sprintf("table inet %s\ndelete table inet %s\n", table, table))
}

// nft feeds script to `nft -f -` in the calling thread's network namespace.
func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft -f -: %w: %s\nscript:\n%s", err, strings.TrimSpace(out.String()), script)
	}
	return nil
}
