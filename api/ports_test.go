package api

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePortSpec(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{"80", []string{"80/tcp"}, ""},
		{"8080:80", []string{"8080:80/tcp"}, ""},
		{"8080:80/udp", []string{"8080:80/udp"}, ""},
		{"127.0.0.1:8080:80", []string{"127.0.0.1:8080:80/tcp"}, ""},
		{"127.0.0.1::80/UDP", []string{"127.0.0.1::80/udp"}, ""},
		// Docker's ephemeral host port, spelled out
		{"0:80", []string{"80/tcp"}, ""},
		{"127.0.0.1:0:8080", []string{"127.0.0.1::8080/tcp"}, ""},
		{"8080-8081:80-81", []string{"8080:80/tcp", "8081:81/tcp"}, ""},
		{"80-82/udp", []string{"80/udp", "81/udp", "82/udp"}, ""},
		{"80/sctp", nil, "not tcp or udp"},
		{"0", nil, "not a port number"},
		{"65536", nil, "not a port number"},
		{"x:80", nil, "host port"},
		{"localhost:1:80", nil, "not an IPv4 address"},
		{"[::1]:8080:80", nil, "IPv4 only"},
		{"8000-8010:80", nil, "differ in length"},
		{"82-80", nil, "not a port range"},
		{"0-5:1-6", nil, "not a port range"},
	} {
		specs, err := ParsePortSpec(c.in)
		var got []string
		for _, p := range specs {
			got = append(got, p.String())
		}
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParsePortSpec(%q): %v", c.in, err)
		case c.err == "" && !reflect.DeepEqual(got, c.want):
			t.Errorf("ParsePortSpec(%q) = %q, want %q", c.in, got, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParsePortSpec(%q) = %q, %v; want error %q", c.in, got, err, c.err)
		}
	}
}

func TestPortSpecBinding(t *testing.T) {
	specs, err := ParsePortSpec("127.0.0.1:0:8080")
	if err != nil {
		t.Fatal(err)
	}
	if got := specs[0].Binding(); got != (PortBinding{HostIP: "127.0.0.1"}) {
		t.Errorf("binding of an ephemeral port: %+v", got)
	}
	if specs[0].Port() != "8080/tcp" {
		t.Errorf("key %q", specs[0].Port())
	}
	specs, _ = ParsePortSpec("9000:90/udp")
	if got := specs[0].Binding(); got != (PortBinding{HostPort: "9000"}) {
		t.Errorf("binding: %+v", got)
	}
}

func TestParseExposedPort(t *testing.T) {
	got, err := ParseExposedPort("8000-8002/udp")
	if err != nil || !reflect.DeepEqual(got, []string{"8000/udp", "8001/udp", "8002/udp"}) {
		t.Errorf("range: %q, %v", got, err)
	}
	if got, err := ParseExposedPort("80"); err != nil || !reflect.DeepEqual(got, []string{"80/tcp"}) {
		t.Errorf("80: %q, %v", got, err)
	}
	if _, err := ParseExposedPort("0"); err == nil {
		t.Error("port 0 exposed")
	}
}
