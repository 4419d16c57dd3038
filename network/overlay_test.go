package network

import (
	"strings"
	"testing"
	"time"
)

func TestParseClusterOpts(t *testing.T) {
	o, err := parseClusterOpts([]string{"discovery.ttl=4", "kv.path=cluster/a"})
	if err != nil || o.ttl != 4*time.Second || o.prefix != "/cluster/a/" {
		t.Fatalf("%+v, %v", o, err)
	}
	for in, want := range map[string]string{
		"discovery.ttl=1":         "2 or more",
		"discovery.ttl=x":         "whole number of seconds",
		"kv.cacertfile=/etc/x":    `unknown option "kv.cacertfile"`,
		"discovery.heartbeat":     "want KEY=VALUE",
		"discovery.heartbeat=20s": `unknown option "discovery.heartbeat"`,
	} {
		if _, err := parseClusterOpts([]string{in}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", in, err, want)
		}
	}
}
