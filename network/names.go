package network

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"

	"minidock/api"
	"minidock/internal/errdefs"
)

// The names a container's configuration puts into its files and its
// UTS namespace: Hostname (/etc/hostname, /etc/hosts, sethostname(2)),
// Domainname (setdomainname(2)), the names of ExtraHosts (/etc/hosts),
// and Dns, DnsSearch, DnsOptions (/etc/resolv.conf). Each is checked at
// create (checkNames, from Plan): a newline or a blank in one would write
// a line of the attacker's choosing into a file the container's resolver
// believes.

// maxUTSName is the longest host or domain name the kernel keeps
// (__NEW_UTS_LEN, sethostname(2)'s limit).
const maxUTSName = 64

// validDNSName reports whether s is an RFC 1123 host name: dot-separated
// labels of 1 to 63 letters, digits and hyphens, a label neither
// starting nor ending with a hyphen, 253 bytes in all at most.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validResolvOption reports whether s is a resolv.conf option: a name of
// letters, digits, '-' and '_', with an optional ":NUMBER" (ndots:2,
// timeout:1, attempts:3, rotate, edns0, single-request, use-vc).
func validResolvOption(s string) bool {
	name, value, hasValue := strings.Cut(s, ":")
	if name == "" || (hasValue && value == "") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if value[i] < '0' || value[i] > '9' {
			return false
		}
	}
	return true
}

// checkNames refuses (400) a container configuration whose names would
// not be names.
func checkNames(cfg *api.ContainerConfig, hc *api.HostConfig) error {
	const rfc = "letters, digits and '-' in dot-separated labels of 1 to 63 characters (RFC 1123)"
	if h := cfg.Hostname; h != "" && (!validDNSName(h) || len(h) > maxUTSName) {
		return errdefs.Invalidf("invalid hostname %q: want %s, at most %d in all", h, rfc, maxUTSName)
	}
	if d := cfg.Domainname; d != "" && (!validDNSName(d) || len(d) > maxUTSName) {
		return errdefs.Invalidf("invalid domain name %q: want %s, at most %d in all", d, rfc, maxUTSName)
	}
	for _, e := range hc.ExtraHosts {
		name, _, err := parseExtraHost(e)
		if err != nil {
			return err
		}
		if !validDNSName(name) {
			return errdefs.Invalidf("invalid extra host %q: the name %q is not a host name: want %s", e, name, rfc)
		}
	}
	for _, s := range hc.DNS {
		if _, err := netip.ParseAddr(s); err != nil {
			return errdefs.Invalidf("invalid DNS server %q: want an IP address", s)
		}
	}
	for _, s := range hc.DNSSearch {
		if s != "." && !validDNSName(s) {
			return errdefs.Invalidf("invalid DNS search domain %q: want %s, or \".\" for none", s, rfc)
		}
	}
	for _, s := range hc.DNSOptions {
		if !validResolvOption(s) {
			return errdefs.Invalidf("invalid DNS option %q: want NAME or NAME:NUMBER (ndots:2, rotate, ...)", s)
		}
	}
	return nil
}

// dnsServers are the addresses of --dns, checked by checkNames.
func dnsServers(list []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range list {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip)
		}
	}
	return out
}

// withSearchAndOptions replaces the search (and domain) and options lines
// of a resolv.conf with --dns-search and --dns-option, when given; a
// search of "." alone means none.
func withSearchAndOptions(resolv []byte, search, options []string) []byte {
	if len(search) == 0 && len(options) == 0 {
		return resolv
	}
	var b bytes.Buffer
	s := bufio.NewScanner(bytes.NewReader(resolv))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) > 0 && ((len(search) > 0 && (f[0] == "search" || f[0] == "domain")) || (len(options) > 0 && f[0] == "options")) {
			continue
		}
		b.WriteString(s.Text() + "\n")
	}
	if len(search) > 0 && !(len(search) == 1 && search[0] == ".") {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.Bytes()
}
