package network

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"minidock/api"
	"minidock/bridge"
)

// FuzzNames is the create request's names on their way into a
// container's files: whatever checkNames lets through writes exactly the
// lines it should into /etc/hosts and /etc/resolv.conf, never one more.
func FuzzNames(f *testing.F) {
	f.Add("web-1", "example.com", "db:10.0.0.2", "1.1.1.1", "corp.example", "ndots:2")
	f.Add("web\n6.6.6.6 evil", "", "a b:1.2.3.4", "1.1.1.1\nnameserver 6.6.6.6", ".", "rotate")
	f.Add("x", "y", "h:::1", "::1", "a.b", "timeout:1")
	f.Fuzz(func(t *testing.T, hostname, domain, extra, dns, search, option string) {
		cfg := &api.ContainerConfig{Hostname: hostname, Domainname: domain}
		hc := &api.HostConfig{ExtraHosts: []string{extra}, DNS: []string{dns}, DNSSearch: []string{search}, DNSOptions: []string{option}}
		if checkNames(cfg, hc) != nil {
			return
		}
		name, ip, err := parseExtraHost(extra)
		if err != nil {
			t.Fatalf("checkNames let %q through: %v", extra, err)
		}
		hosts := bridge.HostsFile(hostname, []netip.Addr{netip.MustParseAddr("10.0.0.5")}, []bridge.HostEntry{{IP: ip, Names: []string{name}}})
		if n := bytes.Count(hosts, []byte("\n")); n != 4 {
			t.Fatalf("hosts file of %d lines:\n%s", n, hosts)
		}
		resolv, _ := bridge.ResolvConf(nil, dnsServers(hc.DNS))
		resolv = withSearchAndOptions(resolv, hc.DNSSearch, hc.DNSOptions)
		want := 3
		if search == "." {
			want = 2
		}
		if n := bytes.Count(resolv, []byte("\n")); n != want {
			t.Fatalf("resolv.conf of %d lines:\n%s", n, resolv)
		}
		for _, s := range []string{hostname, domain, name, search, option} {
			if strings.ContainsAny(s, " \t\r\n\x00#") {
				t.Fatalf("%q passed", s)
			}
		}
	})
}
