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

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "64m": 64 << 20, "64MB": 64 << 20, "64MiB": 64 << 20,
		"1.5g": 3 << 29, "512k": 512 << 10, "2b": 2} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1m", "12x"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
