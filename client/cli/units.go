package cli

import (
	"fmt"
	"strconv"
	"time"
)

// humanSize is a size as docker's tables print it: decimal units, three
// significant digits (4.26MB, 1.2GB).
func humanSize(n int64) string {
	return scaled(float64(n), 1000, 3, []string{"B", "kB", "MB", "GB", "TB", "PB"})
}

// bytesSize is a size in binary units, four significant digits, as docker
// prints memory (info's Total Memory, stats' MEM USAGE): 23.54GiB, 64MiB.
func bytesSize(n int64) string {
	return scaled(float64(n), 1024, 4, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"})
}

func scaled(f, base float64, digits int, units []string) string {
	i := 0
	for f >= base && i < len(units)-1 {
		f /= base
		i++
	}
	return strconv.FormatFloat(f, 'g', digits, 64) + units[i]
}

// ago is how long ago t was, in docker's words: "2 minutes ago", "About
// an hour ago".
func ago(t time.Time) string {
	return humanDuration(time.Since(t)) + " ago"
}

func humanDuration(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s < 1:
		return "Less than a second"
	case s < 2:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", int(s))
	case d.Minutes() < 2:
		return "About a minute"
	case d.Minutes() < 60:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d.Hours() < 2:
		return "About an hour"
	case d.Hours() < 48:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	case d.Hours() < 24*7*2:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d.Hours() < 24*30*2:
		return fmt.Sprintf("%d weeks", int(d.Hours()/24/7))
	case d.Hours() < 24*365*2:
		return fmt.Sprintf("%d months", int(d.Hours()/24/30))
	}
	return fmt.Sprintf("%d years", int(d.Hours()/24/365))
}
