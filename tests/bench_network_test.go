package tests

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkNetworkStart measures what bridge networking adds to a
// container start: `minidock run --rm busybox true` on the default bridge
// and with --network none, alternately in one run; medians and the
// difference. (Container-to-container TCP over a bridge vs loopback is
// bridge.BenchmarkTCPThroughput.)
func BenchmarkNetworkStart(b *testing.B) {
	d := startBenchDaemon(b)
	d.mustCLI("import", benchImageTar(b), "busybox")
	modes := []string{"none", "bridge"}
	const rounds = 21
	times := make([][]time.Duration, len(modes))
	for i := 0; i < rounds; i++ {
		for m, mode := range modes {
			start := time.Now()
			d.mustCLI("run", "--rm", "--network", mode, "busybox", "true")
			times[m] = append(times[m], time.Since(start))
		}
	}
	none, br := median(times[0]), median(times[1])
	b.ReportMetric(ms(none), "none-ms")
	b.ReportMetric(ms(br), "bridge-ms")
	fmt.Printf("run --rm busybox true, median of %d: --network none %.1f ms, bridge %.1f ms, bridge adds %.1f ms\n",
		rounds, ms(none), ms(br), ms(br-none))
}
