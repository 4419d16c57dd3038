package bridge

import (
	"net/netip"
	"slices"
	"testing"
)

func TestHostsFile(t *testing.T) {
	got := string(HostsFile("web", []netip.Addr{netip.MustParseAddr("10.213.1.2")},
		[]HostEntry{{IP: netip.MustParseAddr("10.213.1.9"), Names: []string{"db", "db.local"}}}))
	want := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.213.1.9\tdb db.local\n10.213.1.2\tweb\n"
	if got != want {
		t.Errorf("HostsFile:\n%s\nwant:\n%s", got, want)
	}
}

func TestResolvConf(t *testing.T) {
	host := []byte("# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.internal\noptions edns0 trust-ad\n")
	got, dropped := ResolvConf(host, nil)
	if want := "nameserver 192.0.2.53\nsearch example.internal\noptions edns0 trust-ad\n"; string(got) != want {
		t.Errorf("ResolvConf:\n%s\nwant:\n%s", got, want)
	}
	if !slices.Equal(dropped, []string{"nameserver 127.0.0.53"}) {
		t.Errorf("dropped %q", dropped)
	}
	got, dropped = ResolvConf(host, []netip.Addr{netip.MustParseAddr("127.0.0.11")})
	if want := "search example.internal\noptions edns0 trust-ad\nnameserver 127.0.0.11\n"; string(got) != want || dropped != nil {
		t.Errorf("ResolvConf with nameservers:\n%s (dropped %q)\nwant:\n%s", got, dropped, want)
	}
}
