package daemon

import (
	"errors"
	"fmt"
	"testing"

	"minidock/internal/errdefs"
	"minidock/registry"
)

func TestCheckInsecureRegistry(t *testing.T) {
	for _, ok := range []string{"myreg:5000", "myreg", "10.0.0.0/8", "192.0.2.1:443", "[::1]:5000"} {
		if err := checkInsecureRegistry(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "http://myreg:5000", "myreg/path", "10.0.0.0/33", "myreg:port", "my reg"} {
		if err := checkInsecureRegistry(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := newRegistryClient(RegistryConfig{Insecure: []string{"ok:1", "https://no"}}); err == nil {
		t.Error("newRegistryClient accepted a scheme")
	}
}

// TestRegistryError: the registry client's refusals get their kinds.
func TestRegistryError(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind errdefs.Kind
	}{
		{fmt.Errorf("x: %w", registry.ErrNotFound), errdefs.NotFound},
		{fmt.Errorf("x: %w", registry.ErrUnauthorized), errdefs.Unauthorized},
		{errors.New("digest mismatch"), errdefs.Unknown},
	} {
		if got := errdefs.KindOf(registryError(c.err)); got != c.kind {
			t.Errorf("%v: kind %v, want %v", c.err, got, c.kind)
		}
	}
}
