package api

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBytes reads docker's memory sizes (`-m`, `--mount tmpfs-size=`):
// 1048576, 512k, 64m, 1g, 1.5g, with an optional "b" or "ib" after the
// unit (64mb, 64MiB); the units are powers of 1024, as docker's
// RAMInBytes has them.
func ParseBytes(s string) (int64, error) {
	num := strings.ToLower(strings.TrimSpace(s))
	num = strings.TrimSuffix(strings.TrimSuffix(num, "b"), "i")
	mult := 1.0
	if n := len(num); n > 0 {
		if i := strings.IndexByte("kmgtp", num[n-1]); i >= 0 {
			mult, num = float64(int64(1)<<(10*(i+1))), num[:n-1]
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size %q: a number with an optional unit k, m, g, t or p", s)
	}
	return int64(f * mult), nil
}
