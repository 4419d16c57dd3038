package server

import (
	"math"
	"testing"
	"time"
)

// since/until: seconds with a fraction, RFC 3339; the far future stays
// in the future (it once wrapped into the past), garbage is refused.
func TestParseTime(t *testing.T) {
	for s, want := range map[string]time.Time{
		"1700000000":           time.Unix(1700000000, 0),
		"1700000000.5":         time.Unix(1700000000, 5e8),
		"1700000000.000000001": time.Unix(1700000000, 1),
		"2026-01-02T03:04:05Z": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"-1":                   time.Unix(-1, 0),
		"99999999999":          time.Unix(99999999999, 0),
		"9223372036854775807":  time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		got, err := parseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "tomorrow", "1.2.3", "1.0000000001", "99999999999999999999"} {
		if _, err := parseTime(s); err == nil {
			t.Errorf("parseTime(%q) accepted", s)
		}
	}
	if n := unixNano(time.Unix(99999999999, 0)); n != math.MaxInt64 {
		t.Errorf("unixNano of the year 5138 = %d", n)
	}
}
