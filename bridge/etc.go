package bridge

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// HostEntry is one line of a container's /etc/hosts.
type HostEntry struct {
	IP    netip.Addr
	Names []string
}

// HostsFile is the content of a container's /etc/hosts: loopback names,
// then the container's own addresses under its hostname (so that
// `hostname -i` and programs resolving their own name work without DNS),
// then extra entries (--add-host).
func HostsFile(hostname string, own []netip.Addr, extra []HostEntry) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, e := range extra {
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
	}
	for _, ip := range own {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	return b.Bytes()
}

// ResolvConf is the content of a container's /etc/resolv.conf made from the
// host's: nameservers on loopback (such as systemd-resolved's 127.0.0.53)
// are dropped, because 127.0.0.1 inside the container is the container's
// own loopback, where nothing answers. nameservers, if given, replace the
// host's (--dns, or the embedded DNS server's address); search and options
// lines are kept. dropped lists what was taken out, for a warning; when no
// nameserver is left the file has none and every lookup fails at once,
// which is better than a lookup that goes somewhere nobody chose.
func ResolvConf(host []byte, nameservers []netip.Addr) (content []byte, dropped []string) {
	var b bytes.Buffer
	s := bufio.NewScanner(bytes.NewReader(host))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		if f[0] == "nameserver" {
			if len(nameservers) > 0 {
				continue
			}
			ip, err := netip.ParseAddr(f[len(f)-1])
			if err != nil || ip.IsLoopback() {
				dropped = append(dropped, line)
				continue
			}
		}
		b.WriteString(line + "\n")
	}
	for _, ns := range nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	return b.Bytes(), dropped
}
