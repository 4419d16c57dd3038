package network

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"minidock/api"
	"minidock/internal/errdefs"
)

// The checks that need no kernel: address pools, upstream resolvers, port
// keys, and Plan's refusals before it looks at any network.

func TestParseAddressPool(t *testing.T) {
	p, err := parseAddressPool("base=10.10.0.0/16,size=24")
	if err != nil || p.Base != netip.MustParsePrefix("10.10.0.0/16") || p.Size != 24 {
		t.Fatalf("got %+v, %v", p, err)
	}
	for _, bad := range []string{"base=10.10.0.1/16,size=24", "base=10.10.0.0/16", "size=24", "base=10.10.0.0/16,size=8",
		"base=10.10.0.0/16,size=31", "base=::/0,size=64", "base=10.10.0.0/16,size=24,colour=red"} {
		if _, err := parseAddressPool(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	pools, err := parsePools(nil)
	if err != nil || len(pools) != len(defaultPools) {
		t.Fatalf("the default pools: %v, %v", pools, err)
	}
}

func TestUpstreams(t *testing.T) {
	ups, err := upstreams([]string{"192.0.2.1", "192.0.2.2:5353"})
	if err != nil || len(ups) != 2 || ups[0] != netip.MustParseAddrPort("192.0.2.1:53") || ups[1].Port() != 5353 {
		t.Fatalf("got %v, %v", ups, err)
	}
	if ups, err := upstreams([]string{"none"}); err != nil || ups != nil {
		t.Fatalf("none: %v, %v", ups, err)
	}
	for _, bad := range [][]string{{"none", "192.0.2.1"}, {"resolver.example"}, {"2001:db8::1"}} {
		if _, err := upstreams(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestParsePortKey(t *testing.T) {
	for k, want := range map[string]string{"80": "80/tcp", "53/udp": "53/udp", "8080/tcp": "8080/tcp"} {
		port, proto, err := ParsePortKey(k)
		if err != nil || strconv.Itoa(int(port))+"/"+proto != want {
			t.Errorf("%q: %d %s %v", k, port, proto, err)
		}
	}
	for _, bad := range []string{"0", "80/sctp", "8000-8010", "x", "70000"} {
		if _, _, err := ParsePortKey(bad); !errdefs.Is(err, errdefs.InvalidParameter) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Plan refuses bad input with a 400 naming it, before any network is
// looked up (an empty controller would answer "not found" after that).
func TestPlanRefusesBadInput(t *testing.T) {
	c := &Controller{networks: map[string]*Network{}}
	none := func(string) (string, error) { return "", errdefs.NotFoundf("no containers here") }
	for _, tc := range []struct {
		cfg  api.ContainerConfig
		hc   api.HostConfig
		want string
	}{
		{api.ContainerConfig{ExposedPorts: map[string]struct{}{"80/sctp": {}}}, api.HostConfig{}, `invalid port "80/sctp"`},
		{api.ContainerConfig{}, api.HostConfig{PortBindings: map[string][]api.PortBinding{"80": {{HostIP: "::1"}}}}, "IPv4 only"},
		{api.ContainerConfig{}, api.HostConfig{PortBindings: map[string][]api.PortBinding{"80": {{HostPort: "8000-8010"}}}}, "ranges are not supported"},
		{api.ContainerConfig{}, api.HostConfig{ExtraHosts: []string{"nocolon"}}, "want NAME:IP"},
		{api.ContainerConfig{Hostname: "h"}, api.HostConfig{NetworkMode: "container:x"}, "no containers here"},
	} {
		_, _, err := c.Plan("id", &tc.cfg, &tc.hc, nil, none)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %+v: %v, want %q", tc.cfg, tc.hc, err, tc.want)
		}
	}
	// host and none: published ports are dropped with a warning
	hc := api.HostConfig{NetworkMode: "host", PortBindings: map[string][]api.PortBinding{"80": {{}}}}
	eps, warnings, err := c.Plan("id", &api.ContainerConfig{}, &hc, nil, none)
	if err != nil || eps != nil || len(warnings) != 1 || hc.PortBindings != nil {
		t.Fatalf("host with -p: %v %v %v %v", eps, warnings, err, hc.PortBindings)
	}
}
