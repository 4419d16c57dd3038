package explain

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"minidock/api"
)

// Interfaces lists the links of the container's network namespace and,
// for each veth, its way out. It opens a netlink socket inside that
// namespace (setns(2) to /proc/PID/ns/net on a locked thread, which
// netlink.NewHandleAt does) and asks for the links (RTM_GETLINK) and
// their addresses (RTM_GETADDR). A veth's IFLA_LINK is its peer's
// ifindex in the other namespace; asked in the daemon's (the host's)
// namespace, that index names the host veth, whose IFLA_MASTER is the
// bridge it is a port of.
func Interfaces(pid int) ([]api.ExplainInterface, error) {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in the network namespace of pid %d: %w", pid, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("links of pid %d's network namespace: %w", pid, err)
	}
	var out []api.ExplainInterface
	for _, l := range links {
		a := l.Attrs()
		it := api.ExplainInterface{Name: a.Name, Index: a.Index, Addresses: addresses(h, l)}
		if len(a.HardwareAddr) > 0 {
			it.MAC = a.HardwareAddr.String()
		}
		if l.Type() == "veth" && a.ParentIndex > 0 {
			hostSide(&it, a.ParentIndex)
		}
		out = append(out, it)
	}
	return out, nil
}

// hostSide fills in the peer of a container's veth: the host link with
// index peer, if it is a veth whose own peer is it, and its bridge.
func hostSide(it *api.ExplainInterface, peer int) {
	l, err := netlink.LinkByIndex(peer)
	if err != nil || l.Type() != "veth" || l.Attrs().ParentIndex != it.Index {
		return
	}
	it.HostVeth, it.HostIndex = l.Attrs().Name, peer
	if m := l.Attrs().MasterIndex; m > 0 {
		if br, err := netlink.LinkByIndex(m); err == nil {
			it.Bridge = br.Attrs().Name
			it.BridgeAddresses = addresses(nil, br)
		}
	}
}

// addresses are a link's addresses as CIDR, through h (nil: the calling
// thread's namespace).
func addresses(h *netlink.Handle, l netlink.Link) []string {
	var list []netlink.Addr
	var err error
	if h != nil {
		list, err = h.AddrList(l, netlink.FAMILY_ALL)
	} else {
		list, err = netlink.AddrList(l, netlink.FAMILY_ALL)
	}
	out := []string{}
	if err != nil {
		return out
	}
	for _, a := range list {
		out = append(out, a.IPNet.String())
	}
	return out
}

// Rules lists the rules of nftables table inet table that mention one of
// words (the container's addresses, its bridges), as `nft list table`
// prints them from the kernel, each prefixed by its chain: "prerouting:
// fib daddr type local tcp dport 8080 dnat ip to 10.88.0.2:80". No table
// (no network needs one) is no rules.
func Rules(table string, words []string) ([]string, error) {
	cmd := exec.Command("nft", "list", "table", "inet", table)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "No such file") {
			return []string{}, nil
		}
		return nil, fmt.Errorf("nft list table inet %s: %w: %s", table, err, strings.TrimSpace(stderr.String()))
	}
	return matchingRules(stdout.String(), words), nil
}

// matchingRules picks the rules of nft's listing that hold one of words
// as a whole token (an address followed by ':' or '/' counts).
func matchingRules(listing string, words []string) []string {
	out := []string{}
	chain := ""
	for _, line := range strings.Split(listing, "\n") {
		line = strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(line, "chain "); ok {
			chain = strings.TrimSuffix(strings.TrimSpace(name), " {")
			continue
		}
		if line == "" || line == "}" || strings.HasPrefix(line, "type ") || strings.HasPrefix(line, "#") {
			continue
		}
		if mentions(line, words) {
			out = append(out, chain+": "+line)
		}
	}
	return out
}

// mentions reports whether line holds one of words, delimited by
// something that is not part of an address or a name.
func mentions(line string, words []string) bool {
	for _, w := range words {
		if w == "" {
			continue
		}
		for rest := line; ; {
			i := strings.Index(rest, w)
			if i < 0 {
				break
			}
			before, after := byte(' '), byte(' ')
			if i > 0 {
				before = rest[i-1]
			}
			if j := i + len(w); j < len(rest) {
				after = rest[j]
			}
			if !nameByte(before) && !nameByte(after) {
				return true
			}
			rest = rest[i+len(w):]
		}
	}
	return false
}

// nameByte: a byte that continues an address or an interface name.
func nameByte(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '.' || b == '_' || b == '-'
}
