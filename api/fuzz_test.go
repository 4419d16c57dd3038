package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Fuzz targets of the Engine API's request decoding (make fuzz runs each
// for a bounded time; a crash found becomes a file of testdata/fuzz,
// replayed by every go test).

// FuzzCreateRequest decodes a POST /containers/create body as the daemon
// does, and sends its fields through the parsers they meet (binds,
// mounts, volumes-from): nothing panics, and what decodes encodes to JSON
// that decodes to the same value.
func FuzzCreateRequest(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"Binds":["/a:/b:ro"],"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}}}`,
		`{"Hostname":"web","Env":["A=1"],"ExposedPorts":{"80/tcp":{}},"HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/data"}],"Tmpfs":{"/run":"size=1m"},"VolumesFrom":["other:ro"],"NanoCpus":500000000}}`,
		`{"HostConfig":{"Dns":["1.1.1.1"],"DnsOptions":["ndots:2"],"DnsSearch":["example.com"],"ExtraHosts":["db:10.0.0.2"]},"NetworkingConfig":{"EndpointsConfig":{"n":{"Aliases":["a"]}}}}`,
		`{"Image":"\u0000","Labels":{"":""},"HostConfig":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ContainerCreateRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		if hc := req.HostConfig; hc != nil {
			for _, b := range hc.Binds {
				if m, _, err := ParseBind(b); err == nil {
					ValidateMount(m)
				}
			}
			for _, m := range hc.Mounts {
				ValidateMount(m)
			}
			for _, v := range hc.VolumesFrom {
				ParseVolumesFrom(v)
			}
		}
		once, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("encode a decoded request: %v", err)
		}
		var again ContainerCreateRequest
		if err := json.Unmarshal(once, &again); err != nil {
			t.Fatalf("decode %s: %v", once, err)
		}
		if twice, _ := json.Marshal(again); string(twice) != string(once) {
			t.Fatalf("not stable:\n%s\n%s", once, twice)
		}
	})
}

// FuzzParseFilters reads a filters= parameter: what parses encodes back
// to the same filters, and matching never panics.
func FuzzParseFilters(f *testing.F) {
	for _, s := range []string{``, `{"label":["a=b","c"],"status":["exited"]}`, `{"name":{"web":true}}`, `{"a":null}`, `[1]`, `{"label":["=","=x","a=b=c"]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFilters(s)
		if err != nil {
			return
		}
		fl.Match("name", func(v string) bool { return v == "x" })
		fl.MatchLabels(map[string]string{"a": "b", "": ""})
		fl.Only("label", "name")
		data, err := json.Marshal(fl)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseFilters(string(data))
		if err != nil || !reflect.DeepEqual(again, fl) {
			t.Fatalf("%q: %v, re-parsed from %s as %v (%v)", s, fl, data, again, err)
		}
	})
}

// FuzzParsePortSpec reads -p values: every spec it gives prints as a
// spec that parses back to itself.
func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"80", "8080:80", "127.0.0.1::80/udp", "127.0.0.1:0:80", "8080-8081:80-81", "80-81/tcp", "::80", "1.2.3.4:65535:65535/udp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		specs, err := ParsePortSpec(s)
		if err != nil {
			return
		}
		for _, p := range specs {
			again, err := ParsePortSpec(p.String())
			if err != nil || len(again) != 1 || again[0] != p {
				t.Fatalf("%q gave %+v, whose %q parses as %+v (%v)", s, p, p.String(), again, err)
			}
			p.Binding()
		}
		ParseExposedPort(s)
	})
}
