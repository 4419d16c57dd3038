package bridge

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRulesetRender(t *testing.T) {
	rs := Ruleset{Table: "minidock",
		Networks: []Network{
			{Bridge: "minidock0", Subnet: netip.MustParsePrefix("172.30.0.0/16")},
			{Bridge: "mdbr1", Subnet: netip.MustParsePrefix("10.213.9.0/24"), Internal: true, DNS: netip.MustParseAddr("10.213.9.1")},
		},
		Ports: []PortMapping{{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080,
			ContainerIP: netip.MustParseAddr("172.30.0.2"), ContainerPort: 80, Bridge: "minidock0"}},
	}
	if err := rs.validate(); err != nil {
		t.Fatal(err)
	}
	got := rs.Render()
	for _, line := range []string{
		"table inet minidock\ndelete table inet minidock\ntable inet minidock {\n",
		`iifname "minidock0" oifname { "mdbr1" } drop`,
		`iifname "mdbr1" oifname != "mdbr1" drop`,
		`oifname "mdbr1" iifname != "mdbr1" drop`,
		`ip saddr 172.30.0.0/16 oifname != "minidock0" masquerade`,
		`ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 172.30.0.2:80`,
		`ip daddr 10.213.9.1 meta l4proto { tcp, udp } th dport 53 iifname != { "mdbr1", "lo" } drop`,
	} {
		if !strings.Contains(got, line) {
			t.Errorf("ruleset lacks %q:\n%s", line, got)
		}
	}
	if strings.Count(got, "dnat ip to 172.30.0.2:80") != 1 {
		t.Errorf("a 127.0.0.1 port must be DNATed in output only:\n%s", got)
	}
	if strings.Contains(got, `ip saddr 10.213.9.0/24 oifname != "mdbr1" masquerade`) {
		t.Errorf("internal network is masqueraded:\n%s", got)
	}

	for _, bad := range []struct {
		rs  Ruleset
		err string
	}{
		{Ruleset{Table: "mini dock"}, "nft table name"},
		{Ruleset{Table: "t", Networks: []Network{{Bridge: "b\"r", Subnet: rs.Networks[0].Subnet}}}, "interface name"},
		{Ruleset{Table: "t", Networks: rs.Networks[:1], Ports: []PortMapping{{Proto: "tcp", HostPort: 1, ContainerPort: 1,
			ContainerIP: netip.MustParseAddr("172.30.0.2"), Bridge: "nosuch"}}}, "not one of the networks"},
	} {
		if err := bad.rs.validate(); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("validate %+v: %v, want %q", bad.rs, err, bad.err)
		}
	}
}
