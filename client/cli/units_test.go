package cli

import (
	"testing"
	"time"
)

// Sizes and durations as docker prints them (go-units' HumanSize,
// BytesSize and HumanDuration).
func TestUnits(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{bytesSize(25276157952), "23.54GiB"},
		{bytesSize(64 << 20), "64MiB"},
		{bytesSize(720896), "704KiB"},
		{bytesSize(512), "512B"},
		{humanSize(4261412), "4.26MB"},
		{humanSize(999), "999B"},
		{humanSize(67108864), "67.1MB"},
		{humanDuration(3 * time.Second), "3 seconds"},
		{humanDuration(90 * time.Second), "About a minute"},
		{humanDuration(5 * time.Hour), "5 hours"},
		{humanDuration(3 * 24 * time.Hour), "3 days"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
